"""/cis, /ci-classes, /locations."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import abort

from cairn.api import Blueprint, BulkEditResultSchema, check_if_match, etag_of, with_etag
from cairn.audit.services import history_select
from cairn.auth.guard import current_user, requires
from cairn.auth.policy import restricted
from cairn.auth.roles import ADMINS, CMDB_WRITERS, EVERYONE, STAFF_READERS
from cairn.auth.scopes import ADMIN as ADMIN_SCOPE
from cairn.auth.scopes import scope
from cairn.db import get_or_404
from cairn.pagination import count_of, paginate_select
from cairn.uow import read_only
from cmdb import bulk_edit, custom_classes, export, services
from cmdb.classes import REGISTRY
from cmdb.custom_fields.registry import class_fields
from cmdb.models import Location
from cmdb.schemas import (
    AssignmentSchema,
    CIBulkEditSchema,
    CIClassSchema,
    CIClassUpdateSchema,
    CIClassWriteSchema,
    CIQuerySchema,
    CISchema,
    CIUpdateSchema,
    CIUpsertSchema,
    CIWriteSchema,
    ExternalIdSchema,
    HistoryEntrySchema,
    LocationQuerySchema,
    LocationSchema,
    LocationUpdateSchema,
)

blp = Blueprint("cmdb", __name__, description="Configuration items, their classes and locations")


@blp.route("/ci-classes")
class CIClasses(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, CIClassSchema(many=True))
    def get(self):
        """The CI class registry (built-in and custom) with each class's attribute schema (JSON Schema)."""
        converter = _converter()
        return [_class_answer(c, converter) for c in REGISTRY.values()]

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.arguments(CIClassWriteSchema)
    @blp.response(201, CIClassSchema)
    def post(self, data):
        """Add a custom CI class; it inherits its parent's attributes (422 bad fields, 409 name in use)."""
        return _class_answer(custom_classes.create_class(data), _converter())


@blp.route("/ci-classes/<string:name>")
class CIClassByName(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, CIClassSchema)
    def get(self, name):
        """One CI class, built-in or custom."""
        return _class_answer(custom_classes.get_class_or_404(name), _converter())

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.arguments(CIClassUpdateSchema)
    @blp.response(200, CIClassSchema)
    def patch(self, data, name):
        """Change a custom class (a built-in one is 409)."""
        return _class_answer(custom_classes.update_class(name, data), _converter())

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.response(204)
    def delete(self, name):
        """Remove a custom class no CI, subclass or relationship type uses (409 saying how many)."""
        custom_classes.delete_class(name)


def _class_answer(c, converter) -> dict:
    return {
        "name": c.name,
        "label": c.label,
        "category": c.category,
        "attributes": converter.schema2jsonschema(c.attributes),
        "builtin": c.builtin,
        "parent": c.parent,
        "icon": c.icon,
        "relationship_types": None if c.relationship_types is None else list(c.relationship_types),
        "lifecycle": c.lifecycle,
        "custom_fields": class_fields(c.name),
    }


def _converter():
    api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api.ma_plugin.converter


def _csv_export() -> bool:
    return request.args.get("format") == "csv"


@blp.route("/cis")
class CIs(MethodView):
    @requires(*EVERYONE)
    @read_only(unless=_csv_export)
    @blp.arguments(CIQuerySchema, location="query")
    @blp.response(200, CISchema(many=True))
    @blp.alt_response(200, content_type="text/csv", schema={"type": "string"}, description="OK (format=csv: as CSV)")
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List CIs, filtered and sorted; format=csv streams all matches as CSV."""
        if filters.get("format") == "csv":
            stmt = services.search_cis(filters, current_user(), load=False)
            pagination_parameters.item_count = count_of(stmt)
            return Response(
                stream_with_context(export.iter_csv(stmt, filters.get("ci_class"))),
                mimetype="text/csv",
                headers={"Content-Disposition": 'attachment; filename="cis.csv"'},
            )
        # The total, then the page's answers in one Core statement (no ORM loading of 50 models)
        total, answers = services.ci_list_page(
            filters, current_user(), pagination_parameters.page, pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return answers

    @requires(*CMDB_WRITERS)
    @blp.arguments(CIWriteSchema)
    @blp.response(201, CISchema)
    def post(self, data):
        """Create a CI."""
        ci = services.create_ci(data)
        return with_etag(ci)

    @requires(*CMDB_WRITERS)
    @blp.arguments(CIBulkEditSchema)
    @blp.response(200, BulkEditResultSchema(many=True))
    def patch(self, data):
        """Bulk edit: set the same fields on up to 1,000 CIs (by ids, or the list's filter); per-CI
        results, one bad CI failing alone; dry_run answers the same and writes nothing."""
        return bulk_edit.bulk_edit_cis(data, current_user())


@blp.route("/cis/<int:ci_id>")
class CIById(MethodView):
    @requires(*EVERYONE)
    @read_only
    @blp.response(200, CISchema)
    def get(self, ci_id):
        """One CI."""
        return with_etag(services.ci_answer(ci_id, current_user()))

    @requires(*CMDB_WRITERS)
    @blp.arguments(CIUpdateSchema)
    @blp.response(200, CISchema)
    def patch(self, data, ci_id):
        """Change a CI; status follows the lifecycle; attributes merge."""
        ci = services.get_ci(ci_id, for_update=True)
        check_if_match(ci)
        services.update_ci(ci, data)
        return with_etag(ci)

    @requires(*CMDB_WRITERS)
    @blp.response(204)
    def delete(self, ci_id):
        """Delete a CI nothing refers to (else 409: retire it instead)."""
        ci = services.get_ci(ci_id, for_update=True)
        check_if_match(ci)
        services.delete_ci(ci)


@blp.route("/cis/external/<string:source>/<path:external_id>")
class CIByExternalId(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, CISchema)
    def get(self, source, external_id):
        """The CI a source knows by this id."""
        ci = services.find_by_external_id(source, external_id, current_user())
        if ci is None:
            abort(404, message=f"No CI is known as {source}:{external_id}.")
        return with_etag(ci)

    @requires(*CMDB_WRITERS)
    @blp.arguments(CIUpsertSchema)
    @blp.response(200, CISchema)
    @blp.alt_response(201, schema=CISchema, description="Created")
    def put(self, data, source, external_id):
        """Create or update the CI by a source's id: 201 created, 200 updated or unchanged
        (X-Cairn-Upsert says which); idempotent and safe under concurrent calls."""
        errors = ExternalIdSchema().validate({"source": source, "id": external_id})
        if errors:
            abort(422, message="The source or id in the path is invalid.", errors=errors)
        existing = services.find_by_external_id(source, external_id, for_update=True)
        if existing is not None:
            check_if_match(existing)
        ci, outcome = services.upsert_ci(source, external_id, data)
        return ci, 201 if outcome == "created" else 200, {"ETag": etag_of(ci), "X-Cairn-Upsert": outcome}


@blp.route("/cis/<int:ci_id>/history")
class CIHistory(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, HistoryEntrySchema(many=True))
    @blp.paginate()
    def get(self, ci_id, pagination_parameters):
        """Every recorded change of the CI, its relationships and its tickets, newest first."""
        viewer = current_user()
        services.get_ci(ci_id, viewer)
        # The changes of its relationships and tickets name other CIs and tickets: only for those who see all.
        related = not restricted(viewer)
        return paginate_select(history_select("ci", ci_id, include_related_ci=related), pagination_parameters)


@blp.route("/cis/<int:ci_id>/assignments")
class CIAssignments(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, AssignmentSchema(many=True))
    def get(self, ci_id):
        """Who had this CI, from when to when, newest first."""
        return services.assignments_of(services.get_ci(ci_id, current_user()))


@blp.route("/locations")
class Locations(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(LocationQuerySchema, location="query")
    @blp.response(200, LocationSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List locations."""
        return paginate_select(services.search_locations(filters), pagination_parameters)

    @requires(*CMDB_WRITERS)
    @blp.arguments(LocationSchema)
    @blp.response(201, LocationSchema)
    def post(self, data):
        """Create a site, building, floor or room."""
        location = services.create_location(data)
        return with_etag(location)


@blp.route("/locations/<int:location_id>")
class LocationById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, LocationSchema)
    def get(self, location_id):
        """One location."""
        return with_etag(get_or_404(Location, location_id))

    @requires(*CMDB_WRITERS)
    @blp.arguments(LocationUpdateSchema)
    @blp.response(200, LocationSchema)
    def patch(self, data, location_id):
        """Rename or move a location."""
        location = get_or_404(Location, location_id, for_update=True)
        check_if_match(location)
        services.update_location(location, data)
        return with_etag(location)
