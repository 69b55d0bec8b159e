"""Tickets: the list with saved queues, the ticket page and the work done on it, a new ticket.

Every write goes through the ticket services, as the API's routes do. A DomainError is shown next to
the form that caused it (the page is rendered again with the error's status and nothing is
written); a success is flashed and redirected (POST/redirect/GET). htmx requests (the list's
filters, comments, the typeahead pickers, the priority preview) get fragments; every form also works
without JavaScript.
"""

from __future__ import annotations

from datetime import datetime

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from cairn.audit.models import ChangeLog
from cairn.auth import roles
from cairn.auth.models import Team, User
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.errors import Conflict, DomainError, Invalid, NotFound
from cmdb.custom_fields.registry import category_chain
from cmdb.models import ConfigurationItem
from cmdb.services import search_cis, visible_cis
from tickets import attachments, categories, graph, services, sla, workflow
from tickets.models import KINDS, LINK_TYPES, OUTCOMES, Ticket
from tickets.schemas import (
    CommentWriteSchema,
    TicketCreateSchema,
    TicketQuerySchema,
    TicketUpdateSchema,
    TransitionSchema,
)
from web.blueprint import bp
from web.changes import change_context
from web.custom_fields import (
    ADD_FIELD,
    cell,
    filter_chips,
    list_columns,
    list_filter_args,
    picker_fields,
    value_groups,
)
from web.forms import field_errors, is_number, keep_errors, load, present
from web.shell import STAFF
from web.views import ViewsBar, views_context

# Who works tickets from the desk: the staff roles the ticket API lets write (auditors and asset
# managers read them).
WRITERS = tuple(role for role in STAFF if role in workflow.STAFF)

PAGE_SIZES = (25, 50, 100)
# The API's list filters the filter form has no field for (a saved view may hold them).
EXTRA_FILTERS = tuple(
    name for name in TicketQuerySchema().fields if name not in ("kind", "state", "priority", "team_id", "open", "q",
                                                                 "sort", "assignee_id")
)  # fmt: skip
MAX_PAGE = 100_000
# The list's sort choices (TicketQuerySchema's sort values; others typed into the URL work too).
SORT_LABELS = {
    "priority,resolution_due": _l("Priority, then due"),
    "resolution_due": _l("Due soonest"),
    "-resolution_due": _l("Due latest"),
    "priority": _l("Priority, highest first"),
    "-priority": _l("Priority, lowest first"),
    "-updated_at": _l("Updated, newest first"),
    "updated_at": _l("Updated, oldest first"),
    "-created_at": _l("Opened, newest first"),
    "created_at": _l("Opened, oldest first"),
    "-number": _l("Number, highest first"),
    "number": _l("Number, lowest first"),
}
DEFAULT_SORT = "priority,resolution_due"
ALL_TICKETS = "all"
HISTORY_ROWS = 50
OTHER_TICKETS_PER_CI = 5
CIS_SHOWN = 100
SUGGESTIONS = 8
BUSINESS_SERVICES_SHOWN = 5

QUEUE_LABELS = {
    "mine": _l("Mine"),
    "team": _l("My teams' unassigned"),
    "unassigned": _l("Unassigned"),
    "breached": _l("Breached"),
    "open": _l("All open"),
    ALL_TICKETS: _l("All tickets"),
}
KIND_LABELS = {"incident": _l("Incident"), "request": _l("Request"), "problem": _l("Problem"), "change": _l("Change")}
CHANGE_TYPE_LABELS = {
    "standard": _l("Standard (from a template)"),
    "normal": _l("Normal"),
    "emergency": _l("Emergency"),
}
LEVEL_LABELS = {1: _l("1 · High"), 2: _l("2 · Medium"), 3: _l("3 · Low")}
MOVE_LABELS = {
    "in_progress": _l("Start work"),
    "on_hold": _l("Put on hold"),
    "resolved": _l("Resolve"),
    "closed": _l("Close"),
    "canceled": _l("Cancel ticket"),
    "assessed": _l("Mark assessed"),
    "root_cause_analysis": _l("Analyse root cause"),
    "known_error": _l("Record known error"),
    "assess": _l("Assess"),
    "authorize": _l("Ask for authorisation"),
    "scheduled": _l("Schedule"),
    "implement": _l("Implement"),
    "review": _l("Review"),
}
REOPEN_LABEL = _l("Reopen")
NOTE_LABELS = {
    "resolved": _l("Resolution note"),
    "on_hold": _l("Why is it on hold?"),
    "canceled": _l("Why cancel it?"),
}
# How a link reads from either end: (from its source, from its target).
LINK_WORDS = {
    "caused_by": (_l("caused by"), _l("causes")),
    "duplicate_of": (_l("duplicate of"), _l("has duplicate")),
    "related": (_l("related to"), _l("related to")),
    "fixes": (_l("fixes"), _l("fixed by")),
}


class TooLarge(DomainError):
    status = 413


def _wants_fragment() -> bool:
    """An htmx request for part of a page (a history restore wants the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")


def _an_id(value) -> int | None:
    """A database id from a form or query value, or None when it is not one."""
    text = str(value or "").strip()
    if not is_number(text) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _form_value(value: str):
    """A form's text as an API client would send it: digits as a number, anything else as given (so
    the API's schema names what is wrong with it)."""
    text = value.strip()
    return int(text) if is_number(text) and len(text) <= 12 else text


def _fail(error: DomainError) -> None:
    db.session.rollback()
    keep_errors(error)


def _check_version(ticket: Ticket) -> None:
    """The form's ``version`` is the one the person looked at: a ticket changed since is not changed
    blindly (the page's If-Match)."""
    sent = (request.form.get("version") or "").strip()
    if sent and sent != str(ticket.version):
        raise Conflict(
            _(
                "%(number)s was changed by someone else since you opened it. Look at it again and retry.",
                number=ticket.number,
            )  # fmt: skip
        )


# ---------------------------------------------------------------------------------------------
# The list


def _list_state(args) -> tuple[dict, dict]:
    """(what the filter form shows, the query string to keep in links) from the request's args."""
    shown = {key: (args.get(key) or "").strip()[:200] for key in ("queue", "kind", "state", "priority", "team_id",
                                                                   "assignee", "open", "q", "sort")}  # fmt: skip
    # every other filter of the API's list (a saved view may hold them): kept as given, shown as chips
    shown["extra"] = {key: args.get(key).strip()[:200] for key in EXTRA_FILTERS if (args.get(key) or "").strip()}
    # custom field filters (cf_<name>), with the one the form's picker adds
    custom, added = list_filter_args(args)
    shown["custom"] = custom
    if not any(shown.values()):
        shown["queue"] = "open"
    shown["sort"] = shown["sort"] or DEFAULT_SORT
    per = args.get("per", type=int)
    shown["per"] = per if per in PAGE_SIZES else PAGE_SIZES[0]
    shown["cf_added"] = added
    shown["cf_picking"] = bool((args.get(ADD_FIELD) or "").strip()) and not added
    kept = {
        key: value for key, value in shown.items() if value and key not in ("extra", "custom", "cf_added", "cf_picking")
    }
    kept |= shown["extra"] | shown["custom"]
    if kept.get("per") == PAGE_SIZES[0]:
        del kept["per"]
    return shown, kept


def _list_filters(shown: dict) -> dict:
    """search_tickets' filters for the form's values, through the API's query schema."""
    queue = shown["queue"]
    filters: dict = {}
    if queue and queue != ALL_TICKETS:
        if queue not in services.QUEUES:
            raise Invalid(_("Unknown queue."), errors={"queue": [_("Choose one of the listed queues.")]})
        filters.update(services.queue_filters(queue, g.user))
    raw = {key: shown[key] for key in ("kind", "state", "priority", "team_id", "open", "q", "sort") if shown[key]}
    raw = {**shown["extra"], **shown["custom"], **raw}
    assignee = shown["assignee"]
    if assignee == "none":
        filters.pop("assignee_id", None)
        filters["unassigned"] = True
    elif assignee == "me":
        raw["assignee_id"] = str(g.user.id)
    elif assignee:
        raw["assignee_id"] = assignee
    if assignee and assignee != "none":
        filters.pop("unassigned", None)
    filters.update(load(TicketQuerySchema(), raw))
    return filters


def _views_context(shown: dict, list_url) -> ViewsBar:
    """The saved-views bar: what saving would save, the form's state as the API's filters (the
    queues that are filters: open, breached, mine; the others stay out)."""
    saved = {key: shown[key] for key in ("kind", "state", "priority", "team_id", "open", "q") if shown[key]}
    queue, assignee = shown["queue"], shown["assignee"]
    if queue in ("open", "breached", "mine"):
        saved.setdefault("open", "true")
    if queue == "breached":
        saved["breached"] = "true"
    if queue == "mine" or assignee == "me":
        saved["assignee_id"] = str(g.user.id)
    elif assignee and assignee != "none":
        saved["assignee_id"] = assignee
    saved = {**shown["extra"], **shown["custom"], **saved}
    sort = shown["sort"] if shown["sort"] != DEFAULT_SORT else ""
    return views_context("tickets", saved, sort, shown["extra"], lambda key: list_url(**{key: None}))


def _custom_filters(shown: dict, list_url) -> dict:
    """The list's custom field filters as chips, the picker's fields (those of the kind filtered by,
    else every ticket field) and the columns they add; ``oob``: the fragment redraws them (not while
    a field is picked and its value not yet typed)."""
    sort = shown["sort"] if shown["sort"] != DEFAULT_SORT else ""
    return {
        "chips": filter_chips(shown["custom"], field_errors(), sort, lambda key: list_url(**{key: None})),
        "picker": picker_fields("ticket", [shown["kind"]] if shown["kind"] else []),
        "columns": list_columns(shown["custom"], sort),
        "oob": not shown["cf_picking"],
    }


@bp.get("/tickets")
@page(*STAFF)
def tickets():
    shown, kept = _list_state(request.args)
    page_number = min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)

    def list_url(**changes) -> str:
        values = {**kept, **changes}
        return url_for("web.tickets", **{key: value for key, value in values.items() if value not in (None, "")})

    fragment = _wants_fragment()
    blank = any(not value.strip() for _key, value in request.args.items(multi=True))
    if not fragment and (blank or shown["cf_added"]):
        # a filter form sent without JavaScript names its empty fields too: keep the address short
        return redirect(list_url(page=page_number if page_number > 1 else None))
    status, rows, total, problem = 200, [], 0, None
    per = shown["per"]
    try:
        filters = _list_filters(shown)
    except DomainError as error:
        db.session.rollback()
        status, problem = error.status, error.detail
        g.field_errors = {key: list(value) for key, value in (error.errors or {}).items()}
    else:
        stmt = services.search_tickets(filters, g.user)
        total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        page_number = min(page_number, max(1, -(-total // per)))
        rows = list(db.session.scalars(stmt.offset((page_number - 1) * per).limit(per)))
    context = {
        "rows": rows,
        "total": total,
        "page_number": page_number,
        "pages": max(1, -(-total // per)),
        "shown": shown,
        "views_ctx": _views_context(shown, list_url),
        "problem": problem,
        "fragment": fragment,
        "errors": field_errors(),
        "queue_labels": QUEUE_LABELS,
        "kind_labels": KIND_LABELS,
        "sort_labels": SORT_LABELS,
        "list_url": list_url,
        "page_sizes": PAGE_SIZES,
        "done_states": workflow.DONE_STATES,
        "cf": _custom_filters(shown, list_url),
        "cf_cell": cell,
    }
    headers = {"Vary": "HX-Request"}
    if fragment:
        # the address bar shows the short form of what the filter form sent
        headers["HX-Push-Url"] = list_url(page=page_number if page_number > 1 else None)
        if problem:
            headers.update({"HX-Retarget": "#ticket-results", "HX-Reswap": "innerHTML"})
        return render_template("tickets/_results.html", **context), status, headers
    context.update(
        states=workflow.all_states(), teams=_teams(), assignees=_assignable(), can_write=g.user.role in WRITERS
    )
    return render_template("tickets/list.html", breadcrumbs=[(_("Tickets"), None)], **context), status, headers


def _teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(Team.name).limit(500)))


def _assignable() -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.active.is_(True), User.role.in_(services.ASSIGNABLE_ROLES))
            .order_by(User.name, User.email)
            .limit(500)
        )
    )


# ---------------------------------------------------------------------------------------------
# The ticket page


def _moves(ticket: Ticket) -> list[dict]:
    """The moves this user may make now, each with the fields it asks for."""
    out = []
    for to in services.allowed_moves(ticket, g.user):
        move = workflow.find_move(ticket.kind, ticket.state, to, ticket.change_type)
        needs = move.needs if move else ()
        reopen = ticket.state in workflow.DONE_STATES and to not in workflow.DONE_STATES
        label = REOPEN_LABEL if reopen else MOVE_LABELS.get(to) or _("Move to %(state)s", state=to.replace("_", " "))
        out.append(
            {
                "to": to,
                "label": label,
                "needs": needs,
                "note_label": NOTE_LABELS.get(to, _l("Note")),
                "fields": [need for need in needs if need in ("note", "resolution_code", "outcome", "workaround")],
                "linked": to == "resolved" and ticket.kind in ("incident", "problem"),
            }
        )
    return out


def _ci_context(ticket: Ticket) -> dict:
    """The ticket's CIs with their state, the other open tickets on each, and a cheap summary of what
    their failure takes down (one walk of the live graph for all of them)."""
    links = [link for link in services.ci_links_of(ticket, g.user) if not isinstance(link, dict)]
    ci_ids = [link.ci_id for link in links]
    # the shown CIs in one query: their links then find them in the session
    db.session.scalars(select(ConfigurationItem).where(id_in(ConfigurationItem.id, ci_ids[:CIS_SHOWN]))).all()
    others: dict[int, list[dict]] = {}
    for item in graph.open_tickets_on(ci_ids, exclude_ticket_id=ticket.id):
        for ci_id in item["ci_ids"]:
            others.setdefault(ci_id, []).append(item)
    impact = None
    if ci_ids:
        try:
            result = graph.blast_radius(ci_ids)
        except DomainError:
            result = None
        if result is not None:
            down = sum(1 for item in result.impacted if item.state == "down")
            services_hit = [item for item in result.impacted if item.ci_class == "business_service"]
            services_hit.sort(key=lambda item: (item.state != "down", item.name))
            impact = {
                "down": down,
                "degraded": len(result.impacted) - down,
                "services": len(result.business_services),
                "shown_services": services_hit[:BUSINESS_SERVICES_SHOWN],
            }
    return {"ci_links": links[:CIS_SHOWN], "ci_count": len(links), "ci_others": others, "impact": impact}


def _history(ticket: Ticket, everything: bool) -> tuple[list[dict], bool]:
    """The ticket's change-log rows, newest first, each with its field changes ready to read."""
    stmt = services.history_select(ticket, g.user)
    rows = list(db.session.scalars(stmt.limit(5000 if everything else HISTORY_ROWS + 1)))
    more = not everything and len(rows) > HISTORY_ROWS
    shown = rows if everything else rows[:HISTORY_ROWS]
    return [{"entry": row, "changes": _changes(row)} for row in shown], more


# Change-log fields that say nothing to a person reading the history.
QUIET_FIELDS = frozenset({"version", "updated_at", "created_at", "comment_id", "risk_score", "risk_reasons"})


def _changes(row: ChangeLog) -> list[tuple[str, object, object]]:
    """(field, before, after) of a change-log row, dates in the reader's zone; none for a comment (its
    summary says it) or a creation (its summary names the object)."""
    if row.action in ("comment", "create") or not isinstance(row.changes, dict):
        return []
    out = []
    values = {key: value for key, value in row.changes.items() if key not in QUIET_FIELDS}
    for key, value in values.items():
        before, after = value if isinstance(value, list) and len(value) == 2 else (None, value)
        if key == "note" and any(v == value for k, v in values.items() if k != "note"):
            continue
        out.append((key.replace("_", " "), _shown(before), _shown(after) or "—"))
    return out


def _shown(value):
    """A recorded value as the page shows it: a time as a datetime (the template formats it in the
    reader's zone), anything else as short text."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    text = str(value)
    return text if len(text) <= 300 else text[:299] + "…"


def _ticket_page(ticket_id: int, status: int = 200, failed: str | None = None):
    """The ticket page; ``failed`` names the form whose input is shown again with its errors."""
    ticket = services.get_ticket(ticket_id, g.user)
    now = utcnow()
    watchers = services.watchers_of(ticket)
    history, more_history = _history(ticket, request.args.get("history") == "all")
    context = {
        "ticket": ticket,
        "sla": sla.status(ticket, now),
        "ola": sla.ola_status(ticket, now),
        "moves": _moves(ticket),
        "comments": list(db.session.scalars(services.comments_of(ticket, g.user))),
        "attachments": services.attachments_of(ticket),
        "max_bytes": attachments.max_bytes(),
        "links": services.links_of(ticket, g.user),
        "others_shown": OTHER_TICKETS_PER_CI,
        "link_words": LINK_WORDS,
        "link_types": LINK_TYPES,
        "history": history,
        "more_history": more_history,
        "watchers": watchers,
        "watching": any(w.user_id == g.user.id for w in watchers),
        "can_write": g.user.role in WRITERS,
        "custom_groups": value_groups("ticket", ticket.kind, ticket.custom_fields, category_chain(ticket.category_id)),
        "closed": ticket.state in workflow.CLOSED_STATES,
        "teams": _teams(),
        "category_tree": categories.tree(ticket.kind, active_only=True),
        "assignees": _assignable(),
        "kind_labels": KIND_LABELS,
        "level_labels": LEVEL_LABELS,
        "resolution_codes": workflow.RESOLUTION_CODES,
        "outcomes": OUTCOMES,
        "preview": _preview(ticket.kind, ticket.impact, ticket.urgency),
        "show_causes": ticket.kind == "incident" and request.args.get("causes") == "1",
        "failed": failed,
        "form": request.form if failed else {},
        "errors": field_errors() if failed else {},
        "breadcrumbs": [(_("Tickets"), url_for("web.tickets")), (ticket.number, None)],
        **_ci_context(ticket),
        **change_context(ticket),
    }
    if context["show_causes"]:
        context["causes"] = _causes(ticket)
    return render_template("tickets/ticket.html", **context), status


@bp.get("/tickets/<int:ticket_id>")
@page(*STAFF, roles.REQUESTER)
def ticket(ticket_id: int):
    # A ticket's page has one address for everybody (API.md, and the links in mail); a requester
    # reads it in the portal (which answers 404 for anybody else's ticket).
    if g.user.role == roles.REQUESTER:
        return redirect(url_for("web.portal_ticket", ticket_id=ticket_id))
    return _ticket_page(ticket_id)


def _done(ticket_id: int, message: str, anchor: str | None = None):
    flash(message, "success")
    return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor=anchor))


@bp.post("/tickets/<int:ticket_id>/move")
@page(*WRITERS)
def ticket_move(ticket_id: int):
    form = request.form
    to = (form.get("to") or "").strip()
    ticket = services.get_ticket(ticket_id, g.user, for_update=True)
    try:
        body = present(form, "to", "note", "resolution_code", "outcome", "workaround")
        if form.get("resolve_linked"):
            body["resolve_linked"] = True
        data = load(TransitionSchema(), body)
        _check_version(ticket)
        services.transition(ticket, data.pop("to"), data, g.user)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed=f"move:{to}")
    message = _("%(number)s is now %(state)s.", number=ticket.number, state=ticket.state.replace("_", " "))
    if ticket.resolved_linked:
        message += " " + _("%(count)d linked incidents were resolved with it.", count=len(ticket.resolved_linked))
    return _done(ticket_id, message)


@bp.post("/tickets/<int:ticket_id>/comments")
@page(*WRITERS)
def ticket_comment(ticket_id: int):
    form = request.form
    internal = bool(form.get("internal"))
    ticket = services.get_ticket(ticket_id, g.user)
    try:
        body = form.get("body") or ""
        # a comment of nothing but blanks is a slip of the finger, not a comment
        data = load(CommentWriteSchema(), {"body": body if body.strip() else "", "internal": internal})
        comment = services.add_comment(ticket, data["body"], data["internal"], g.user)
    except DomainError as error:
        if _wants_fragment():
            # the message goes next to the form (what was typed stays in it), not into the next page's flashes
            db.session.rollback()
            errors = {key: list(value) for key, value in (error.errors or {}).items()}
            body = render_template("tickets/_comment_feedback.html", errors=errors, message=error.detail)
            return body, error.status, {"HX-Retarget": "#comment-feedback", "HX-Reswap": "innerHTML"}
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="comment")
    if _wants_fragment():
        count = db.session.scalar(select(func.count()).select_from(services.comments_of(ticket, g.user).subquery()))
        return render_template("tickets/_comment_added.html", comment=comment, count=count)
    kind = _("Internal note added.") if comment.internal else _("Comment added.")
    return _done(ticket_id, kind, anchor=f"comment-{comment.id}")


@bp.post("/tickets/<int:ticket_id>/edit")
@page(*WRITERS)
def ticket_update(ticket_id: int):
    """Assignment and priority: team, assignee, category, impact and urgency (priority and SLA follow)."""
    form = request.form
    raw: dict = {}
    for key in ("team_id", "assignee_id", "category_id"):
        if key in form:
            raw[key] = None if not form[key].strip() else _form_value(form[key])
    for key in ("impact", "urgency"):
        if key in form:
            raw[key] = _form_value(form[key])
    if form.get("assign") == "me":
        raw["assignee_id"] = g.user.id
    ticket = services.get_ticket(ticket_id, g.user, for_update=True)
    try:
        data = load(TicketUpdateSchema(), raw)
        _check_version(ticket)
        services.update_ticket(ticket, data, g.user)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="edit")
    return _done(ticket_id, _("%(number)s is saved.", number=ticket.number))


@bp.post("/tickets/<int:ticket_id>/attachments")
@page(*WRITERS)
def ticket_attachment_add(ticket_id: int):
    upload = request.files.get("file")
    ticket = services.get_ticket(ticket_id, g.user)
    try:
        if upload is None or not upload.filename:
            raise Invalid(_("Choose a file to attach."), errors={"file": [_("Choose a file.")]})
        limit = attachments.max_bytes()
        data = attachments.read_capped(upload.stream, limit)
        if data is None:
            raise TooLarge(
                _("Attachments are limited to %(size)s.", size=_size(limit)), errors={"file": [_("Too large.")]}
            )
        attachment = services.add_attachment(ticket, upload.filename, upload.mimetype, data, g.user)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="attachment")
    return _done(ticket_id, _("%(name)s is attached.", name=attachment.filename), anchor="attachments")


def _size(count: int) -> str:
    from flask_babel import format_decimal

    for unit, step in (("MB", 1024 * 1024), ("kB", 1024)):
        if count >= step:
            return f"{format_decimal(round(count / step, 1))} {unit}"
    return f"{format_decimal(count)} B"


@bp.get("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@page(*STAFF)
def ticket_attachment(ticket_id: int, attachment_id: int):
    """Download: always as an attachment, never rendered by the browser (the API's rules)."""
    attachment = services.get_attachment(services.get_ticket(ticket_id, g.user), attachment_id)
    return attachments.send(attachment)


@bp.post("/tickets/<int:ticket_id>/cis")
@page(*WRITERS)
def ticket_ci_add(ticket_id: int):
    ticket = services.get_ticket(ticket_id, g.user, for_update=True)
    try:
        ci_id = _an_id(request.form.get("ci_id"))
        if ci_id is None:
            ci_id = _resolve_ci(request.form.get("ci") or "", "ci")
        link = services.add_ci(ticket, ci_id, g.user)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="ci")
    return _done(ticket_id, _("%(name)s is linked.", name=link.ci.name), anchor="cis")


@bp.post("/tickets/<int:ticket_id>/cis/<int:ci_id>/remove")
@page(*WRITERS)
def ticket_ci_remove(ticket_id: int, ci_id: int):
    ticket = services.get_ticket(ticket_id, g.user, for_update=True)
    try:
        if not 0 < ci_id <= MAX_ID:
            raise NotFound(_("That CI is not on %(number)s.", number=ticket.number))
        services.remove_ci(ticket, ci_id)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="ci")
    return _done(ticket_id, _("The CI is no longer linked."), anchor="cis")


@bp.post("/tickets/<int:ticket_id>/links")
@page(*WRITERS)
def ticket_link_add(ticket_id: int):
    form = request.form
    link_type = (form.get("type") or "").strip()
    ticket = services.get_ticket(ticket_id, g.user)
    try:
        if link_type not in LINK_TYPES:
            raise Invalid(_("Choose how the tickets are linked."), errors={"type": [_("Choose a link type.")]})
        target_id = _resolve_ticket(form.get("target") or "")
        link = services.add_link(ticket, target_id, link_type, g.user)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="link")
    return _done(ticket_id, _("Linked to %(number)s.", number=link.target.number), anchor="related")


def _resolve_ticket(text: str) -> int:
    """A ticket named by its number (INC0000012) or id, as the person typed it."""
    text = text.strip()
    if not text:
        raise Invalid(_("Name the other ticket."), errors={"target": [_("Type a ticket number.")]})
    found = _an_id(text)
    if found is None:
        found = db.session.scalar(select(Ticket.id).where(Ticket.number == text.upper()[:20]))
    if found is None:
        raise Invalid(_("No ticket %(text)s.", text=text[:40]), errors={"target": [_("No such ticket.")]})
    return found


@bp.post("/tickets/<int:ticket_id>/watch")
@page(*WRITERS)
def ticket_watch(ticket_id: int):
    stop = request.form.get("watch") == "stop"
    ticket = services.get_ticket(ticket_id, g.user)
    try:
        if stop:
            services.remove_watcher(ticket, g.user.id)
        else:
            services.add_watcher(ticket, g.user.id)
    except DomainError as error:
        _fail(error)
        return _ticket_page(ticket_id, error.status, failed="watch")
    if stop:
        return _done(ticket_id, _("You no longer watch %(number)s.", number=ticket.number), anchor="watchers")
    return _done(ticket_id, _("You watch %(number)s.", number=ticket.number), anchor="watchers")


def _causes(ticket: Ticket) -> dict:
    return graph.causes_shown(graph.probable_causes(ticket, limit=5), g.user)


@bp.get("/tickets/<int:ticket_id>/causes")
@page(*STAFF)
def ticket_causes(ticket_id: int):
    """The probable causes of an incident, as a fragment (loaded after the page)."""
    ticket = services.get_ticket(ticket_id, g.user)
    if ticket.kind != "incident":
        raise Invalid(_("Probable causes are for incidents."))
    if not _wants_fragment():
        return redirect(url_for("web.ticket", ticket_id=ticket_id, causes=1, _anchor="causes"))
    return render_template("tickets/_causes.html", ticket=ticket, causes=_causes(ticket))


# ---------------------------------------------------------------------------------------------
# A new ticket


def _lookup(find, errors: dict) -> None:
    """Run a picker's lookup, keeping its field error instead of stopping at it."""
    try:
        find()
    except Invalid as error:
        errors.update(error.errors or {})


def _resolve_ci(text: str, field: str) -> int:
    """The CI a person named in a text field: its id, its asset tag or its exact name."""
    text = text.strip()[:200]
    if not text:
        raise Invalid(_("Name a CI."), errors={field: [_("Type a CI's name, asset tag or id.")]})
    stmt = visible_cis(g.user).with_only_columns(ConfigurationItem.id)
    number = _an_id(text)
    condition = or_(ConfigurationItem.asset_tag == text, func.lower(ConfigurationItem.name) == text.lower())
    if number is not None:
        condition = or_(condition, ConfigurationItem.id == number)
    found = list(db.session.scalars(stmt.where(condition).limit(2)))
    if len(found) == 1:
        return found[0]
    if not found:
        message = _("No CI is called “%(text)s”.", text=text[:60])
    else:
        message = _("Several CIs match “%(text)s”: give its asset tag or id.", text=text[:60])
    raise Invalid(message, errors={field: [message]})


def _resolve_user(text: str, field: str) -> int:
    """A user a person named in a text field: e-mail, exact name or id."""
    text = text.strip()[:254]
    number = _an_id(text)
    lowered = text.lower()
    condition = or_(func.lower(User.email) == lowered, func.lower(User.name) == lowered)
    if number is not None:
        condition = or_(condition, User.id == number)
    found = list(db.session.scalars(select(User.id).where(User.active.is_(True), condition).limit(2)))
    if len(found) == 1:
        return found[0]
    message = (
        _("Nobody is called “%(text)s”.", text=text[:60])
        if not found
        else _("Several people match “%(text)s”: give the e-mail.", text=text[:60])
    )
    raise Invalid(message, errors={field: [message]})


def _cis_by_id(ids) -> list[ConfigurationItem]:
    ids = [i for i in dict.fromkeys(ids) if i is not None][:200]
    if not ids:
        return []
    found = {ci.id: ci for ci in db.session.scalars(visible_cis(g.user).where(ConfigurationItem.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _new_form(form, status: int = 200):
    picked_ids = [_an_id(v) for v in form.getlist("ci_ids")] if hasattr(form, "getlist") else form.get("ci_ids", [])
    requester = None
    requester_id = _an_id(form.get("requester_id"))
    if requester_id and requester_id != g.user.id:
        requester = db.session.get(User, requester_id)
    kind = form.get("kind") if form.get("kind") in KINDS else "incident"
    impact, urgency = _level(form.get("impact")), _level(form.get("urgency"))
    return (
        render_template(
            "tickets/new.html",
            form=form,
            kind=kind,
            picked=_cis_by_id(picked_ids),
            requester=requester,
            impact=impact,
            urgency=urgency,
            preview=_preview(kind, impact, urgency),
            teams=_teams(),
            category_tree=categories.tree(active_only=True),
            assignees=_assignable(),
            kind_labels=KIND_LABELS,
            level_labels=LEVEL_LABELS,
            change_type_labels=CHANGE_TYPE_LABELS,
            change_templates=list(db.session.scalars(services.change_templates(active=True).limit(500))),
            errors=field_errors(),
            breadcrumbs=[(_("Tickets"), url_for("web.tickets")), (_("New ticket"), None)],
        ),
        status,
    )


def _level(value) -> int:
    text = str(value or "").strip()
    return int(text) if text in ("1", "2", "3") else 3


@bp.route("/tickets/new", methods=["GET", "POST"])
@page(*WRITERS)
def ticket_new():
    if request.method == "GET":
        ci_id = _an_id(request.args.get("ci_id"))
        prefill = {"kind": request.args.get("kind") or "incident", "ci_ids": [ci_id] if ci_id else []}
        return _new_form(prefill)
    form = request.form
    # what the person named in the pickers' text boxes, looked up first; a name that finds nothing is
    # reported with whatever the schema and the service find wrong with the rest
    errors: dict[str, list[str]] = {}
    raw = present(form, "kind", "title", "description")
    for key in ("impact", "urgency", "team_id", "assignee_id", "category_id"):
        if (form.get(key) or "").strip():
            raw[key] = _form_value(form[key])
    ci_ids: list[int] = []
    for value in form.getlist("ci_ids")[: services.MAX_CIS_PER_TICKET + 1]:
        ci_id = _an_id(value)
        if ci_id is None:
            errors["ci_ids"] = [_("Not a CI: %(value)s.", value=value[:20])]
        else:
            ci_ids.append(ci_id)
    if (form.get("ci") or "").strip():
        _lookup(lambda: ci_ids.append(_resolve_ci(form["ci"], "ci")), errors)
    if (form.get("requester") or "").strip():
        _lookup(lambda: raw.update(requester_id=_resolve_user(form["requester"], "requester")), errors)
    elif _an_id(form.get("requester_id")):
        raw["requester_id"] = _an_id(form.get("requester_id"))
    elif (form.get("requester_id") or "").strip():
        errors["requester"] = [_("Choose the requester again.")]
    raw["ci_ids"] = list(dict.fromkeys(ci_ids))
    if raw.get("kind") == "change":
        # a change's own fields (the schema refuses them, as the API does, on other kinds)
        from web.changes import form_time

        raw.update(present(form, "change_type", "implementation_plan", "backout_plan"))
        if (form.get("template_id") or "").strip():
            raw["template_id"] = _form_value(form["template_id"])
        for key in ("planned_start", "planned_end"):
            if (form.get(key) or "").strip():
                raw[key] = form_time(form[key])
    try:
        try:
            data = load(TicketCreateSchema(), raw)
            ticket = services.create_ticket(data, g.user)
        except Invalid as error:
            raise Invalid(error.detail, errors={**errors, **(error.errors or {})}) from None
        if errors:
            # the rest was fine: nothing is kept (the failed lookups must be put right first)
            raise Invalid(_("Some fields are invalid."), errors=errors)
    except DomainError as error:
        _fail(error)
        return _new_form(form, error.status)
    return _done(ticket.id, _("%(number)s is opened.", number=ticket.number))


# ---------------------------------------------------------------------------------------------
# Fragments: the priority preview and the typeahead pickers


def _preview(kind: str, impact: int, urgency: int) -> dict:
    priority = workflow.priority_of(impact, urgency)
    response, resolution = sla.targets(kind if kind in KINDS else "incident", priority)
    return {
        "priority": priority,
        "response": format_timedelta(response, threshold=1.1),
        "resolution": format_timedelta(resolution, threshold=1.1),
    }


@bp.get("/tickets/priority")
@page(*STAFF)
def priority_preview():
    """The priority impact × urgency gives (the workflow's matrix, never copied into the page), with
    the SLA targets it brings."""
    args = request.args
    impact, urgency = (args.get("impact") or "").strip(), (args.get("urgency") or "").strip()
    if impact not in ("1", "2", "3") or urgency not in ("1", "2", "3"):
        raise Invalid(_("Impact and urgency go from 1 (high) to 3 (low)."))
    kind = args.get("kind") if args.get("kind") in KINDS else "incident"
    return render_template("tickets/_priority.html", preview=_preview(kind, int(impact), int(urgency)))


@bp.get("/tickets/suggest/cis")
@page(*STAFF)
def ci_suggest():
    """CIs matching what was typed, as buttons: ``mode=add`` submits the ticket page's form, ``pick``
    adds the CI to the new ticket's list."""
    q = (request.args.get("ci") or request.args.get("q") or "").strip()[:200]
    mode = "add" if request.args.get("mode") == "add" else "pick"
    found: list[ConfigurationItem] = []
    if len(q) >= 2 or is_number(q):
        number = _an_id(q)
        if number is not None:
            found = list(db.session.scalars(visible_cis(g.user).where(ConfigurationItem.id == number)))
        seen = {ci.id for ci in found}
        stmt = search_cis({"q": q, "sort": ["name"]}, g.user).limit(SUGGESTIONS)
        found += [ci for ci in db.session.scalars(stmt) if ci.id not in seen]
    return render_template("tickets/_ci_suggestions.html", q=q, cis=found[:SUGGESTIONS], mode=mode)


@bp.get("/tickets/pick/ci/<int:ci_id>")
@page(*STAFF)
def ci_pick(ci_id: int):
    """A CI picked in the new ticket's typeahead: its checked chip, and the search box emptied."""
    found = _cis_by_id([ci_id if 0 < ci_id <= MAX_ID else None])
    if not found:
        raise NotFound(_("No CI with id %(id)s.", id=str(ci_id)[:20]))
    return render_template("tickets/_ci_picked.html", ci=found[0])


@bp.get("/tickets/suggest/users")
@page(*STAFF)
def user_suggest():
    """People matching what was typed (name or e-mail), as buttons that pick the requester."""
    q = (request.args.get("requester") or request.args.get("q") or "").strip()[:200]
    people: list[User] = []
    if len(q) >= 2:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = (
            select(User)
            .where(
                User.active.is_(True),
                or_(func.lower(User.name).like(like, escape="\\"), func.lower(User.email).like(like, escape="\\")),
            )
            .order_by(User.name, User.email)
            .limit(SUGGESTIONS)
        )
        people = list(db.session.scalars(stmt))
    return render_template("tickets/_user_suggestions.html", q=q, people=people)


@bp.get("/tickets/pick/user/<int:user_id>")
@page(*STAFF)
def user_pick(user_id: int):
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None or not user.active:
        raise NotFound(_("No user with id %(id)s.", id=str(user_id)[:20]))
    return render_template("tickets/_user_picked.html", requester=user)
