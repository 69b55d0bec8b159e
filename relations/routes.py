"""/relationships, /relationship-types, impact and the graph analysis endpoints."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.policy import restricted
from cairn.auth.roles import CMDB_WRITERS, EVERYONE, STAFF_READERS
from cairn.auth.scopes import READ, scope
from cairn.pagination import paginate_select
from cmdb.services import get_ci, visible_ci_ids
from relations import export, services
from relations.schemas import (
    CyclesSchema,
    GraphQuerySchema,
    ImpactQuerySchema,
    ImpactRequestSchema,
    ImpactSchema,
    PathQuerySchema,
    PathSchema,
    RelationshipQuerySchema,
    RelationshipSchema,
    RelationshipTypeSchema,
    RelationshipWriteSchema,
    SPOFQuerySchema,
    SPOFSchema,
)

blp = Blueprint("relations", __name__, description="Relationships between CIs, impact analysis and the graph")


def _json(body, status: int = 200):
    return current_app.response_class(current_app.json.dumps(body), status=status, mimetype="application/json")


def _check_visible(ci_ids) -> None:
    """A CI the caller may not see is 404, as on GET /cis/{id} (the same answer as an unknown one)."""
    user = current_user()
    if restricted(user):
        visible = visible_ci_ids(user, ci_ids)
        for ci_id in ci_ids:
            if ci_id not in visible:
                get_ci(ci_id, user)  # raises the one 404 of the CI endpoints


@blp.route("/relationship-types")
class RelationshipTypes(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, RelationshipTypeSchema(many=True))
    def get(self):
        """The relationship types: labels, impact direction, the CI classes allowed at each end."""
        return services.relationship_types()


@blp.route("/relationships")
class Relationships(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(RelationshipQuerySchema, location="query")
    @blp.response(200, RelationshipSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List relationships (open ones unless include_closed or as_of)."""
        return paginate_select(services.search_relationships(filters), pagination_parameters)

    @requires(*CMDB_WRITERS)
    @blp.arguments(RelationshipWriteSchema)
    @blp.response(201, RelationshipSchema)
    def post(self, data):
        """Relate two CIs: duplicate 409, self-loop or disallowed classes 422."""
        rel = services.create_relationship(data)
        return with_etag(rel)


@blp.route("/relationships/<int:rel_id>")
class RelationshipById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, RelationshipSchema)
    def get(self, rel_id):
        """One relationship (also a removed one, with its valid_to)."""
        return with_etag(services.get_relationship(rel_id))

    @requires(*CMDB_WRITERS)
    @blp.response(204)
    def delete(self, rel_id):
        """Remove a relationship: its validity ends now; it stays in history and in as_of answers."""
        rel = services.get_relationship(rel_id)
        check_if_match(rel)
        services.delete_relationship(rel)


def _impact_kwargs(args) -> dict:
    return {
        "max_depth": args.get("max_depth"),
        "as_of": args.get("as_of"),
        "relationship_types": args.get("relationship_types") or None,
        "ci_classes": args.get("ci_classes") or None,
        "include_inactive": bool(args.get("include_inactive")),
    }


def _impact_answer(ci_ids, args, *, single_root: bool, **more):
    """The impact answer the arguments ask for, as JSON, with X-Pagination when paged (the schema,
    relations.schemas.ImpactAnswerParams, gives both page and page_size when either was asked)."""
    page, page_size = args.get("page"), args.get("page_size")
    body = services.impact_answer(
        ci_ids, single_root=single_root, viewer=current_user(), summary=bool(args.get("summary")), page=page,
        page_size=page_size, **_impact_kwargs(args), **more,
    )  # fmt: skip
    response = _json(body)
    if page is not None:
        response.headers[blp.PAGINATION_HEADER_NAME] = blp.pagination_header_value(page, page_size, body["count"])
    return response


# The X-Pagination header, sent when the answer is paged.
_PAGED = {"X-Pagination": "PAGINATION"}


@blp.route("/cis/<int:ci_id>/impact")
class CIImpact(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(ImpactQuerySchema, location="query")
    @blp.response(200, ImpactSchema, headers=_PAGED)
    def get(self, args, ci_id):
        """What breaks if this CI fails: every dependent CI, down or degraded, with depth and path."""
        _check_visible([ci_id])
        return _impact_answer([ci_id], args, single_root=True)


@blp.route("/cis/<int:ci_id>/dependencies")
class CIDependencies(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(ImpactQuerySchema, location="query")
    @blp.response(200, ImpactSchema, headers=_PAGED)
    def get(self, args, ci_id):
        """What this CI needs, transitively (degraded: a redundant cluster absorbs that loss)."""
        _check_visible([ci_id])
        return _impact_answer([ci_id], args, single_root=True, direction="dependencies")


@blp.route("/impact")
class WhatIf(MethodView):
    @requires(*EVERYONE)
    @scope(READ)  # a question sent as POST: it writes nothing
    @blp.arguments(ImpactRequestSchema)
    @blp.response(200, ImpactSchema, headers=_PAGED)
    def post(self, data):
        """What-if: the impact of several CIs failing together."""
        _check_visible(data["ci_ids"])
        return _impact_answer(data["ci_ids"], data, single_root=False, direction=data["direction"], _field="ci_ids")


@blp.route("/graph/path")
class GraphPath(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(PathQuerySchema, location="query")
    @blp.response(200, PathSchema)
    def get(self, args):
        """The shortest chain of relationships from one CI to another; 404 when there is none."""
        return services.shortest_path(args["from_"], args["to"], directed=args["directed"], viewer=current_user())


@blp.route("/graph/single-points-of-failure")
class SinglePointsOfFailure(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(SPOFQuerySchema, location="query")
    @blp.response(200, SPOFSchema)
    def get(self, args):
        """The CIs whose failure alone takes the service down (redundancy respected)."""
        return services.single_points_of_failure(args["service_id"], current_user())


@blp.route("/graph/cycles")
class GraphCycles(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CyclesSchema)
    def get(self):
        """Groups of CIs that depend on each other in a circle."""
        return services.cycles(current_user())


@blp.route("/cis/<int:ci_id>/graph")
class CIGraph(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(GraphQuerySchema, location="query")
    @blp.response(200)
    def get(self, args, ci_id):
        """The CI's neighbourhood: Cytoscape.js JSON, GraphML or DOT."""
        ci = get_ci(ci_id, current_user())
        hood = services.neighbourhood(ci, args["depth"], args["max_nodes"], viewer=current_user())
        if args["format"] == "graphml":
            return current_app.response_class(export.graphml(hood), mimetype="application/graphml+xml")
        if args["format"] == "dot":
            return current_app.response_class(export.dot(hood), mimetype="text/vnd.graphviz")
        return _json(export.cytoscape(hood))
