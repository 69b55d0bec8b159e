import marshmallow as ma
from flask import g, has_request_context
from flask_smorest.fields import Upload
from webargs.fields import DelimitedList

from cairn.api import BulkEditSchema, FullMatch, Id, OneOf, QueryId, Schema, Text, When
from cairn.auth.policy import restricted
from cairn.auth.schemas import TeamRefSchema, UserRefSchema
from cairn.db import utcnow
from cmdb.custom_fields.query import CustomFieldQuery, SortKeys
from cmdb.custom_fields.schemas import CUSTOM_FIELDS_HELP, CustomFieldValues
from cmdb.schemas import ExternalIdSchema
from cmdb.services import visible_ci_ids
from relations.schemas import MAX_DEPTH, ImpactAnswerParams, ImpactSchema
from tickets import categories, sla, workflow
from tickets.models import KINDS, LINK_TYPES, OUTCOMES
from tickets.slas.schemas import SLAClockSchema, SLARefSchema


def Level(**kwargs) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=3), **kwargs)


LONG_TEXT = 20000


CHANGE_TYPE_HELP = (
    "changes: standard (pre-approved, opened from a change template: skips CAB approval), normal "
    "(assessed and approved by the change managers), emergency (may be implemented at once, approved "
    "after the fact)"
)


class TicketCreateSchema(Schema):
    kind = OneOf(KINDS, required=True)
    title = Text(200, min_length=1, metadata={"description": "required, except for a change from a template"})
    description = Text(LONG_TEXT)
    impact = Level(metadata={"description": "1 high .. 3 low (default 3)"})
    urgency = Level(metadata={"description": "1 high .. 3 low (default 3)"})
    requester_id = Id(allow_none=True)
    assignee_id = Id(allow_none=True)
    team_id = Id(allow_none=True)
    category_id = Id(
        allow_none=True,
        metadata={
            "description": "a category of the ticket's kind (GET /ticket-categories); no team_id: its default team"
        },
    )
    ci_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=1000))
    custom_fields = CustomFieldValues()
    planned_start = When(allow_none=True)
    planned_end = When(allow_none=True)
    implementation_plan = Text(LONG_TEXT, allow_none=True)
    backout_plan = Text(LONG_TEXT, allow_none=True)
    root_cause = Text(LONG_TEXT, allow_none=True)
    workaround = Text(LONG_TEXT, allow_none=True)
    external_ids = ma.fields.List(ma.fields.Nested(ExternalIdSchema), validate=ma.validate.Length(max=50))
    change_type = OneOf(
        workflow.CHANGE_TYPES,
        metadata={"description": f"{CHANGE_TYPE_HELP}; default normal (standard with a template)"},
    )
    template_id = Id(
        metadata={
            "description": "changes: the change template a standard change is opened from; its title, "
            "description, plans and CIs fill what the request leaves out"
        }
    )


class TicketUpdateSchema(Schema):
    title = Text(200, min_length=1)
    description = Text(LONG_TEXT)
    impact = Level()
    urgency = Level()
    requester_id = Id()
    assignee_id = Id(allow_none=True)
    team_id = Id(allow_none=True)
    category_id = Id(allow_none=True, metadata={"description": "an active category of the ticket's kind; null: none"})
    custom_fields = CustomFieldValues()
    planned_start = When(allow_none=True)
    planned_end = When(allow_none=True)
    implementation_plan = Text(LONG_TEXT, allow_none=True)
    backout_plan = Text(LONG_TEXT, allow_none=True)
    outcome = OneOf(OUTCOMES, allow_none=True)
    root_cause = Text(LONG_TEXT, allow_none=True)
    workaround = Text(LONG_TEXT, allow_none=True)
    external_ids = ma.fields.List(ma.fields.Nested(ExternalIdSchema), validate=ma.validate.Length(max=50))
    change_type = OneOf(
        workflow.CHANGE_TYPES,
        metadata={"description": "normal or emergency, until the change is scheduled (standard: from a template)"},
    )


VISIBLE_HELP = "false: an object the caller may not see (cairn.auth.policy); then it carries nothing but a null id"


def Visible() -> ma.fields.Boolean:
    """Set (false) only on the placeholder of an object the caller may not see."""
    return ma.fields.Boolean(metadata={"description": VISIBLE_HELP})


class TicketCategoryRefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    label = ma.fields.String()


class TicketCategorySchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    label = ma.fields.String()
    kind = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True, metadata={"description": "set: a subcategory of that category"})
    path = ma.fields.Function(categories.path_of, metadata={"description": "Category > Subcategory"})
    default_team_id = ma.fields.Integer(allow_none=True)
    default_team = ma.fields.Nested(TeamRefSchema, allow_none=True)
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


CATEGORY_NAME = ma.validate.Regexp(categories.NAME.pattern, error=categories.NAME_HELP)


class TicketCategoryUpdateSchema(Schema):
    name = Text(60, validate=CATEGORY_NAME)
    label = Text(100, min_length=1)
    parent_id = Id(allow_none=True, metadata={"description": "a top-level category of the same kind; null: top level"})
    default_team_id = Id(allow_none=True, metadata={"description": "the team a new ticket in it goes to"})
    active = ma.fields.Boolean(metadata={"description": "false: no new ticket takes it (nor its subcategories)"})


class TicketCategoryWriteSchema(TicketCategoryUpdateSchema):
    name = Text(60, required=True, validate=CATEGORY_NAME)
    label = Text(100, min_length=1, required=True)
    kind = OneOf(KINDS, required=True)


class TicketCategoryQuerySchema(Schema):
    kind = DelimitedList(OneOf(KINDS), validate=ma.validate.Length(max=4))
    active = ma.fields.Boolean()
    parent_id = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=2**31 - 1), metadata={"description": "0: the top-level categories"}
    )
    q = Text(100, metadata={"description": "words of the label or name"})


class TicketRefSchema(Schema):
    id = ma.fields.Integer(allow_none=True)
    visible = Visible()
    number = ma.fields.String()
    kind = ma.fields.String()
    title = ma.fields.String()
    state = ma.fields.String()
    priority = ma.fields.Integer()


class SLASchema(Schema):
    response_due = ma.fields.DateTime(allow_none=True)
    resolution_due = ma.fields.DateTime(allow_none=True)
    paused = ma.fields.Boolean()
    on_hold_seconds = ma.fields.Integer()
    response_breached = ma.fields.Boolean()
    resolution_breached = ma.fields.Boolean()
    breached = ma.fields.Boolean()
    # The business-hours clock (tickets.slas); without a policy, the wall clock's figures and nulls.
    policy = ma.fields.Nested(SLARefSchema, allow_none=True)
    calendar = ma.fields.Nested(SLARefSchema, allow_none=True)
    started_at = ma.fields.DateTime()
    response_remaining_seconds = ma.fields.Integer(allow_none=True)
    resolution_remaining_seconds = ma.fields.Integer(allow_none=True)
    response_due_at = ma.fields.DateTime(allow_none=True)
    resolution_due_at = ma.fields.DateTime(allow_none=True)
    warned = ma.fields.Boolean()


class RiskReasonSchema(Schema):
    rule = ma.fields.String()
    reason = ma.fields.String()
    value = ma.fields.Integer()
    points = ma.fields.Integer()
    max_points = ma.fields.Integer(metadata={"description": "the most this factor can give"})


class _Answer:
    """A ticket as its answer shows it: the row, plus what is derived once per answer (the caller's
    moves, a change's risk as of now) so that several fields can read it."""

    def __init__(self, ticket, **derived):
        self._ticket = ticket
        self.__dict__.update(derived)

    def __getattr__(self, name):
        return getattr(self._ticket, name)


def _viewer():
    return g.get("user") if has_request_context() else None


class TicketSchema(Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    external_ids = ma.fields.List(ma.fields.Nested(ExternalIdSchema))
    kind = ma.fields.String()
    title = ma.fields.String()
    description = ma.fields.String()
    state = ma.fields.String()
    allowed_transitions = ma.fields.List(
        ma.fields.String(), metadata={"description": "the states the caller may move the ticket to"}
    )
    impact = ma.fields.Integer()
    urgency = ma.fields.Integer()
    priority = ma.fields.Integer()
    requester_id = ma.fields.Integer(allow_none=True)
    requester = ma.fields.Nested(UserRefSchema, allow_none=True)
    assignee_id = ma.fields.Integer(allow_none=True)
    assignee = ma.fields.Nested(UserRefSchema, allow_none=True)
    team_id = ma.fields.Integer(allow_none=True)
    team = ma.fields.Nested(TeamRefSchema, allow_none=True)
    category_id = ma.fields.Integer(allow_none=True)
    category = ma.fields.Nested(TicketCategoryRefSchema, allow_none=True)
    custom_fields = ma.fields.Dict(metadata={"description": CUSTOM_FIELDS_HELP})
    ci_ids = ma.fields.List(ma.fields.Integer(), metadata={"description": "the affected CIs the caller may see"})
    hidden_ci_count = ma.fields.Integer(
        metadata={"description": "how many more affected CIs there are that the caller may not see"}
    )
    sla = ma.fields.Method("_sla")
    ola = ma.fields.Method(
        "_ola", metadata={"description": "the assigned team's own clock, when an OLA policy applies (else null)"}
    )
    acknowledged_at = ma.fields.DateTime(allow_none=True)
    resolved_at = ma.fields.DateTime(allow_none=True)
    closed_at = ma.fields.DateTime(allow_none=True)
    canceled_at = ma.fields.DateTime(allow_none=True)
    resolution_code = ma.fields.String(allow_none=True)
    resolution_note = ma.fields.String(allow_none=True)
    hold_reason = ma.fields.String(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)
    # problems
    root_cause = ma.fields.String(allow_none=True)
    workaround = ma.fields.String(allow_none=True)
    known_error = ma.fields.Boolean()
    # changes
    planned_start = ma.fields.DateTime(allow_none=True)
    planned_end = ma.fields.DateTime(allow_none=True)
    implementation_plan = ma.fields.String(allow_none=True)
    backout_plan = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(allow_none=True)
    actual_start = ma.fields.DateTime(allow_none=True)
    actual_end = ma.fields.DateTime(allow_none=True)
    approval_round = ma.fields.Integer()
    change_type = ma.fields.String(allow_none=True, metadata={"description": CHANGE_TYPE_HELP})
    template_id = ma.fields.Integer(allow_none=True)
    retrospective_approval_pending = ma.fields.Boolean(
        metadata={"description": "an emergency change implemented without the approvals it still needs"}
    )
    risk = ma.fields.String(allow_none=True, metadata={"description": "low, medium or high; open changes: as of now"})
    risk_score = ma.fields.Integer(allow_none=True)
    risk_reasons = ma.fields.List(
        ma.fields.Nested(RiskReasonSchema), allow_none=True, metadata={"description": "the factors that gave points"}
    )
    risk_factors = ma.fields.List(
        ma.fields.Nested(RiskReasonSchema),
        allow_none=True,
        metadata={"description": "every factor weighed (tickets/risk.py), with its points"},
    )
    risk_assessed_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    @ma.pre_dump(pass_collection=True)
    def _derive_all(self, data, many, **kwargs):
        viewer = _viewer()
        tickets = list(data) if many else [data]
        visible = None
        if restricted(viewer):  # one query for the whole page: which of the tickets' CIs it may see
            visible = visible_ci_ids(viewer, {ci_id for ticket in tickets for ci_id in ticket.ci_ids})
        answers = [self._derive(ticket, viewer, visible) for ticket in tickets]
        return answers if many else answers[0]

    def _derive(self, ticket, viewer, visible):
        from tickets import services

        ci_ids = ticket.ci_ids
        shown = ci_ids if visible is None else [ci_id for ci_id in ci_ids if ci_id in visible]
        derived = {
            "allowed_transitions": services.allowed_moves(ticket, viewer),
            "retrospective_approval_pending": services.approval_pending_after_the_fact(ticket),
            "ci_ids": shown,
            "hidden_ci_count": len(ci_ids) - len(shown),
        }
        assessment = services.risk_of(ticket) or {}
        derived.update(
            risk=assessment.get("risk"),
            risk_score=assessment.get("score"),
            risk_reasons=assessment.get("reasons"),
            risk_factors=assessment.get("factors"),
            risk_assessed_at=assessment.get("assessed_at"),
        )
        return _Answer(ticket, **derived)

    def _sla(self, ticket):
        return SLASchema().dump(sla.status(ticket, utcnow()))

    def _ola(self, ticket):
        block = sla.ola_status(ticket, utcnow())
        return None if block is None else SLAClockSchema().dump(block)


class TransitionAnswerSchema(TicketSchema):
    resolved_linked = ma.fields.List(
        ma.fields.Integer(),
        allow_none=True,
        metadata={"description": "with resolve_linked: the linked incidents resolved with this ticket"},
    )


SORTABLE = ("created_at", "updated_at", "priority", "number", "state", "planned_start", "resolution_due", "id")


class TicketQuerySchema(CustomFieldQuery, Schema):
    """GET /tickets's filters; ``cf_<name>=<value>`` filters by a custom field (CustomFieldQuery)."""

    CUSTOM_FIELDS_TARGET = "ticket"

    kind = DelimitedList(OneOf(KINDS), validate=ma.validate.Length(max=4))
    change_type = DelimitedList(OneOf(workflow.CHANGE_TYPES), validate=ma.validate.Length(max=3))
    state = DelimitedList(OneOf(workflow.all_states()), validate=ma.validate.Length(max=20))
    priority = DelimitedList(
        ma.fields.Integer(validate=ma.validate.Range(min=1, max=5)), validate=ma.validate.Length(max=5)
    )
    ci_id = QueryId()
    assignee_id = QueryId()
    team_id = QueryId()
    requester_id = QueryId()
    category_id = QueryId(metadata={"description": "the category or any of its subcategories"})
    open = ma.fields.Boolean(metadata={"description": "true: not resolved, closed or canceled"})
    breached = ma.fields.Boolean()
    known_error = ma.fields.Boolean()
    window_from = When(metadata={"description": "change calendar: windows ending after this"})
    window_to = When(metadata={"description": "change calendar: windows starting before this"})
    q = Text(200, metadata={"description": "a ticket number, or words of the title"})
    sort = SortKeys(SORTABLE)

    @ma.validates_schema
    def _window(self, data, **kwargs):
        if data.get("window_from") and data.get("window_to") and data["window_to"] <= data["window_from"]:
            raise ma.ValidationError("window_to must be after window_from.", "window_to")


class TransitionSchema(Schema):
    to = OneOf(workflow.all_states(), required=True)
    note = Text(4000)
    resolution_code = OneOf(workflow.RESOLUTION_CODES)
    outcome = OneOf(OUTCOMES)
    workaround = Text(LONG_TEXT)
    resolve_linked = ma.fields.Boolean(
        metadata={
            "description": "resolving an incident (a major incident): resolve its open duplicates and the incidents "
            "caused_by it too; resolving a problem: the incidents caused_by it. The answer lists them in "
            "resolved_linked"
        }
    )
    resolve_linked_incidents = ma.fields.Boolean(metadata={"description": "the same as resolve_linked"})


# Something besides white space (an empty-looking comment would notify everybody about nothing).
NOT_BLANK = r"[\s\S]*\S[\s\S]*"


class CommentWriteSchema(Schema):
    body = Text(
        LONG_TEXT,
        min_length=1,
        required=True,
        validate=FullMatch(NOT_BLANK, "Write something: a comment can't be only white space."),
    )
    internal = ma.fields.Boolean(load_default=False, metadata={"description": "an internal work note"})


class CommentSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    author_id = ma.fields.Integer(allow_none=True)
    author = ma.fields.Nested(UserRefSchema, allow_none=True)
    body = ma.fields.String()
    internal = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class TicketCIWriteSchema(Schema):
    ci_id = Id(required=True)


class AffectedCIRefSchema(Schema):
    id = ma.fields.Integer(allow_none=True)
    visible = Visible()
    name = ma.fields.String()
    ci_class = ma.fields.String()
    criticality = ma.fields.String()
    status = ma.fields.String()


class TicketCISchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    ci_id = ma.fields.Integer(allow_none=True, metadata={"description": "null: a CI the caller may not see"})
    ci = ma.fields.Nested(AffectedCIRefSchema)
    created_at = ma.fields.DateTime()


class LinkWriteSchema(Schema):
    ticket_id = Id(required=True)
    type = OneOf(LINK_TYPES, required=True)


class LinkSchema(Schema):
    id = ma.fields.Integer()
    type = ma.fields.String()
    source_id = ma.fields.Integer(allow_none=True, metadata={"description": "null: a ticket the caller may not see"})
    target_id = ma.fields.Integer(allow_none=True, metadata={"description": "null: a ticket the caller may not see"})
    source = ma.fields.Nested(TicketRefSchema)
    target = ma.fields.Nested(TicketRefSchema)
    created_at = ma.fields.DateTime()


class WatcherWriteSchema(Schema):
    user_id = Id(required=True)


class WatcherSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    user = ma.fields.Nested(UserRefSchema)
    created_at = ma.fields.DateTime()


class UploadSchema(Schema):
    file = Upload(required=True)


class AttachmentSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    filename = ma.fields.String()
    content_type = ma.fields.String()
    size = ma.fields.Integer()
    sha256 = ma.fields.String()
    uploaded_by_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()


class ApprovalWriteSchema(Schema):
    decision = OneOf(("approve", "reject"), required=True)
    comment = Text(2000, load_default="")


class ApprovalSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer()
    approver_id = ma.fields.Integer()
    approver = ma.fields.Nested(UserRefSchema)
    round = ma.fields.Integer()
    decision = ma.fields.String()
    comment = ma.fields.String()
    created_at = ma.fields.DateTime()


class BlackoutSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    starts_at = When(required=True)
    ends_at = When(required=True)
    reason = Text(2000)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class BlackoutQuerySchema(Schema):
    window_from = When()
    window_to = When()


class OverlapSchema(Schema):
    start = ma.fields.DateTime()
    end = ma.fields.DateTime()


class ConflictSchema(Schema):
    ticket = ma.fields.Nested(TicketRefSchema)
    planned_start = ma.fields.Method("_start")
    planned_end = ma.fields.Method("_end")
    overlap = ma.fields.Nested(OverlapSchema, allow_none=True)
    shared_ci_ids = ma.fields.List(ma.fields.Integer())
    direct_ci_ids = ma.fields.List(ma.fields.Integer())

    def _start(self, item):
        start = getattr(item["ticket"], "planned_start", None)  # none on a change the caller may not see
        return start.isoformat() if start else None

    def _end(self, item):
        end = getattr(item["ticket"], "planned_end", None)
        return end.isoformat() if end else None


class TicketImpactQuerySchema(ImpactAnswerParams):
    """The impact of the ticket's CIs failing together: ``summary``, ``page`` and ``page_size`` as on
    GET /cis/{id}/impact and POST /impact."""

    max_depth = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_DEPTH))
    as_of = When(metadata={"description": "ISO 8601; answer from the graph as it was then (UTC if no zone)"})


class TicketImpactSchema(ImpactSchema):
    """POST /impact's answer for the ticket's CIs (whole, a page or the summary, as asked), with the
    open tickets on them; a ticket without CIs has an answer with nothing impacted."""

    class Meta(Schema.Meta):
        exclude = ("root", "inactive")

    ticket_id = ma.fields.Integer()


class ProbableCauseQuerySchema(Schema):
    hours = ma.fields.Integer(validate=ma.validate.Range(min=1, max=24 * 30))
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))


class CauseSchema(Schema):
    ci = ma.fields.Dict()
    incident_count = ma.fields.Integer()
    mean_distance = ma.fields.Float()
    incidents = ma.fields.List(ma.fields.Dict())


class ProbableCausesSchema(Schema):
    window_hours = ma.fields.Integer()
    open_incidents = ma.fields.Integer()
    causes = ma.fields.List(ma.fields.Nested(CauseSchema))


class CIFiguresSchema(Schema):
    ci_id = ma.fields.Integer()
    open_tickets = ma.fields.Integer()
    incidents_last_90_days = ma.fields.Integer()
    resolved_incidents_last_90_days = ma.fields.Integer()
    mean_time_to_resolve_seconds = ma.fields.Integer(allow_none=True)


class ChangeTemplateSchema(Schema):
    """A standard change template: changes opened from it are pre-approved (no CAB approval)."""

    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    description = Text(LONG_TEXT)
    implementation_plan = Text(LONG_TEXT, allow_none=True)
    backout_plan = Text(LONG_TEXT, allow_none=True)
    ci_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=1000), metadata={"description": "default CIs"})
    active = ma.fields.Boolean(metadata={"description": "false: retired, no new changes from it"})
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class ChangeTemplateUpdateSchema(ChangeTemplateSchema):
    name = Text(200, min_length=1)


class ChangeTemplateQuerySchema(Schema):
    active = ma.fields.Boolean()


class TicketBulkEditSchema(BulkEditSchema):
    set_ = ma.fields.Nested(
        TicketUpdateSchema, required=True, data_key="set", metadata={"description": "as PATCH /tickets/{id}"}
    )
