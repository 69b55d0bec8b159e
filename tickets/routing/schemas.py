"""Request and answer shapes of routing rules, team assignment settings and the dry run."""

from __future__ import annotations

import marshmallow as ma

from cairn.api import Id, OneOf, Schema, Text
from tickets.models import KINDS
from tickets.routing.models import ASSIGNMENT_MODES

POSITION = ma.validate.Range(min=-1_000_000, max=1_000_000)
MAX_WORDS = 50


class RoutingMatchSchema(Schema):
    """Conditions on the ticket; all that are set must hold (one left out or null matches anything)."""

    kind = OneOf(KINDS, allow_none=True)
    category_id = Id(allow_none=True, metadata={"description": "the ticket's category, or its subcategories"})
    ci_class = Text(
        60, min_length=1, allow_none=True, metadata={"description": "a linked CI of this class or a subclass"}
    )
    ci_team_id = Id(allow_none=True, metadata={"description": "a linked CI owned by this team"})
    requester_team_id = Id(allow_none=True, metadata={"description": "the requester is a member of this team"})
    requester_location_id = Id(
        allow_none=True,
        metadata={"description": "a CI assigned to the requester is at this location or inside it"},
    )
    mail_route = ma.fields.Email(
        allow_none=True,
        validate=ma.validate.Length(max=254),
        metadata={"description": "the CAIRN_MAIL_ROUTES address the ticket was mailed to"},
    )
    title_words = ma.fields.List(
        Text(100, min_length=1),
        allow_none=True,
        validate=ma.validate.Length(max=MAX_WORDS),
        metadata={"description": "the title holds one of these words or phrases (whole words, any case)"},
    )


class RoutingActionsSchema(Schema):
    """What a matching rule sets; at least one."""

    team_id = Id(allow_none=True)
    priority = ma.fields.Integer(
        strict=True,
        allow_none=True,
        validate=ma.validate.Range(min=1, max=5),
        metadata={"description": "set through impact and urgency, so the priority stays derived"},
    )
    category_id = Id(allow_none=True, metadata={"description": "a category of the ticket's kind"})
    assignee_id = Id(allow_none=True, metadata={"description": "a member of the ticket's team, if it has one"})


class RoutingRuleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    position = ma.fields.Integer(
        strict=True,
        load_default=None,
        validate=POSITION,
        metadata={"description": "rules are tried lowest first (then by id); default: after the last"},
    )
    active = ma.fields.Boolean(load_default=True)
    override = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "true: the actions replace what the client set explicitly"},
    )
    match = ma.fields.Nested(RoutingMatchSchema, load_default=dict)
    actions = ma.fields.Nested(RoutingActionsSchema, required=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class RoutingRuleUpdateSchema(RoutingRuleSchema):
    name = Text(200, min_length=1)
    position = ma.fields.Integer(strict=True, validate=POSITION)
    active = ma.fields.Boolean()
    override = ma.fields.Boolean()
    match = ma.fields.Nested(RoutingMatchSchema)
    actions = ma.fields.Nested(RoutingActionsSchema)


class RoutingOrderSchema(Schema):
    ids = ma.fields.List(
        Id(),
        required=True,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "every rule's id, in the order to try them"},
    )


class TeamAssignmentSchema(Schema):
    team_id = ma.fields.Integer(dump_only=True)
    mode = OneOf(
        ASSIGNMENT_MODES,
        required=True,
        metadata={"description": "manual: nobody; round_robin: members in turn; least_loaded: fewest open tickets"},
    )
    calendar_id = Id(
        allow_none=True,
        load_default=None,
        metadata={"description": "a business calendar: nobody is on shift outside its hours"},
    )
    away_user_ids = ma.fields.List(
        Id(), load_default=list, validate=ma.validate.Length(max=1000), metadata={"description": "members away"}
    )
    on_shift = ma.fields.List(ma.fields.Integer(), dump_only=True, metadata={"description": "member ids, now"})
    last_assignee_id = ma.fields.Integer(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    updated_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class DraftSchema(Schema):
    """A ticket as it would be created."""

    kind = OneOf(KINDS, required=True)
    title = Text(200, load_default="")
    category_id = Id(allow_none=True)
    ci_ids = ma.fields.List(Id(), load_default=list, validate=ma.validate.Length(max=1000))
    requester_id = Id(allow_none=True)
    mail_route = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    team_id = Id(allow_none=True)
    assignee_id = Id(allow_none=True)
    impact = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=3))
    urgency = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=3))


class DryRunSchema(Schema):
    ticket_id = Id(metadata={"description": "an existing ticket, routed as if its category had just changed"})
    ticket = ma.fields.Nested(DraftSchema, metadata={"description": "a ticket draft, routed as if created now"})
    mail_route = ma.fields.Email(
        allow_none=True,
        validate=ma.validate.Length(max=254),
        metadata={"description": "with ticket_id: the mail route to assume"},
    )

    @ma.validates_schema
    def _one(self, data, **kwargs):
        if ("ticket_id" in data) == ("ticket" in data):
            raise ma.ValidationError("Send either ticket_id or ticket (a draft).", "_schema")


class FailedConditionSchema(Schema):
    condition = ma.fields.String()
    wanted = ma.fields.Raw()
    found = ma.fields.Raw()


class TriedRuleSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    position = ma.fields.Integer()
    matched = ma.fields.Boolean()
    failed = ma.fields.List(ma.fields.Nested(FailedConditionSchema))


class ActionOutcomeSchema(Schema):
    action = ma.fields.String()
    value = ma.fields.Raw()
    outcome = ma.fields.String(metadata={"description": "set, kept (the client's value) or skipped"})
    reason = ma.fields.String()


class RoutedValuesSchema(Schema):
    team_id = ma.fields.Integer(allow_none=True)
    assignee_id = ma.fields.Integer(allow_none=True)
    category_id = ma.fields.Integer(allow_none=True)
    priority = ma.fields.Integer()


class DryRunAnswerSchema(Schema):
    rule = ma.fields.Nested(TriedRuleSchema, allow_none=True, metadata={"description": "the rule that applies"})
    tried = ma.fields.List(
        ma.fields.Nested(TriedRuleSchema),
        metadata={"description": "every rule tried, in order, up to and including the one that applies"},
    )
    actions = ma.fields.List(ma.fields.Nested(ActionOutcomeSchema))
    assignment = ma.fields.Dict(allow_none=True, metadata={"description": "the team rota's choice, if it runs"})
    before = ma.fields.Nested(RoutedValuesSchema)
    after = ma.fields.Nested(RoutedValuesSchema)
