import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import Id, OneOf, QueryId, Schema, Text
from cmdb.classes import REGISTRY
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


class _ImpactParams(Schema):
    max_depth = ma.fields.Integer(strict=False, validate=ma.validate.Range(min=1, max=MAX_DEPTH))
    as_of = ma.fields.DateTime(
        metadata={"description": "ISO 8601; answer from the graph as it was then (UTC if no zone)"}
    )
    relationship_types = DelimitedList(Text(40), validate=ma.validate.Length(max=20))
    ci_classes = DelimitedList(OneOf(REGISTRY), validate=ma.validate.Length(max=50))
    include_inactive = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "also list, under `inactive`, the retired and disposed CIs the walk met"},
    )


class ImpactQuerySchema(_ImpactParams):
    pass


class ImpactRequestSchema(_ImpactParams):
    ci_ids = ma.fields.List(Id(), required=True, validate=ma.validate.Length(min=1, max=1000))
    relationship_types = ma.fields.List(Text(40), validate=ma.validate.Length(max=20))
    ci_classes = ma.fields.List(OneOf(REGISTRY), validate=ma.validate.Length(max=50))
    direction = OneOf(("impact", "dependencies"), load_default="impact")


VISIBLE_HELP = "false: a CI the caller may not see (cairn.auth.policy); then it carries nothing but a null id"


class ImpactCISchema(Schema):
    id = ma.fields.Integer(allow_none=True)
    visible = ma.fields.Boolean(metadata={"description": VISIBLE_HELP})
    name = ma.fields.String()
    ci_class = ma.fields.String()
    criticality = ma.fields.String()


class ImpactItemSchema(Schema):
    ci = ma.fields.Nested(ImpactCISchema)
    depth = ma.fields.Integer()
    state = OneOf(("down", "degraded"))
    path = ma.fields.List(
        ma.fields.Integer(allow_none=True),
        metadata={"description": "from a failing root to this CI (null: a CI the caller may not see)"},
    )


class InactiveCISchema(ImpactCISchema):
    status = ma.fields.String()


class InactiveItemSchema(Schema):
    ci = ma.fields.Nested(InactiveCISchema)
    depth = ma.fields.Integer()
    path = ma.fields.List(ma.fields.Integer(), metadata={"description": "from a failing root to this CI"})


class ImpactSchema(Schema):
    """Documents the answer; the view writes the JSON itself (thousands of items)."""

    root = ma.fields.Integer()
    roots = ma.fields.List(ma.fields.Integer())
    count = ma.fields.Integer()
    down = ma.fields.Integer()
    degraded = ma.fields.Integer()
    impacted = ma.fields.List(ma.fields.Nested(ImpactItemSchema))
    business_services = ma.fields.List(ma.fields.Integer(), metadata={"description": "those the caller may see"})
    owner_team_ids = ma.fields.List(
        ma.fields.Integer(),
        metadata={"description": "the teams owning the roots and the impacted CIs the caller may see"},
    )
    graph_version = ma.fields.Integer()
    as_of = ma.fields.DateTime(metadata={"description": "with as_of: the moment the answer describes (UTC)"})
    open_tickets = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "the open tickets on these CIs that the caller may see"}
    )
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
