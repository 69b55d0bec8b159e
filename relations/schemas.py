import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import Blueprint, Id, OneOf, QueryId, Schema, Text
from cmdb.classes import ClassName
from relations.types import IMPACT_KINDS

MAX_DEPTH = 50  # the same bound as relations.services.MAX_DEPTH


class RelationshipTypeSchema(Schema):
    name = ma.fields.String()
    label = ma.fields.String()
    reverse_label = ma.fields.String()
    impact = OneOf(
        IMPACT_KINDS,
        metadata={"description": "which end fails when the other does; none: recorded and shown, never propagated"},
    )
    source_classes = ma.fields.List(ma.fields.String(), metadata={"description": "empty: any class"})
    target_classes = ma.fields.List(ma.fields.String(), metadata={"description": "empty: any class"})
    description = ma.fields.String()


class CIRefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    ci_class = ma.fields.String()


class RelationshipWriteSchema(Schema):
    source_id = Id(required=True)
    type = Text(40, min_length=1, required=True)
    target_id = Id(required=True)
    note = Text(1000)


class RelationshipSchema(Schema):
    id = ma.fields.Integer()
    source_id = ma.fields.Integer()
    type = ma.fields.String()
    target_id = ma.fields.Integer()
    source = ma.fields.Nested(CIRefSchema)
    target = ma.fields.Nested(CIRefSchema)
    note = ma.fields.String()
    valid_from = ma.fields.DateTime()
    valid_to = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class RelationshipQuerySchema(Schema):
    ci_id = QueryId(metadata={"description": "relationships with this CI at either end"})
    source_id = QueryId()
    target_id = QueryId()
    type = DelimitedList(Text(40), validate=ma.validate.Length(max=20))
    include_closed = ma.fields.Boolean(metadata={"description": "also removed relationships (history)"})
    as_of = ma.fields.DateTime(metadata={"description": "the relationships valid at that moment (UTC if no zone)"})


PAGE = Blueprint.DEFAULT_PAGINATION_PARAMETERS["page"]
PAGE_SIZE = Blueprint.DEFAULT_PAGINATION_PARAMETERS["page_size"]
MAX_PAGE_SIZE = Blueprint.DEFAULT_PAGINATION_PARAMETERS["max_page_size"]
MAX_PAGE = 2**31 - 1


class ImpactAnswerParams(Schema):
    """How much of an impact answer to send: the whole list (neither parameter), a page of it, or its
    summary. The impact answers of CIs (GET /cis/{id}/impact, /dependencies, POST /impact) and of a
    ticket (GET /tickets/{id}/impact) take these the same way. Either of page and page_size asks
    for a page: the other is then loaded with its default, as on every list."""

    summary = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "true: instead of the `impacted` list, `summary`: counts by CI class, owning team, "
            "business service and depth, the business services, the impacted CIs with open incidents"
        },
    )
    page = ma.fields.Integer(
        strict=False,
        validate=ma.validate.Range(min=1, max=MAX_PAGE),
        metadata={
            "description": "with page and/or page_size: one page of `impacted`, nearest first, then the most "
            "critical, then by id; `count` stays the total (also in X-Pagination). Neither: the whole list "
            f"by depth and id. Default {PAGE}"
        },
    )
    page_size = ma.fields.Integer(
        strict=False,
        validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"items per page (default {PAGE_SIZE})"},
    )

    @ma.validates_schema
    def _summary_or_page(self, data, **kwargs):
        if data.get("summary") and (data.get("page") is not None or data.get("page_size") is not None):
            given = [key for key in ("page", "page_size") if data.get(key) is not None]
            raise ma.ValidationError({key: ["Not with summary: a summary has no items to page."] for key in given})

    @ma.post_load
    def _page_defaults(self, data, **kwargs):
        if data.get("page") is not None or data.get("page_size") is not None:
            data["page"] = data.get("page") or PAGE
            data["page_size"] = data.get("page_size") or PAGE_SIZE
        return data


class _ImpactParams(ImpactAnswerParams):
    max_depth = ma.fields.Integer(strict=False, validate=ma.validate.Range(min=1, max=MAX_DEPTH))
    as_of = ma.fields.DateTime(
        metadata={"description": "ISO 8601; answer from the graph as it was then (UTC if no zone)"}
    )
    relationship_types = DelimitedList(Text(40), validate=ma.validate.Length(max=20))
    ci_classes = DelimitedList(ClassName(), validate=ma.validate.Length(max=50))
    include_inactive = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "also list, under `inactive`, the retired and disposed CIs the walk met"},
    )


class ImpactQuerySchema(_ImpactParams):
    pass


class ImpactRequestSchema(_ImpactParams):
    ci_ids = ma.fields.List(Id(), required=True, validate=ma.validate.Length(min=1, max=1000))
    relationship_types = ma.fields.List(Text(40), validate=ma.validate.Length(max=20))
    ci_classes = ma.fields.List(ClassName(), validate=ma.validate.Length(max=50))
    direction = OneOf(("impact", "dependencies"), load_default="impact")


VISIBLE_HELP = "false: a CI the caller may not see (cairn.auth.policy); then it carries nothing but a null id"


class ImpactCISchema(Schema):
    id = ma.fields.Integer(allow_none=True)
    visible = ma.fields.Boolean(metadata={"description": VISIBLE_HELP})
    name = ma.fields.String()
    ci_class = ma.fields.String()
    criticality = ma.fields.String()


PARENT_HELP = (
    "the CI just before this one on `path` (a failing root at depth 1), whose failure explains this "
    "one's state; null: a CI the caller may not see"
)


class ImpactItemSchema(Schema):
    ci = ma.fields.Nested(ImpactCISchema)
    depth = ma.fields.Integer()
    state = OneOf(("down", "degraded"))
    path = ma.fields.List(
        ma.fields.Integer(allow_none=True),
        metadata={"description": "from a failing root to this CI (null: a CI the caller may not see)"},
    )
    parent = ma.fields.Integer(allow_none=True, metadata={"description": PARENT_HELP})


class InactiveCISchema(ImpactCISchema):
    status = ma.fields.String()


class InactiveItemSchema(Schema):
    ci = ma.fields.Nested(InactiveCISchema)
    depth = ma.fields.Integer()
    path = ma.fields.List(
        ma.fields.Integer(allow_none=True),
        metadata={"description": "from a failing root to this CI (null: a CI the caller may not see)"},
    )


class StateCountsSchema(Schema):
    down = ma.fields.Integer()
    degraded = ma.fields.Integer()


class ClassCountsSchema(StateCountsSchema):
    ci_class = ma.fields.String()


class TeamCountsSchema(StateCountsSchema):
    id = ma.fields.Integer(allow_none=True, metadata={"description": "the owning team; null: CIs no team owns"})
    name = ma.fields.String(allow_none=True)


class DepthCountsSchema(StateCountsSchema):
    depth = ma.fields.Integer(metadata={"description": "hops from the nearest failing root"})


class ServiceCountsSchema(StateCountsSchema):
    """A business service of the answer; down and degraded count the impacted CIs its failure comes
    through (those from which a chain of the walk's relationships leads to it)."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    criticality = ma.fields.String()
    state = OneOf(("down", "degraded"))
    depth = ma.fields.Integer()


class OpenIncidentRefSchema(Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    priority = ma.fields.Integer()
    state = ma.fields.String()


class CIWithIncidentsSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    ci_class = ma.fields.String()
    criticality = ma.fields.String()
    state = OneOf(("down", "degraded"))
    depth = ma.fields.Integer()
    incidents = ma.fields.List(
        ma.fields.Nested(OpenIncidentRefSchema), metadata={"description": "open incidents on it, P1 first"}
    )


class ImpactSummarySchema(Schema):
    """With summary=true, in place of the items. The groups count the impacted CIs the caller may see;
    by_depth counts them all (as the list shows every item's depth and state), `hidden` the others."""

    by_class = ma.fields.List(ma.fields.Nested(ClassCountsSchema), metadata={"description": "the most CIs first"})
    by_team = ma.fields.List(ma.fields.Nested(TeamCountsSchema), metadata={"description": "the most CIs first"})
    by_business_service = ma.fields.List(
        ma.fields.Nested(ServiceCountsSchema),
        metadata={"description": "every business service of the answer the caller may see: down first, "
                  "then the most critical, then the most CIs behind it"},
    )  # fmt: skip
    by_depth = ma.fields.List(ma.fields.Nested(DepthCountsSchema), metadata={"description": "nearest first"})
    open_incidents = ma.fields.List(
        ma.fields.Nested(CIWithIncidentsSchema),
        metadata={"description": "the impacted CIs with open incidents the caller may see (nearest, most "
                  "critical first), from the answer's open tickets"},
    )  # fmt: skip
    hidden = ma.fields.Nested(StateCountsSchema, metadata={"description": "the impacted CIs the caller may not see"})


class ImpactSchema(Schema):
    """Documents the answer; the view writes the JSON itself (thousands of items)."""

    root = ma.fields.Integer()
    roots = ma.fields.List(ma.fields.Integer())
    count = ma.fields.Integer(metadata={"description": "the impacted CIs: all of them, also when paged"})
    down = ma.fields.Integer()
    degraded = ma.fields.Integer()
    impacted = ma.fields.List(
        ma.fields.Nested(ImpactItemSchema),
        metadata={"description": "by depth and id; with page/page_size that page (see page); none with summary"},
    )
    summary = ma.fields.Nested(ImpactSummarySchema)
    business_services = ma.fields.List(ma.fields.Integer(), metadata={"description": "those the caller may see"})
    owner_team_ids = ma.fields.List(
        ma.fields.Integer(),
        metadata={"description": "the teams owning the roots and the impacted CIs the caller may see"},
    )
    graph_version = ma.fields.Integer()
    as_of = ma.fields.DateTime(metadata={"description": "with as_of: the moment the answer describes (UTC)"})
    open_tickets = ma.fields.List(
        ma.fields.Dict(),
        metadata={"description": "the open tickets on the roots and the impacted CIs (of this page when paged) "
                  "that the caller may see"},
    )  # fmt: skip
    hidden_open_tickets = ma.fields.Integer(metadata={"description": "the open tickets on them it may not see"})
    inactive = ma.fields.List(
        ma.fields.Nested(InactiveItemSchema),
        metadata={"description": "with include_inactive: retired and disposed CIs met, neither down nor degraded"},
    )


class PathQuerySchema(Schema):
    from_ = QueryId(required=True, data_key="from")
    to = QueryId(required=True)
    directed = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "true: the chain by which `from` depends on `to`; false: any chain"},
    )


class PathSchema(Schema):
    path = ma.fields.List(
        ma.fields.Integer(allow_none=True), metadata={"description": "null: a CI the caller may not see"}
    )
    relationships = ma.fields.List(ma.fields.Integer(allow_none=True))
    graph_version = ma.fields.Integer()


class SPOFQuerySchema(Schema):
    service_id = QueryId(required=True)


class SPOFItemSchema(Schema):
    id = ma.fields.Integer(allow_none=True)
    visible = ma.fields.Boolean(metadata={"description": VISIBLE_HELP})
    name = ma.fields.String()
    ci_class = ma.fields.String()
    criticality = ma.fields.String()


class SPOFSchema(Schema):
    service_id = ma.fields.Integer()
    count = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(SPOFItemSchema))
    graph_version = ma.fields.Integer()


class CycleSchema(Schema):
    size = ma.fields.Integer()
    ci_ids = ma.fields.List(ma.fields.Integer())
    cycle = ma.fields.List(ma.fields.Integer(), metadata={"description": "one concrete cycle in the group"})
    cis = ma.fields.List(ma.fields.Nested(SPOFItemSchema), metadata={"description": "the first 50 members"})


class CyclesSchema(Schema):
    count = ma.fields.Integer()
    cycles = ma.fields.List(ma.fields.Nested(CycleSchema))
    graph_version = ma.fields.Integer()


class GraphQuerySchema(Schema):
    depth = ma.fields.Integer(load_default=2, validate=ma.validate.Range(min=1, max=6))
    format = OneOf(("json", "graphml", "dot"), load_default="json")
    max_nodes = ma.fields.Integer(load_default=500, validate=ma.validate.Range(min=1, max=5000))
