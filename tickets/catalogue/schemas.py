"""Request and answer shapes of catalogue items, orders, approvals and fulfilment tasks."""

from __future__ import annotations

import marshmallow as ma

from cairn.api import Id, OneOf, QueryId, Schema, Text
from cairn.auth.roles import ALL_ROLES
from cairn.auth.schemas import TeamRefSchema, UserRefSchema
from tickets.catalogue import services
from tickets.catalogue.models import APPROVAL_MODES, ITEM_STATES, STEP_KINDS, STEP_MODES, STEP_STATES, TASK_STATES


class FormFieldSchema(Schema):
    field = Text(50, min_length=1, required=True, metadata={"description": "a custom field for request tickets"})
    required = ma.fields.Boolean(load_default=False)


class AudienceSchema(Schema):
    roles = ma.fields.List(OneOf(ALL_ROLES), validate=ma.validate.Length(max=len(ALL_ROLES)), load_default=list)
    team_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=100), load_default=list)


class ApprovalStepTemplateSchema(Schema):
    kind = OneOf(STEP_KINDS, required=True, metadata={"description": "manager (of the person ordered for), team, user"})
    team_id = Id(allow_none=True, metadata={"description": "a team step: its members approve"})
    user_id = Id(allow_none=True, metadata={"description": "a user step: that user approves"})
    mode = OneOf(STEP_MODES, load_default="any", metadata={"description": "any: one approver decides; all: every one"})


class TaskTemplateSchema(Schema):
    title = Text(200, min_length=1, required=True)
    description = Text(5000, load_default="")
    team_id = Id(allow_none=True)
    stage = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1, max=100),
        allow_none=True,
        metadata={"description": "tasks of one stage run in parallel, stages in order (default: one after another)"},
    )
    delivers_ci = ma.fields.Boolean(
        load_default=False, metadata={"description": "this task delivers the item's CI (default: the last task)"}
    )


_ITEM_HELP = {
    "form": "custom fields (applying to request tickets) the orderer fills in, each required here or not",
    "audience": "who may order it: roles and/or teams; both empty: everyone",
    "approval_mode": "sequential: steps one after another; any_of: steps at once, the first approval decides",
}


class CatalogueItemSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    description = Text(20000, load_default="")
    category = Text(100, load_default="")
    active = ma.fields.Boolean(load_default=True)
    form = ma.fields.List(
        ma.fields.Nested(FormFieldSchema),
        validate=ma.validate.Length(max=services.MAX_FORM_FIELDS),
        load_default=list,
        metadata={"description": _ITEM_HELP["form"]},
    )
    audience = ma.fields.Nested(AudienceSchema, load_default=dict, metadata={"description": _ITEM_HELP["audience"]})
    approval_mode = OneOf(
        APPROVAL_MODES, load_default="sequential", metadata={"description": _ITEM_HELP["approval_mode"]}
    )
    approval_steps = ma.fields.List(
        ma.fields.Nested(ApprovalStepTemplateSchema),
        validate=ma.validate.Length(max=services.MAX_STEPS),
        load_default=list,
    )
    tasks = ma.fields.List(
        ma.fields.Nested(TaskTemplateSchema), validate=ma.validate.Length(max=services.MAX_TASKS), load_default=list
    )
    deliver_ci_class = Text(
        60, allow_none=True, metadata={"description": "a fulfilled item deploys a CI of this class from stock"}
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class CatalogueItemUpdateSchema(CatalogueItemSchema):
    class Meta:
        partial = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)
        for field in self.fields.values():
            field.load_default = ma.missing


class CatalogueItemQuerySchema(Schema):
    active = ma.fields.Boolean()
    category = Text(100)
    q = Text(200)
    orderable = ma.fields.Boolean(metadata={"description": "only the items the caller may order"})


class OrderLineSchema(Schema):
    item_id = Id(required=True)
    fields = ma.fields.Dict(keys=Text(50, min_length=1), validate=ma.validate.Length(max=100), load_default=dict)


class OrderSchema(Schema):
    items = ma.fields.List(
        ma.fields.Nested(OrderLineSchema), required=True, validate=ma.validate.Length(min=1, max=services.MAX_LINES)
    )
    requested_for_id = Id(allow_none=True, metadata={"description": "the service desk orders for someone else"})
    note = Text(2000, load_default="")


class ItemOrderSchema(Schema):
    """POST /catalogue-items/{id}/orders: one item."""

    fields = ma.fields.Dict(keys=Text(50, min_length=1), validate=ma.validate.Length(max=100), load_default=dict)
    requested_for_id = Id(allow_none=True)
    note = Text(2000, load_default="")


class RequestItemFieldsSchema(Schema):
    fields = ma.fields.Dict(
        keys=Text(50, min_length=1),
        validate=ma.validate.Length(max=100),
        required=True,
        metadata={"description": "form values, merged into the item's (null removes one)"},
    )


class DecisionAnswerSchema(Schema):
    approver = ma.fields.Nested(UserRefSchema)
    decision = ma.fields.String()
    comment = ma.fields.String()
    at = ma.fields.DateTime(attribute="created_at")


class CatalogueStepSchema(Schema):
    """An approval step as an order shows it."""

    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    request_item_id = ma.fields.Integer()
    number = ma.fields.Integer()
    kind = ma.fields.String()
    mode = ma.fields.String()
    team = ma.fields.Nested(TeamRefSchema, allow_none=True)
    approver_ids = ma.fields.List(ma.fields.Integer())
    state = OneOf(STEP_STATES)
    decided_at = ma.fields.DateTime(allow_none=True)
    decisions = ma.fields.Method("_decisions")

    def _decisions(self, step):
        return DecisionAnswerSchema(many=True).dump(services.decisions_of(step))


class CatalogueApprovalSchema(CatalogueStepSchema):
    """An approval step as its approvers see it: what was ordered, for whom, with which values."""

    item_name = ma.fields.Function(lambda step: step.request_item.catalogue_item.name)
    ticket_number = ma.fields.Function(lambda step: step.request_item.ticket.number)
    requested_for = ma.fields.Function(lambda step: UserRefSchema().dump(step.request_item.requested_for))
    fields = ma.fields.Function(lambda step: step.request_item.fields)


class DecisionSchema(Schema):
    decision = OneOf(("approve", "reject"), required=True)
    comment = Text(2000, load_default="")


class CatalogueTaskSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    ticket_number = ma.fields.Function(lambda task: task.ticket.number)
    request_item_id = ma.fields.Integer()
    position = ma.fields.Integer()
    stage = ma.fields.Integer()
    title = ma.fields.String()
    description = ma.fields.String()
    team = ma.fields.Nested(TeamRefSchema, allow_none=True)
    assignee = ma.fields.Nested(UserRefSchema, allow_none=True)
    delivers_ci_class = ma.fields.String(allow_none=True)
    state = OneOf(TASK_STATES)
    note = ma.fields.String()
    opened_at = ma.fields.DateTime(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)
    completed_by_id = ma.fields.Integer(allow_none=True)
    delivered_ci_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class CatalogueTaskAnswerSchema(CatalogueTaskSchema):
    """A task as the fulfilment queue shows it, with whom the order is for."""

    requested_for = ma.fields.Function(lambda task: UserRefSchema().dump(task.request_item.requested_for))


class TaskQuerySchema(Schema):
    state = OneOf(TASK_STATES)
    team_id = QueryId()
    ticket_id = QueryId()
    mine = ma.fields.Boolean(metadata={"description": "only the tasks of the caller's teams"})


class ApprovalQuerySchema(Schema):
    state = OneOf(STEP_STATES, metadata={"description": "default open; the caller's steps only"})


class TaskCompleteSchema(Schema):
    note = Text(2000, load_default="")
    ci_id = Id(allow_none=True, metadata={"description": "the stock CI to deliver (default: the oldest in stock)"})


class RequestItemSchema(Schema):
    id = ma.fields.Integer()
    position = ma.fields.Integer()
    catalogue_item_id = ma.fields.Integer()
    name = ma.fields.Function(lambda item: item.catalogue_item.name)
    requested_for = ma.fields.Nested(UserRefSchema)
    fields = ma.fields.Dict()
    state = OneOf(ITEM_STATES)
    approval_mode = ma.fields.String()
    delivered_ci_id = ma.fields.Integer(allow_none=True)
    approvals = ma.fields.List(ma.fields.Nested(CatalogueStepSchema), attribute="steps")
    tasks = ma.fields.List(ma.fields.Nested(CatalogueTaskSchema), attribute="work")


class OrderAnswerSchema(Schema):
    """An order: its request ticket, where it stands, and its items with their approvals and tasks."""

    id = ma.fields.Integer(metadata={"description": "the request ticket's id"})
    number = ma.fields.String()
    title = ma.fields.String()
    state = ma.fields.String(metadata={"description": "the request ticket's state"})
    stage = OneOf(ITEM_STATES, metadata={"description": "approval, fulfilment, fulfilled, rejected or canceled"})
    requester_id = ma.fields.Integer()
    cancel_reason = ma.fields.String(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(RequestItemSchema))
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
