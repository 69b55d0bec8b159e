import json

import marshmallow as ma

from cairn.api import WEB_ADDRESS, FullMatch, OneOf, Schema, Text
from integrations.webhooks.services import OPERATORS

FIELD = ma.validate.Regexp(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$", error="Not a field name."
)


def _small_json(value) -> None:
    if len(json.dumps(value, default=str)) > 2000:
        raise ma.ValidationError("At most 2,000 characters of JSON.")


class ConditionSchema(Schema):
    field = ma.fields.String(required=True, validate=FIELD, metadata={"description": "criticality, attributes.os"})
    op = OneOf(OPERATORS, load_default="eq")
    value = ma.fields.Raw(required=True, allow_none=True, validate=_small_json)


URL_HELP = "http or https; the host must not be inside the network (unless CAIRN_WEBHOOK_ALLOW_PRIVATE)"


def _url(**kwargs):
    return Text(
        2000,
        min_length=1,
        validate=FullMatch(WEB_ADDRESS, error="Not a web address (http or https)."),
        metadata={"description": URL_HELP},
        **kwargs,
    )


class WebhookWriteSchema(Schema):
    name = Text(200)
    url = _url(required=True)
    events = ma.fields.List(Text(40), required=True, validate=ma.validate.Length(min=1, max=20))
    conditions = ma.fields.List(ma.fields.Nested(ConditionSchema), validate=ma.validate.Length(max=20))
    secret = Text(200, min_length=16, metadata={"description": "omit to have one generated (shown once)"})
    active = ma.fields.Boolean()


class WebhookUpdateSchema(WebhookWriteSchema):
    url = _url()
    events = ma.fields.List(Text(40), validate=ma.validate.Length(min=1, max=20))


class WebhookSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())
    conditions = ma.fields.List(ma.fields.Dict())
    active = ma.fields.Boolean()
    disabled_reason = ma.fields.String()
    failing_since = ma.fields.DateTime(allow_none=True)
    secret = ma.fields.Method("_secret", metadata={"description": "only in the answer that created it"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _secret(self, hook):
        return getattr(hook, "plain_secret", None)


class DeliverySchema(Schema):
    id = ma.fields.Integer()
    webhook_id = ma.fields.Integer()
    change_id = ma.fields.Integer()
    event = ma.fields.String()
    status = ma.fields.String()
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.DateTime(allow_none=True)
    last_attempt_at = ma.fields.DateTime(allow_none=True)
    response_code = ma.fields.Integer(allow_none=True)
    duration_ms = ma.fields.Integer(allow_none=True)
    error = ma.fields.String()
    log = ma.fields.List(ma.fields.Dict())
    payload = ma.fields.Dict()
    created_at = ma.fields.DateTime()


class DeliveryQuerySchema(Schema):
    status = OneOf(("pending", "delivered", "failed"))
