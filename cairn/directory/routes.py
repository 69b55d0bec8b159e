"""/directory/group-mappings: which directory groups give which role and team (admins)."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint
from cairn.auth.guard import requires
from cairn.auth.roles import ADMIN, ADMINS, AUDITOR
from cairn.db import get_or_404
from cairn.directory import services
from cairn.directory.models import DirectoryGroupMapping
from cairn.directory.schemas import GroupMappingSchema
from cairn.pagination import paginate_select

blp = Blueprint("directory", __name__, description="Directory (LDAP / Active Directory) group mappings")


@blp.route("/directory/group-mappings")
class GroupMappings(MethodView):
    @requires(ADMIN, AUDITOR)
    @blp.response(200, GroupMappingSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """The group mappings: members of a group get its role (the highest when several) and team."""
        from sqlalchemy import select

        stmt = select(DirectoryGroupMapping).order_by(DirectoryGroupMapping.id)
        return paginate_select(stmt, pagination_parameters)

    @requires(*ADMINS)
    @blp.arguments(GroupMappingSchema)
    @blp.response(201, GroupMappingSchema)
    def post(self, data):
        """Map a group to a role, a team, or both (applied at each sign-in and sync)."""
        return services.create_mapping(data["group_dn"], data.get("role"), data.get("team_id"), data["source"])


@blp.route("/directory/group-mappings/<int:mapping_id>")
class GroupMappingById(MethodView):
    @requires(*ADMINS)
    @blp.response(204)
    def delete(self, mapping_id):
        """Remove a mapping (users keep what it gave them until their next sign-in or sync)."""
        services.delete_mapping(get_or_404(DirectoryGroupMapping, mapping_id, for_update=True))
