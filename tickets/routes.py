"""/tickets and everything on a ticket; /cis/{id}/tickets; /blackout-windows."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cairn.api import Blueprint, BulkEditResultSchema, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import ADMIN, CHANGE_MANAGER, EVERYONE, REQUESTER, STAFF_READERS
from cairn.auth.scopes import ADMIN as ADMIN_SCOPE
from cairn.auth.scopes import scope
from cairn.db import get_or_404
from cairn.errors import Invalid, NotFound
from cairn.http import accepts
from cairn.pagination import paginate_select
from cmdb.schemas import HistoryEntrySchema
from cmdb.services import get_ci
from tickets import attachments, bulk_edit, categories, graph, services
from tickets.models import BlackoutWindow, Ticket
from tickets.schemas import (
    ApprovalSchema,
    ApprovalWriteSchema,
    AttachmentSchema,
    BlackoutQuerySchema,
    BlackoutSchema,
    ChangeTemplateQuerySchema,
    ChangeTemplateSchema,
    ChangeTemplateUpdateSchema,
    CIFiguresSchema,
    CommentSchema,
    CommentWriteSchema,
    ConflictSchema,
    LinkSchema,
    LinkWriteSchema,
    ProbableCauseQuerySchema,
    ProbableCausesSchema,
    TicketBulkEditSchema,
    TicketCategoryQuerySchema,
    TicketCategorySchema,
    TicketCategoryUpdateSchema,
    TicketCategoryWriteSchema,
    TicketCISchema,
    TicketCIWriteSchema,
    TicketCreateSchema,
    TicketImpactQuerySchema,
    TicketImpactSchema,
    TicketQuerySchema,
    TicketSchema,
    TicketUpdateSchema,
    TransitionAnswerSchema,
    TransitionSchema,
    UploadSchema,
    WatcherSchema,
    WatcherWriteSchema,
)
from tickets.workflow import STAFF

blp = Blueprint("tickets", __name__, description="Incidents, requests, problems and changes")

OPENERS = (*STAFF, REQUESTER)
MANAGERS = (ADMIN, CHANGE_MANAGER)


def _ticket(ticket_id: int, *, for_update: bool = False) -> Ticket:
    return services.get_ticket(ticket_id, current_user(), for_update=for_update)


@blp.route("/tickets")
class Tickets(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(TicketQuerySchema, location="query")
    @blp.response(200, TicketSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List tickets; kind=change with window_from/window_to is the change calendar."""
        stmt = services.search_tickets(filters, current_user()).options(selectinload(Ticket.ci_links))
        return paginate_select(stmt, pagination_parameters)

    @requires(*OPENERS)
    @blp.arguments(TicketCreateSchema)
    @blp.response(201, TicketSchema)
    def post(self, data):
        """Open a ticket; its number and priority are derived."""
        ticket = services.create_ticket(data, current_user())
        return with_etag(ticket)

    @requires(*STAFF)
    @blp.arguments(TicketBulkEditSchema)
    @blp.response(200, BulkEditResultSchema(many=True))
    def patch(self, data):
        """Bulk edit: set the same fields on up to 1,000 tickets you see (by ids, or the list's
        filter); per-ticket results, a refused ticket failing alone; dry_run writes nothing."""
        return bulk_edit.bulk_edit_tickets(data, current_user())


@blp.route("/tickets/external/<string:source>/<path:external_id>")
class TicketByExternalId(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TicketSchema)
    def get(self, source, external_id):
        """The ticket a source knows by this id."""
        # One answer whether the ticket does not exist or the caller may not see it; never its id.
        ticket = services.find_by_external_id(source, external_id, current_user())
        if ticket is None:
            raise NotFound(f"No ticket is known as {source}:{external_id}.")
        return with_etag(ticket)


@blp.route("/tickets/<int:ticket_id>")
class TicketById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TicketSchema)
    def get(self, ticket_id):
        """One ticket, with its SLA as of now."""
        return with_etag(_ticket(ticket_id))

    @requires(*STAFF)
    @blp.arguments(TicketUpdateSchema)
    @blp.response(200, TicketSchema)
    def patch(self, data, ticket_id):
        """Change a ticket's text, impact/urgency, assignment, window, plans or analysis."""
        ticket = _ticket(ticket_id, for_update=True)
        check_if_match(ticket)
        services.update_ticket(ticket, data, current_user())
        return with_etag(ticket)


@blp.route("/tickets/<int:ticket_id>/transitions")
class Transitions(MethodView):
    @requires(*OPENERS)
    @blp.arguments(TransitionSchema)
    @blp.response(200, TransitionAnswerSchema)
    def post(self, data, ticket_id):
        """Move the ticket to another state (409 naming the caller's allowed ones when illegal);
        ``resolve_linked`` resolves the linked incidents too and lists them in ``resolved_linked``."""
        ticket = _ticket(ticket_id, for_update=True)
        check_if_match(ticket)
        services.transition(ticket, data.pop("to"), data, current_user())
        return with_etag(ticket)


@blp.route("/tickets/<int:ticket_id>/comments")
class Comments(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, CommentSchema(many=True))
    @blp.paginate()
    def get(self, ticket_id, pagination_parameters):
        """Comments, oldest first (requesters don't see internal work notes)."""
        ticket = _ticket(ticket_id)
        return paginate_select(services.comments_of(ticket, current_user()), pagination_parameters)

    @requires(*OPENERS)
    @blp.arguments(CommentWriteSchema)
    @blp.response(201, CommentSchema)
    def post(self, data, ticket_id):
        """Comment, or write an internal work note."""
        ticket = _ticket(ticket_id)
        comment = services.add_comment(ticket, data["body"], data["internal"], current_user())
        return comment


@blp.route("/tickets/<int:ticket_id>/cis")
class TicketCIs(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TicketCISchema(many=True))
    def get(self, ticket_id):
        """The CIs the ticket affects."""
        return services.ci_links_of(_ticket(ticket_id), current_user())

    @requires(*STAFF)
    @blp.arguments(TicketCIWriteSchema)
    @blp.response(201, TicketCISchema)
    def post(self, data, ticket_id):
        """Add an affected CI (recorded in the CI's history)."""
        link = services.add_ci(_ticket(ticket_id, for_update=True), data["ci_id"], current_user())
        return link


@blp.route("/tickets/<int:ticket_id>/cis/<int:ci_id>")
class TicketCIById(MethodView):
    @requires(*STAFF)
    @blp.response(204)
    def delete(self, ticket_id, ci_id):
        """Remove an affected CI (recorded in the CI's history)."""
        services.remove_ci(_ticket(ticket_id, for_update=True), ci_id)


@blp.route("/tickets/<int:ticket_id>/links")
class Links(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, LinkSchema(many=True))
    def get(self, ticket_id):
        """Links from and to this ticket."""
        return services.links_of(_ticket(ticket_id), current_user())

    @requires(*STAFF)
    @blp.arguments(LinkWriteSchema)
    @blp.response(201, LinkSchema)
    def post(self, data, ticket_id):
        """Link to another ticket: caused_by, duplicate_of, related, fixes."""
        link = services.add_link(_ticket(ticket_id), data["ticket_id"], data["type"], current_user())
        return link


@blp.route("/tickets/<int:ticket_id>/links/<int:link_id>")
class LinkById(MethodView):
    @requires(*STAFF)
    @blp.response(204)
    def delete(self, ticket_id, link_id):
        """Remove a link."""
        services.remove_link(_ticket(ticket_id), link_id)


@blp.route("/tickets/<int:ticket_id>/watchers")
class Watchers(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, WatcherSchema(many=True))
    def get(self, ticket_id):
        """Who watches the ticket."""
        return services.watchers_of(_ticket(ticket_id))

    @requires(*STAFF)
    @blp.arguments(WatcherWriteSchema)
    @blp.response(201, WatcherSchema)
    def post(self, data, ticket_id):
        """Add a watcher."""
        watcher = services.add_watcher(_ticket(ticket_id), data["user_id"])
        return watcher


@blp.route("/tickets/<int:ticket_id>/watchers/<int:user_id>")
class WatcherById(MethodView):
    @requires(*STAFF)
    @blp.response(204)
    def delete(self, ticket_id, user_id):
        """Remove a watcher."""
        services.remove_watcher(_ticket(ticket_id), user_id)


@blp.route("/tickets/<int:ticket_id>/attachments")
class Attachments(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, AttachmentSchema(many=True))
    def get(self, ticket_id):
        """The ticket's attachments."""
        return services.attachments_of(_ticket(ticket_id))

    @requires(*OPENERS)
    @accepts("multipart/form-data")
    @blp.arguments(UploadSchema, location="files")
    @blp.response(201, AttachmentSchema)
    def post(self, files, ticket_id):
        """Attach a file (multipart field ``file``); its type is read from its bytes."""
        ticket = _ticket(ticket_id)
        upload = files["file"]
        limit = attachments.max_bytes()
        data = attachments.read_capped(upload.stream, limit)
        if data is None:
            from flask_smorest import abort

            abort(413, message=f"Attachments are limited to {limit} bytes.")
        return services.add_attachment(ticket, upload.filename, upload.mimetype, data, current_user())


@blp.route("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
class AttachmentById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, content_type="application/octet-stream")
    def get(self, ticket_id, attachment_id):
        """Download an attachment (same permissions as the ticket)."""
        return attachments.send(services.get_attachment(_ticket(ticket_id), attachment_id))


@blp.route("/tickets/<int:ticket_id>/approvals")
class Approvals(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, ApprovalSchema(many=True))
    def get(self, ticket_id):
        """A change's approvals, by round."""
        return services.approvals_of(_ticket(ticket_id))

    @requires(*MANAGERS)
    @blp.arguments(ApprovalWriteSchema)
    @blp.response(201, ApprovalSchema)
    def post(self, data, ticket_id):
        """Approve or reject a change waiting in authorize (a rejection sends it back to assess)."""
        ticket = _ticket(ticket_id, for_update=True)
        approval = services.decide_approval(ticket, data["decision"], data["comment"], current_user())
        return approval


@blp.route("/tickets/<int:ticket_id>/history")
class History(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, HistoryEntrySchema(many=True))
    @blp.paginate()
    def get(self, ticket_id, pagination_parameters):
        """Every recorded change of the ticket, its CIs, attachments, approvals, links, newest first."""
        return paginate_select(services.history_select(_ticket(ticket_id), current_user()), pagination_parameters)


@blp.route("/tickets/<int:ticket_id>/impact")
class Impact(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(TicketImpactQuerySchema, location="query")
    @blp.response(200, TicketImpactSchema, headers={"X-Pagination": "PAGINATION"})
    def get(self, args, ticket_id):
        """The blast radius of all the ticket's CIs, with the open tickets on them: the whole list, a
        page of it or its summary, as GET /cis/{id}/impact (X-Pagination when paged)."""
        page, page_size = args.get("page"), args.get("page_size")  # both or neither (the schema's defaults)
        body = graph.impact_of_ticket(
            _ticket(ticket_id), viewer=current_user(), summary=args["summary"], page=page, page_size=page_size,
            max_depth=args.get("max_depth"), as_of=args.get("as_of"),
        )  # fmt: skip
        # Written here with the app's JSON (orjson): the body may hold orjson.Fragment values, and
        # thousands of items need no schema to dump them.
        response = current_app.response_class(current_app.json.dumps(body), mimetype="application/json")
        if page is not None:
            response.headers[blp.PAGINATION_HEADER_NAME] = blp.pagination_header_value(page, page_size, body["count"])
        return response


@blp.route("/tickets/<int:ticket_id>/conflicts")
class Conflicts(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, ConflictSchema(many=True))
    def get(self, ticket_id):
        """Other open changes whose window overlaps and whose CIs or blast radius meet this one's."""
        ticket = _ticket(ticket_id)
        if ticket.kind != "change":
            raise Invalid(f"{ticket.number} is a {ticket.kind}; only changes have windows.")
        return graph.conflicts_shown(ticket, current_user())


@blp.route("/tickets/<int:ticket_id>/probable-causes")
class ProbableCauses(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(ProbableCauseQuerySchema, location="query")
    @blp.response(200, ProbableCausesSchema)
    def get(self, args, ticket_id):
        """For an incident: the common upstream CIs of the recent open incidents, ranked."""
        ticket = _ticket(ticket_id)
        if ticket.kind != "incident":
            raise Invalid(f"{ticket.number} is a {ticket.kind}; probable causes are for incidents.")
        causes = graph.probable_causes(ticket, hours=args.get("hours"), limit=args["limit"])
        return graph.causes_shown(causes, current_user())


@blp.route("/cis/<int:ci_id>/tickets")
class CITickets(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TicketSchema(many=True))
    @blp.paginate()
    def get(self, ci_id, pagination_parameters):
        """The CI's tickets, open ones first."""
        get_ci(ci_id, current_user())
        stmt = services.tickets_of_ci(ci_id, current_user()).options(selectinload(Ticket.ci_links))
        return paginate_select(stmt, pagination_parameters)


@blp.route("/cis/<int:ci_id>/ticket-figures")
class CIFigures(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CIFiguresSchema)
    def get(self, ci_id):
        """Open tickets, incidents in the last 90 days, mean time to resolve."""
        get_ci(ci_id, current_user())
        return services.ci_figures(ci_id)


@blp.route("/blackout-windows")
class Blackouts(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(BlackoutQuerySchema, location="query")
    @blp.response(200, BlackoutSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Blackout windows in which no change may be scheduled."""
        stmt = select(BlackoutWindow).order_by(BlackoutWindow.starts_at, BlackoutWindow.id)
        if args.get("window_from"):
            stmt = stmt.where(BlackoutWindow.ends_at > args["window_from"])
        if args.get("window_to"):
            stmt = stmt.where(BlackoutWindow.starts_at < args["window_to"])
        return paginate_select(stmt, pagination_parameters)

    @requires(*MANAGERS)
    @blp.arguments(BlackoutSchema)
    @blp.response(201, BlackoutSchema)
    def post(self, data):
        """Declare a blackout window."""
        blackout = services.create_blackout(data)
        return with_etag(blackout)


@blp.route("/blackout-windows/<int:blackout_id>")
class BlackoutById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, BlackoutSchema)
    def get(self, blackout_id):
        """One blackout window."""
        return with_etag(get_or_404(BlackoutWindow, blackout_id))

    @requires(*MANAGERS)
    @blp.response(204)
    def delete(self, blackout_id):
        """Lift a blackout window."""
        blackout = get_or_404(BlackoutWindow, blackout_id)
        check_if_match(blackout)
        services.delete_blackout(blackout)


@blp.route("/change-templates")
class ChangeTemplates(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(ChangeTemplateQuerySchema, location="query")
    @blp.response(200, ChangeTemplateSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Standard change templates: a change opened from one (``template_id``) is pre-approved."""
        return paginate_select(services.change_templates(args.get("active")), pagination_parameters)

    @requires(*MANAGERS)
    @blp.arguments(ChangeTemplateSchema)
    @blp.response(201, ChangeTemplateSchema)
    def post(self, data):
        """Approve a standard change once, as a template (name, description, plans, default CIs)."""
        return with_etag(services.save_change_template(data))


@blp.route("/change-templates/<int:template_id>")
class ChangeTemplateById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, ChangeTemplateSchema)
    def get(self, template_id):
        """One standard change template."""
        return with_etag(services.get_change_template(template_id))

    @requires(*MANAGERS)
    @blp.arguments(ChangeTemplateUpdateSchema)
    @blp.response(200, ChangeTemplateSchema)
    def patch(self, data, template_id):
        """Change a template, or retire it (``active: false``)."""
        template = services.get_change_template(template_id)
        check_if_match(template)
        return with_etag(services.save_change_template(data, template))


@blp.route("/ticket-categories")
class TicketCategories(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(TicketCategoryQuerySchema, location="query")
    @blp.response(200, TicketCategorySchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Ticket categories and subcategories, per kind (requesters: the active ones they may use)."""
        stmt = categories.search_categories(filters, current_user())
        return paginate_select(stmt, pagination_parameters)

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.arguments(TicketCategoryWriteSchema)
    @blp.response(201, TicketCategorySchema)
    def post(self, data):
        """Add a category of a kind, or a subcategory (parent_id); 409 for a name its siblings use."""
        return with_etag(categories.create_category(data))


@blp.route("/ticket-categories/<int:category_id>")
class TicketCategoryById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TicketCategorySchema)
    def get(self, category_id):
        """One ticket category."""
        return with_etag(categories.get_category(category_id, current_user()))

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.arguments(TicketCategoryUpdateSchema)
    @blp.response(200, TicketCategorySchema)
    def patch(self, data, category_id):
        """Change a category, or deactivate it (``active: false``)."""
        category = categories.get_category(category_id, for_update=True)
        check_if_match(category)
        return with_etag(categories.update_category(category, data))

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.response(204)
    def delete(self, category_id):
        """Remove a category no ticket or subcategory uses (409 otherwise: deactivate it instead)."""
        category = categories.get_category(category_id, for_update=True)
        check_if_match(category)
        categories.delete_category(category)
