"""The change manager's board: changes awaiting my approval, this week's changes and the month's change
calendar (blackouts shaded, collisions marked), filtered by team and risk in the URL; and the change's
own sections on its ticket page: the planned window with the blackout check, collisions with other
changes, the risk and its reasons, approvals, the plans and the review, linked incidents and problems.

Every rule is the ticket services' (windows, blackouts, approvals and separation of duties, risk,
collisions); this module only reads their answers and sends them the forms.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import get_day_names
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, get_timezone, to_user_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from cairn.auth.models import Team
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import DomainError, Invalid, NotFound
from cmdb.models import ConfigurationItem
from tickets import graph, risk, services, workflow
from tickets.models import RISK_LEVELS, Ticket
from tickets.schemas import ApprovalWriteSchema, TicketQuerySchema, TicketUpdateSchema
from web.blueprint import bp
from web.forms import keep_errors, load
from web.shell import STAFF

# Who edits a change's window and plans (the ticket API's writers), who decides on approvals.
WRITERS = tuple(role for role in STAFF if role in workflow.STAFF)
DECIDERS = tuple(role for role in STAFF if role in workflow.MANAGERS)

CALENDAR_LIMIT = 300  # changes drawn on one month
LIST_LIMIT = 100
APPROVAL_CANDIDATES = 200
SHARED_SHOWN = 25  # CIs named per kind of sharing on a collision
MAX_YEAR_SPAN = (1970, 2999)
RISK_LABELS = {"low": _l("Low risk"), "medium": _l("Medium risk"), "high": _l("High risk")}
DECISION_LABELS = {"approve": _l("Approved"), "reject": _l("Rejected")}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


# ---------------------------------------------------------------------------------------------
# Times: windows are stored in UTC; the board and the forms speak the reader's time zone.


def _zone() -> ZoneInfo:
    """The reader's time zone (Flask-Babel's is pytz's, whose zones don't combine with datetime)."""
    try:
        return ZoneInfo(str(get_timezone() or "UTC"))
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _local(value: datetime | None) -> datetime | None:
    return None if value is None else to_user_timezone(value if value.tzinfo else value.replace(tzinfo=UTC))


def _utc_of_local_day(day: date) -> datetime:
    """The UTC instant the reader's ``day`` begins."""
    return datetime.combine(day, time(0), _zone()).astimezone(UTC)


def _days_of(start: datetime, end: datetime, first: date, last: date) -> list[date]:
    """The reader's days [first, last] that the window [start, end) touches (a window ending at
    midnight does not touch the next day)."""
    local_start, local_end = _local(start), _local(end)
    begin = max(local_start.date(), first)
    finish = local_end.date()
    if local_end.time() == time(0) and local_end > local_start:
        finish -= timedelta(days=1)
    finish = min(max(finish, local_start.date()), last)
    days, day = [], begin
    while day <= finish:
        days.append(day)
        day += timedelta(days=1)
    return days


def form_time(value: str | None):
    """A ``datetime-local`` field (the reader's zone) as the API takes it: ISO 8601 with the offset.
    Anything that is not such a time goes to the schema as typed, for it to refuse."""
    text = (value or "").strip()[:40]
    if not text:
        return None
    try:
        naive = datetime.strptime(text, LOCAL_FORMAT)
    except ValueError:
        return text
    return naive.replace(tzinfo=_zone()).isoformat()


def local_input(value: datetime | None) -> str:
    """A stored time as a ``datetime-local`` field's value, in the reader's zone."""
    shown = _local(value)
    return shown.strftime(LOCAL_FORMAT) if shown else ""


# ---------------------------------------------------------------------------------------------
# The board


def _month(text: str | None) -> date:
    """The first day of the month named ``YYYY-MM``; this month when absent or not a month."""
    text = (text or "").strip()
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
        year, month = int(text[:4]), int(text[5:])
        if MAX_YEAR_SPAN[0] <= year <= MAX_YEAR_SPAN[1] and 1 <= month <= 12:
            return date(year, month, 1)
    return to_user_timezone(utcnow()).date().replace(day=1)


def _board_filters(args) -> tuple[dict, dict, dict]:
    """(what the filter form shows, search_tickets' filters, field errors) from the URL."""
    shown = {key: (args.get(key) or "").strip()[:40] for key in ("team_id", "risk", "month")}
    errors: dict[str, list[str]] = {}
    filters: dict = {"kind": ["change"]}
    if shown["team_id"]:
        try:
            filters.update(load(TicketQuerySchema(), {"team_id": shown["team_id"]}))
        except Invalid as error:
            errors.update(error.errors or {})
    if shown["risk"]:
        if shown["risk"] in RISK_LEVELS:
            filters["risk"] = [shown["risk"]]
        else:
            errors["risk"] = [_("Choose low, medium or high.")]
    return shown, filters, errors


def _awaiting_my_approval(filters: dict) -> list[Ticket]:
    """Changes waiting for approvals that I may give now (the services' rules, separation of duties
    included), oldest first."""
    if g.user.role not in DECIDERS:
        return []
    stmt = services.search_tickets(
        {**filters, "state": list(services.EMERGENCY_APPROVAL_STATES), "sort": ["updated_at"]}, g.user
    ).where(Ticket.change_type != "standard")
    found = []
    for ticket in db.session.scalars(stmt.limit(APPROVAL_CANDIDATES)):
        if ticket.change_type == "emergency" and ticket.state != "authorize":
            if not services.approval_pending_after_the_fact(ticket):
                continue
        elif services.approval_count(ticket) >= services.required_approvals():
            continue
        if services.approval_refusal(ticket, g.user) is None:
            found.append(ticket)
    return found[:LIST_LIMIT]


def _in_window(filters: dict, start: datetime, end: datetime, limit: int) -> list[Ticket]:
    stmt = services.search_tickets({**filters, "window_from": start, "window_to": end}, g.user).where(
        Ticket.state != "canceled"
    )
    return list(db.session.scalars(stmt.limit(limit)))


def _colliding(changes: list[Ticket]) -> dict[int, int]:
    """Of these changes, those that collide with another open change (the services' rule): id -> how
    many. Only changes whose window overlaps another's are asked (a collision needs both)."""
    windows = [c for c in changes if c.state not in workflow.CLOSED_STATES + ("review",)]
    found: dict[int, int] = {}
    for change in windows:
        overlaps = services.search_tickets(
            {"kind": ["change"], "window_from": change.planned_start, "window_to": change.planned_end}
        ).where(Ticket.id != change.id, Ticket.state.not_in(workflow.CLOSED_STATES + ("review",)))
        if db.session.scalar(overlaps.with_only_columns(Ticket.id).limit(1)) is None:
            continue
        try:
            count = len(graph.conflicts(change))
        except DomainError:
            db.session.rollback()
            continue
        if count:
            found[change.id] = count
    return found


def _blackouts(start: datetime, end: datetime) -> list[dict]:
    return services.blackouts_overlapping(start, end)


def _calendar(month: date, filters: dict) -> dict:
    first_weekday = 0  # Monday; the grid's rows are ISO weeks
    cal = calendar.Calendar(first_weekday)
    weeks = cal.monthdatescalendar(month.year, month.month)
    grid_first, grid_last = weeks[0][0], weeks[-1][-1]
    start, end = _utc_of_local_day(grid_first), _utc_of_local_day(grid_last + timedelta(days=1))
    changes = _in_window(filters, start, end, CALENDAR_LIMIT + 1)
    truncated = len(changes) > CALENDAR_LIMIT
    changes = changes[:CALENDAR_LIMIT]
    collisions = _colliding(changes)
    by_day: dict[date, list[dict]] = {}
    for change in changes:
        days = _days_of(change.planned_start, change.planned_end, grid_first, grid_last)
        for index, day in enumerate(days):
            by_day.setdefault(day, []).append(
                {"ticket": change, "first": index == 0, "last": index == len(days) - 1, "span": len(days)}
            )
    blackouts = _blackouts(start, end)
    shaded: dict[date, list[dict]] = {}
    for blackout in blackouts:
        for day in _days_of(blackout["starts_at"], blackout["ends_at"], grid_first, grid_last):
            shaded.setdefault(day, []).append(blackout)
    wide, short = get_day_names("wide", locale=get_locale()), get_day_names("abbreviated", locale=get_locale())
    previous = (month - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return {
        "month": month,
        "weeks": weeks,
        "by_day": by_day,
        "shaded": shaded,
        "blackouts": blackouts,
        "collisions": collisions,
        "count": len(changes),
        "truncated": truncated,
        "previous": previous.strftime("%Y-%m"),
        "following": following.strftime("%Y-%m"),
        "this_month": to_user_timezone(utcnow()).date().replace(day=1).strftime("%Y-%m"),
        "today": to_user_timezone(utcnow()).date(),
        "weekdays": [(wide[(first_weekday + i) % 7], short[(first_weekday + i) % 7]) for i in range(7)],
    }


@bp.get("/changes")
@page(*STAFF)
def changes():
    shown, filters, errors = _board_filters(request.args)
    month = _month(shown["month"])
    status = 422 if errors else 200
    if errors:
        filters = {"kind": ["change"], "team_ids": []}  # a bad filter shows nothing rather than everything
    today = to_user_timezone(utcnow()).date()
    monday = today - timedelta(days=today.weekday())
    week = _in_window(filters, _utc_of_local_day(monday), _utc_of_local_day(monday + timedelta(days=7)), LIST_LIMIT)
    awaiting = _awaiting_my_approval(filters)
    board = _calendar(month, filters)

    def board_url(**changes) -> str:
        values = {**{k: v for k, v in shown.items() if v}, **changes}
        return url_for("web.changes", **{k: v for k, v in values.items() if v})

    return (
        render_template(
            "changes/board.html",
            shown=shown,
            errors=errors,
            awaiting=awaiting,
            week=week,
            week_start=monday,
            cal=board,
            teams=list(db.session.scalars(select(Team).order_by(Team.name).limit(500))),
            risk_labels=RISK_LABELS,
            board_url=board_url,
            can_decide=g.user.role in DECIDERS,
            can_open=g.user.role in WRITERS,
            breadcrumbs=[(_("Changes"), None)],
        ),
        status,
    )


# ---------------------------------------------------------------------------------------------
# The change's sections on its ticket page


def change_context(ticket: Ticket) -> dict:
    """What the ticket page's change sections show (an empty dict for any other kind of ticket)."""
    if ticket.kind != "change":
        return {}
    conflicts = [{**item, "groups": _shared_groups(ticket, item)} for item in graph.conflicts_shown(ticket, g.user)]
    shown_ids = {c for item in conflicts for _label, ids, _more in item["groups"] for c in ids}
    names = dict(
        db.session.execute(
            select(ConfigurationItem.id, ConfigurationItem.name).where(ConfigurationItem.id.in_(list(shown_ids)))
        ).all()
    )
    approvals = services.approvals_of(ticket)
    refusal = services.approval_refusal(ticket, g.user) if g.user.role in DECIDERS else None
    links = services.links_of(ticket, g.user)
    linked = []
    for link in links:
        other = link.target if link.source_id == ticket.id else link.source
        if other.kind in ("incident", "problem"):
            linked.append({"link": link, "ticket": other, "outgoing": link.source_id == ticket.id})
    needs_approval = ticket.change_type not in services.APPROVAL_FREE_TYPES or ticket.change_type == "emergency"
    return {
        "change": {
            "risk": services.risk_of(ticket) or {},
            "blackouts": services.blackouts_overlapping(ticket.planned_start, ticket.planned_end),
            "business_hours": risk.in_business_hours(ticket.planned_start, ticket.planned_end),
            "conflicts": conflicts,
            "ci_names": names,
            "approvals": approvals,
            "round_approvals": [a for a in approvals if a.round == ticket.approval_round],
            "earlier_approvals": [a for a in approvals if a.round != ticket.approval_round],
            "approved": services.approval_count(ticket),
            "required": services.required_approvals(),
            "needs_approval": needs_approval,
            "retrospective": services.approval_pending_after_the_fact(ticket),
            "refusal": refusal,
            "decider": g.user.role in DECIDERS,
            "may_decide": g.user.role in DECIDERS and refusal is None,
            "sod": services.separation_of_duties(),
            "linked": linked,
            "editable": g.user.role in WRITERS and ticket.state not in workflow.CLOSED_STATES,
            "window_locked": ticket.state in ("scheduled", "implement", "review"),
            "start_input": local_input(ticket.planned_start),
            "end_input": local_input(ticket.planned_end),
            "timezone": str(_zone()),
            "risk_labels": RISK_LABELS,
            "decision_labels": DECISION_LABELS,
        }
    }


def _shared_groups(ticket: Ticket, item: dict) -> list[tuple[str, list[int], int]]:
    """How two colliding changes share CIs, as (how, the CI ids shown, how many more): CIs both change,
    CIs one changes that the other's failure reaches, and CIs in both blast radii."""
    mine = set(ticket.ci_ids)
    theirs = set(getattr(item["ticket"], "ci_ids", None) or [])
    direct = [c for c in item["shared_ci_ids"] if c in item["direct_ci_ids"]]
    changed_here = [c for c in item["shared_ci_ids"] if c in mine and c not in direct]
    changed_there = [c for c in item["shared_ci_ids"] if c in theirs and c not in direct]
    rest = [c for c in item["shared_ci_ids"] if c not in mine and c not in theirs]
    groups = [
        (_("both changes change it"), direct),
        (_("this change changes it; the other's failure reaches it"), changed_here),
        (_("the other change changes it; this one's failure reaches it"), changed_there),
        (_("in the blast radius of both"), rest),
    ]
    return [(label, ids[:SHARED_SHOWN], max(0, len(ids) - SHARED_SHOWN)) for label, ids in groups if ids]


def _ticket_page(ticket_id: int, status: int, failed: str):
    from web.tickets import _ticket_page as render

    return render(ticket_id, status, failed=failed)


def _change(ticket_id: int) -> Ticket:
    ticket = services.get_ticket(ticket_id, g.user, for_update=True)
    if ticket.kind != "change":
        raise Invalid(_("%(number)s is not a change.", number=ticket.number))
    return ticket


def _check_version(ticket: Ticket) -> None:
    from web.tickets import _check_version as check

    check(ticket)


def _done(ticket_id: int, message: str, anchor: str):
    flash(message, "success")
    return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor=anchor))


def _failed(ticket_id: int, error: DomainError, failed: str):
    db.session.rollback()
    keep_errors(error)
    return _ticket_page(ticket_id, error.status, failed)


@bp.post("/changes/<int:ticket_id>/window")
@page(*WRITERS)
def change_window(ticket_id: int):
    """The planned window, in the reader's zone; the blackouts it meets are explained on the page."""
    if not 0 < ticket_id <= MAX_ID:
        raise NotFound(_("No such change."))
    form = request.form
    ticket = _change(ticket_id)
    try:
        raw = {
            "planned_start": form_time(form.get("planned_start")),
            "planned_end": form_time(form.get("planned_end")),
        }
        data = load(TicketUpdateSchema(), raw)
        _check_version(ticket)
        services.update_ticket(ticket, data, g.user)
    except DomainError as error:
        return _failed(ticket_id, error, "window")
    clashes = services.blackouts_overlapping(ticket.planned_start, ticket.planned_end)
    if clashes:
        flash(
            _(
                "The window meets a blackout (%(names)s): %(number)s can't be scheduled in it.",
                names=", ".join(b["name"] for b in clashes),
                number=ticket.number,
            ),
            "error",
        )
    return _done(ticket_id, _("The window of %(number)s is saved.", number=ticket.number), "change-window")


@bp.post("/changes/<int:ticket_id>/plans")
@page(*WRITERS)
def change_plans(ticket_id: int):
    """The implementation and backout plans."""
    if not 0 < ticket_id <= MAX_ID:
        raise NotFound(_("No such change."))
    form = request.form
    ticket = _change(ticket_id)
    try:
        raw = {key: form.get(key, "") for key in ("implementation_plan", "backout_plan") if key in form}
        data = load(TicketUpdateSchema(), {k: (v if v.strip() else None) for k, v in raw.items()})
        _check_version(ticket)
        services.update_ticket(ticket, data, g.user)
    except DomainError as error:
        return _failed(ticket_id, error, "plans")
    return _done(ticket_id, _("The plans of %(number)s are saved.", number=ticket.number), "change-plans")


@bp.post("/changes/<int:ticket_id>/approvals")
@page(*DECIDERS)
def change_approval(ticket_id: int):
    """Approve or reject, with a comment; the services refuse (and say why) whoever may not."""
    if not 0 < ticket_id <= MAX_ID:
        raise NotFound(_("No such change."))
    form = request.form
    ticket = _change(ticket_id)
    try:
        data = load(ApprovalWriteSchema(), {"decision": form.get("decision") or "", "comment": form.get("comment", "")})
        services.decide_approval(ticket, data["decision"], data["comment"], g.user)
    except DomainError as error:
        return _failed(ticket_id, error, "approval")
    if data["decision"] == "approve":
        message = _("You approved %(number)s.", number=ticket.number)
    else:
        message = _("You rejected %(number)s; it is back in %(state)s.", number=ticket.number, state=ticket.state)
    return _done(ticket_id, message, "change-approvals")
