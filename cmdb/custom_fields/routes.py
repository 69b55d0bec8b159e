"""/custom-fields: the definitions of the fields admins add to CI classes and ticket kinds."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import requires
from cairn.auth.roles import ADMINS, STAFF_READERS
from cairn.auth.scopes import ADMIN as ADMIN_SCOPE
from cairn.auth.scopes import scope
from cairn.pagination import paginate_select
from cmdb.custom_fields import services
from cmdb.custom_fields.schemas import (
    CustomFieldSchema,
    CustomFieldsJSONSchema,
    CustomFieldUpdateSchema,
    CustomFieldWriteSchema,
    ForceSchema,
    JSONSchemaQuerySchema,
)

blp = Blueprint("custom_fields", __name__, description="Custom fields of CI classes and ticket kinds")


@blp.route("/custom-fields")
class CustomFields(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CustomFieldSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Every custom field, by group and label."""
        return paginate_select(services.definitions_select(), pagination_parameters)

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.arguments(CustomFieldWriteSchema)
    @blp.response(201, CustomFieldSchema)
    def post(self, data):
        """Define a custom field; enforced at once by every process, without a restart."""
        return with_etag(services.create_definition(data))


@blp.route("/custom-fields/json-schema")
class CustomFieldsJSONSchemaView(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(JSONSchemaQuerySchema, location="query")
    @blp.response(200, CustomFieldsJSONSchema)
    def get(self, args):
        """The JSON Schema of custom_fields for a CI class, a ticket kind or category, from the current definitions."""
        if "ci_class" in args:
            return services.json_schema("ci", args["ci_class"])
        return services.ticket_json_schema(args.get("ticket_kind"), args.get("ticket_category_id"))


@blp.route("/custom-fields/<int:field_id>")
class CustomFieldById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CustomFieldSchema)
    def get(self, field_id):
        """One custom field."""
        return with_etag(services.get_definition(field_id))

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.arguments(ForceSchema, location="query")
    @blp.arguments(CustomFieldUpdateSchema)
    @blp.response(200, CustomFieldSchema)
    def patch(self, args, data, field_id):
        """Change a definition (its name and type stay); 409 when values would be lost, unless force."""
        field = services.get_definition(field_id, for_update=True)
        check_if_match(field)
        return with_etag(services.update_definition(field, data, force=args["force"]))

    @requires(*ADMINS)
    @scope(ADMIN_SCOPE)
    @blp.arguments(ForceSchema, location="query")
    @blp.response(204)
    def delete(self, args, field_id):
        """Delete a custom field; 409 saying how many hold a value, unless force (which removes them)."""
        field = services.get_definition(field_id, for_update=True)
        check_if_match(field)
        services.delete_definition(field, force=args["force"])
