"""GET /changelog: the change log as a feed for sync tools."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort

from cairn.api import Blueprint
from cairn.audit import services
from cairn.audit.schemas import FeedQuerySchema, FeedSchema
from cairn.auth.guard import requires
from cairn.auth.roles import STAFF_READERS

blp = Blueprint("changelog", __name__, description="The change log as a gap-free feed")


@blp.route("/changelog")
class ChangeFeed(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(FeedQuerySchema, location="query")
    @blp.response(200, FeedSchema)
    def get(self, args):
        """Changes after a cursor, in commit order; page with next_cursor, never skipping one."""
        try:
            after = services.Cursor.parse(args.get("after"))
        except services.CursorError as exc:
            abort(422, message=str(exc), errors={"after": [str(exc)]})
        rows, next_cursor = services.feed(
            after,
            args["limit"],
            object_types=args.get("object_type"),
            actions=args.get("action"),
            since=args.get("since"),
            until=args.get("until"),
        )
        return {"changes": rows, "next_cursor": str(next_cursor)}
