"""/views: saved views of the CI and ticket lists."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import EVERYONE
from cairn.pagination import paginate_select
from integrations.views import services
from integrations.views.schemas import (
    SavedViewQuerySchema,
    SavedViewSchema,
    SavedViewUpdateSchema,
    SavedViewWriteSchema,
)

blp = Blueprint("views", __name__, description="Saved views: a list's filters, columns and sort under a name")


@blp.route("/views")
class Views(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(SavedViewQuerySchema, location="query")
    @blp.response(200, SavedViewSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The views you see: yours and those shared with one of your teams."""
        stmt = services.visible_select(current_user(), args.get("resource"), args.get("team_id"))
        return paginate_select(stmt, pagination_parameters)

    @requires(*EVERYONE)
    @blp.arguments(SavedViewWriteSchema)
    @blp.response(201, SavedViewSchema)
    def post(self, data):
        """Save a view (filters and sort as the list takes them; 409 when you have one by that name)."""
        return services.create_view(data, current_user())


@blp.route("/views/<int:view_id>")
class ViewById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, SavedViewSchema)
    def get(self, view_id):
        """A view you see."""
        return services.get_view(view_id, current_user())

    @requires(*EVERYONE)
    @blp.arguments(SavedViewUpdateSchema)
    @blp.response(200, SavedViewSchema)
    def patch(self, data, view_id):
        """Change a view of yours (its list cannot change)."""
        view = services.get_view(view_id, current_user())
        return services.update_view(view, data, current_user())

    @requires(*EVERYONE)
    @blp.response(204)
    def delete(self, view_id):
        """Delete a view of yours (an admin: any view they see)."""
        services.delete_view(services.get_view(view_id, current_user()), current_user())
