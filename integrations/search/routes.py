"""/search: the global search."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import EVERYONE
from integrations.search import services
from integrations.search.schemas import SearchQuerySchema, SearchResultSchema

blp = Blueprint("search", __name__, description="The global search: CIs, tickets, users and teams")


@blp.route("/search")
class Search(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(SearchQuerySchema, location="query")
    @blp.response(200, SearchResultSchema)
    def get(self, args):
        """Find CIs, tickets, users and teams by what was typed: ranked, grouped by type, with a total
        per group. A requester finds only its own tickets and the CIs assigned to it, and no users or teams."""
        results = services.search(args["q"], current_user(), args.get("types"), args["limit"])
        return results.as_dict()
