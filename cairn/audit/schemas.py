import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import FullMatch, Schema, Text, When


class ChangeSchema(Schema):
    cursor = ma.fields.Method("_cursor")
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    actor = ma.fields.String()
    actor_id = ma.fields.Integer(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    object_type = ma.fields.String()
    object_id = ma.fields.Integer()
    action = ma.fields.String()
    summary = ma.fields.String()
    changes = ma.fields.Dict()

    def _cursor(self, obj):
        return f"{obj.txid}.{obj.id}"


class FeedSchema(Schema):
    changes = ma.fields.List(ma.fields.Nested(ChangeSchema))
    next_cursor = ma.fields.String()


class FeedQuerySchema(Schema):
    after = ma.fields.String(
        validate=FullMatch(r"^(0|[0-9]{1,19}\.[0-9]{1,19})?$", error="Not a cursor: use next_cursor as given."),
        metadata={"description": "next_cursor of the previous page; omit to start"},
    )
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))
    object_type = DelimitedList(Text(40), validate=ma.validate.Length(max=50))
    action = DelimitedList(Text(20), validate=ma.validate.Length(max=10))
    since = When()
    until = When()
