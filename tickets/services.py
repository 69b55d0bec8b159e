"""Ticket operations: every write to tickets and what hangs off them goes through here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from sqlalchemy import Select, and_, case, func, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.audit.mixin import jsonable, record, write_as
from cairn.audit.models import ChangeLog
from cairn.auth.models import Team, User
from cairn.auth.policy import hidden, restricted, visible_ids
from cairn.auth.roles import ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION, REQUESTER
from cairn.config import setting
from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from cairn.external_ids import set_external_ids
from cairn.uow import on_rollback
from cmdb.custom_fields import query as custom_query
from cmdb.custom_fields.registry import category_chain
from cmdb.custom_fields.values import checked_values, with_defaults
from cmdb.models import ConfigurationItem
from cmdb.services import visible_ci_ids
from tickets import attachments, categories, sla, workflow
from tickets.models import (
    NUMBER_PREFIXES,
    BlackoutWindow,
    ChangeTemplate,
    Ticket,
    TicketApproval,
    TicketAttachment,
    TicketCategory,
    TicketCI,
    TicketComment,
    TicketCounter,
    TicketExternalId,
    TicketLink,
    TicketWatcher,
)
from tickets.routing import engine as routing
from tickets.slas import clocks

MAX_CIS_PER_TICKET = 1000
ASSIGNABLE_ROLES = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION)
CHANGE_FIELDS = (
    "planned_start",
    "planned_end",
    "implementation_plan",
    "backout_plan",
    "outcome",
    "change_type",
    "template_id",
)
# What a change's type may still be switched in (before it is scheduled).
RETYPABLE_STATES = ("new", "assess", "authorize")
# A change's risk is computed afresh when read in these states; afterwards its stored copy stands.
LIVE_RISK_STATES = ("new", "assess", "authorize", "scheduled", "implement")
PROBLEM_FIELDS = ("root_cause", "workaround")


# ---------------------------------------------------------------------------------------------
# Reading


# Who sees which ticket: the one rule, for the ticket endpoints and for every answer that embeds
# tickets (links, open tickets on impact answers, conflicts, probable causes). See cairn.auth.policy.


def ticket_visibility(viewer: User | None):
    """The SQL condition a ticket must meet for ``viewer`` to see it, or None when it sees them all:
    requesters see only the tickets they requested."""
    if restricted(viewer):
        return Ticket.requester_id == viewer.id
    return None


def can_see_ticket(viewer: User | None, ticket: Ticket | None) -> bool:
    """Whether ``viewer`` may see ``ticket`` (the rule of ``ticket_visibility``, for a loaded one)."""
    if ticket is None:
        return False
    return not restricted(viewer) or ticket.requester_id == viewer.id


def visible_ticket_ids(viewer: User | None, ids) -> set[int]:
    """Those of ``ids`` that ``viewer`` may see (one query; a viewer who sees all gets the
    ids back as given)."""
    return visible_ids(Ticket, ticket_visibility(viewer), ids)


def visible_tickets(viewer: User | None) -> Select:
    """Every ticket a viewer may see: requesters only their own."""
    condition = ticket_visibility(viewer)
    return select(Ticket) if condition is None else select(Ticket).where(condition)


def not_found(ticket_id: int) -> NotFound:
    """The one 404 of a ticket id: the same whether the ticket does not exist or may not be seen."""
    return NotFound(f"No ticket with id {ticket_id}.")


def get_ticket(ticket_id: int, viewer: User | None = None, *, for_update: bool = False) -> Ticket:
    """The ticket, or NotFound when it does not exist or the viewer may not see it."""
    ticket = None
    if 0 < ticket_id <= MAX_ID:
        if for_update:
            # Writers queue on the ticket's row lock (PostgreSQL) instead of failing on the version.
            stmt = select(Ticket).where(Ticket.id == ticket_id).with_for_update(of=Ticket)
            ticket = db.session.scalar(stmt.execution_options(populate_existing=True))
        else:
            ticket = db.session.get(Ticket, ticket_id)
    if not can_see_ticket(viewer, ticket):
        raise not_found(ticket_id)
    return ticket


def _like(q: str) -> str:
    return "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_tickets(filters: dict[str, Any], viewer: User | None = None) -> Select:
    """A select of the tickets matching the filters of GET /tickets."""
    t = Ticket
    stmt = visible_tickets(viewer)
    for key in ("kind", "state", "priority", "change_type", "risk"):
        if filters.get(key):
            stmt = stmt.where(getattr(t, key).in_(filters[key]))
    for key in ("assignee_id", "team_id", "requester_id"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(t, key) == filters[key])
    if filters.get("category_id") is not None:  # the category and its subcategories
        category_id = filters["category_id"]
        subcategories = select(TicketCategory.id).where(TicketCategory.parent_id == category_id)
        stmt = stmt.where(or_(t.category_id == category_id, t.category_id.in_(subcategories)))
    if filters.get("team_ids") is not None:
        stmt = stmt.where(t.team_id.in_(filters["team_ids"] or [0]))
    if filters.get("unassigned") is not None:
        stmt = stmt.where(t.assignee_id.is_(None) if filters["unassigned"] else t.assignee_id.is_not(None))
    if filters.get("ci_id") is not None:
        # A CI the viewer may not see matches nothing (else the filter would tell which CIs its tickets touch).
        ci_id = filters["ci_id"] if visible_ci_ids(viewer, [filters["ci_id"]]) else 0
        linked = select(TicketCI.ticket_id).where(TicketCI.ci_id == ci_id, TicketCI.removed_at.is_(None))
        stmt = stmt.where(t.id.in_(linked))
    if filters.get("open") is not None:
        done = t.state.in_(workflow.DONE_STATES)
        stmt = stmt.where(~done if filters["open"] else done)
    if filters.get("breached") is not None:
        stmt = stmt.where(t.sla_breached.is_(filters["breached"]))
    if filters.get("due_before") is not None:
        stmt = stmt.where(t.resolution_due < filters["due_before"])
    if filters.get("known_error") is not None:
        stmt = stmt.where(t.known_error.is_(filters["known_error"]))
    if filters.get("window_from") is not None:
        stmt = stmt.where(t.planned_end > filters["window_from"])
    if filters.get("window_to") is not None:
        stmt = stmt.where(t.planned_start < filters["window_to"])
    if filters.get("q"):
        q = filters["q"].strip()
        stmt = stmt.where(or_(t.number == q.upper(), func.lower(t.title).like(_like(q), escape="\\")))
    if filters.get("custom_fields"):
        dialect = db.session.get_bind().dialect.name
        for name, (kind, value) in sorted(filters["custom_fields"].items()):
            param = custom_query.param_name(name, kind)
            params = {param: custom_query.param_value(name, kind, value, dialect)}
            stmt = stmt.where(custom_query.condition(t.custom_fields, param, custom_query.bind(params, True), dialect))
    order = []
    sort = filters.get("sort")
    if not sort and (filters.get("window_from") or filters.get("window_to")):
        sort = ["planned_start"]
    for key in sort or ["-created_at"]:
        if custom_query.is_sort_key(key):
            order.append(custom_query.sort_expression(t.custom_fields, key))
            continue
        column = getattr(t, key.lstrip("-"))
        order.append(column.desc() if key.startswith("-") else column.asc())
    return stmt.order_by(*order, t.id.desc())


# The saved queues of the web desk: a name -> the filters of search_tickets for a user.
QUEUES = ("mine", "team", "unassigned", "breached", "open")


def queue_filters(queue: str, user: User) -> dict[str, Any]:
    """The search_tickets filters of a saved queue for ``user`` (open tickets only, all of them):
    mine (assigned to me), team (my teams' tickets nobody has taken), unassigned (nobody's),
    breached (past their SLA), open (every open ticket)."""
    filters: dict[str, Any] = {"open": True}
    if queue == "mine":
        filters["assignee_id"] = user.id
    elif queue == "team":
        filters.update(team_ids=[team.id for team in user.teams], unassigned=True)
    elif queue == "unassigned":
        filters["unassigned"] = True
    elif queue == "breached":
        filters["breached"] = True
    elif queue != "open":
        raise Invalid(f"no queue {queue!r}; choose one of {', '.join(QUEUES)}")
    return filters


def queue_counts(user: User) -> dict[str, int]:
    """How many open tickets each saved queue holds for ``user``, in one query."""
    open_ = ~Ticket.state.in_(workflow.DONE_STATES)
    team_ids = [team.id for team in user.teams] or [0]
    unassigned = Ticket.assignee_id.is_(None)

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    stmt = select(
        count(Ticket.assignee_id == user.id),
        count(unassigned & Ticket.team_id.in_(team_ids)),
        count(unassigned),
        count(Ticket.sla_breached.is_(True)),
        func.count(),
    ).where(open_)
    visibility = ticket_visibility(user)
    if visibility is not None:
        stmt = stmt.where(visibility)
    row = db.session.execute(stmt).one()
    return dict(zip(QUEUES, (int(v) for v in row), strict=True))


def tickets_of_ci(ci_id: int, viewer: User | None = None) -> Select:
    """The CI's tickets, open ones first, then by priority and newest."""
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id == ci_id, TicketCI.removed_at.is_(None))
    done_last = case((Ticket.state.in_(workflow.DONE_STATES), 1), else_=0)
    return (
        visible_tickets(viewer)
        .where(Ticket.id.in_(linked))
        .order_by(done_last, Ticket.priority, Ticket.created_at.desc(), Ticket.id.desc())
    )


def ci_figures(ci_id: int, now: datetime | None = None) -> dict:
    """Open tickets, incidents in the last 90 days and the mean time to resolve them (on-hold excluded)."""
    now = now or utcnow()
    since = now - timedelta(days=90)
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id == ci_id, TicketCI.removed_at.is_(None))
    open_count = db.session.scalar(
        select(func.count()).where(Ticket.id.in_(linked), Ticket.state.not_in(workflow.DONE_STATES))
    )
    incidents = db.session.execute(
        select(Ticket.created_at, Ticket.resolved_at, Ticket.on_hold_seconds).where(
            Ticket.id.in_(linked), Ticket.kind == "incident", Ticket.created_at >= since
        )
    ).all()
    durations = [
        (resolved - created).total_seconds() - (held or 0) for created, resolved, held in incidents if resolved
    ]
    return {
        "ci_id": ci_id,
        "open_tickets": open_count,
        "incidents_last_90_days": len(incidents),
        "resolved_incidents_last_90_days": len(durations),
        "mean_time_to_resolve_seconds": round(sum(durations) / len(durations)) if durations else None,
    }


def history_select(ticket: Ticket, viewer: User | None = None):
    """The ticket's change-log rows and those of its CI links, attachments, approvals, watchers and
    links, newest first. A viewer who sees only its own (``cairn.auth.policy``) gets the rows of the
    ticket itself and its attachments, without comments (internal work notes are in them): the
    others name CIs, tickets and people it may not see."""
    if restricted(viewer):
        own = (ChangeLog.object_type == "ticket") & (ChangeLog.object_id == ticket.id) & (ChangeLog.action != "comment")
        files = select(TicketAttachment.id).where(TicketAttachment.ticket_id == ticket.id)
        mine = (ChangeLog.object_type == TicketAttachment.audit_type()) & ChangeLog.object_id.in_(files)
        return select(ChangeLog).where(or_(own, mine)).order_by(ChangeLog.id.desc())
    children = [
        (TicketCI, TicketCI.ticket_id),
        (TicketAttachment, TicketAttachment.ticket_id),
        (TicketApproval, TicketApproval.ticket_id),
        (TicketWatcher, TicketWatcher.ticket_id),
        (TicketLink, TicketLink.source_id),
    ]
    conditions = [(ChangeLog.object_type == "ticket") & (ChangeLog.object_id == ticket.id)]
    for model, column in children:
        ids = select(model.id).where(column == ticket.id)
        conditions.append((ChangeLog.object_type == model.audit_type()) & ChangeLog.object_id.in_(ids))
    return select(ChangeLog).where(or_(*conditions)).order_by(ChangeLog.id.desc())


def comments_of(ticket: Ticket, viewer: User | None) -> Select:
    stmt = select(TicketComment).where(TicketComment.ticket_id == ticket.id)
    if restricted(viewer):
        stmt = stmt.where(TicketComment.internal.is_(False))
    return stmt.order_by(TicketComment.id)


def ci_links_of(ticket: Ticket, viewer: User | None = None) -> list:
    """The ticket's CIs (TicketCI rows). For a viewer who may not see one of them, that entry names
    no CI: ``ci_id`` null and ``ci`` ``{id: null, visible: false}``."""
    links = list(
        db.session.scalars(
            select(TicketCI).where(TicketCI.ticket_id == ticket.id, TicketCI.removed_at.is_(None)).order_by(TicketCI.id)
        )
    )
    if not restricted(viewer):
        return links
    visible = visible_ci_ids(viewer, [link.ci_id for link in links])
    return [
        link
        if link.ci_id in visible
        else {"id": link.id, "ticket_id": link.ticket_id, "ci_id": None, "ci": hidden(), "created_at": link.created_at}
        for link in links
    ]


def links_of(ticket: Ticket, viewer: User | None = None) -> list:
    """Links from and to the ticket (TicketLink rows). For a viewer who may not see the ticket at
    the other end, that end shows as ``{id: null, visible: false}`` with a null id."""
    links = list(
        db.session.scalars(
            select(TicketLink)
            .where(or_(TicketLink.source_id == ticket.id, TicketLink.target_id == ticket.id))
            .order_by(TicketLink.id)
        )
    )
    if not restricted(viewer):
        return links
    ends = {(link.target_id if link.source_id == ticket.id else link.source_id) for link in links}
    visible = visible_ticket_ids(viewer, ends)
    shown = []
    for link in links:
        end = "target" if link.source_id == ticket.id else "source"
        if getattr(link, f"{end}_id") in visible:
            shown.append(link)
            continue
        view = {"id": link.id, "type": link.type, "source_id": link.source_id, "target_id": link.target_id,
                "source": link.source, "target": link.target, "created_at": link.created_at}  # fmt: skip
        view[f"{end}_id"], view[end] = None, hidden()
        shown.append(view)
    return shown


def watchers_of(ticket: Ticket) -> list[TicketWatcher]:
    return list(db.session.scalars(select(TicketWatcher).where(TicketWatcher.ticket_id == ticket.id)))


def approvals_of(ticket: Ticket) -> list[TicketApproval]:
    return list(
        db.session.scalars(
            select(TicketApproval)
            .where(TicketApproval.ticket_id == ticket.id)
            .order_by(TicketApproval.round, TicketApproval.id)
        )
    )


def attachments_of(ticket: Ticket) -> list[TicketAttachment]:
    return list(
        db.session.scalars(
            select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id).order_by(TicketAttachment.id)
        )
    )


def get_attachment(ticket: Ticket, attachment_id: int) -> TicketAttachment:
    attachment = db.session.get(TicketAttachment, attachment_id) if 0 < attachment_id <= MAX_ID else None
    if attachment is None or attachment.ticket_id != ticket.id:
        raise NotFound(f"No attachment with id {attachment_id} on {ticket.number}.")
    return attachment


# ---------------------------------------------------------------------------------------------
# Numbers


def next_number(kind: str) -> str:
    """The next number of a kind: a sequence per kind on PostgreSQL (never blocks, may leave gaps
    when a transaction rolls back); on SQLite, where writers are serial, a counter row."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        value = connection.scalar(text(f"SELECT nextval('ticket_number_{kind}')"))
    else:
        connection.execute(sqlite_insert(TicketCounter).values(kind=kind, last_value=0).on_conflict_do_nothing())
        value = connection.scalar(
            update(TicketCounter)
            .where(TicketCounter.kind == kind)
            .values(last_value=TicketCounter.last_value + 1)
            .returning(TicketCounter.last_value)
        )
    return f"{NUMBER_PREFIXES[kind]}{value:07d}"


# ---------------------------------------------------------------------------------------------
# Writing tickets


def create_ticket(data: dict[str, Any], user: User | None) -> Ticket:
    """Open a ticket; raises Invalid (422) naming the bad fields, Forbidden (403) for a requester
    opening a problem or change."""
    data = dict(data)
    kind = data["kind"]
    ci_ids = list(dict.fromkeys(data.pop("ci_ids", None) or []))
    external_ids = data.pop("external_ids", None)
    errors: dict[str, list[str]] = {}
    if user is not None and user.role == REQUESTER:
        if kind not in ("incident", "request"):
            raise Forbidden("Requesters open incidents and requests only.")
        for key in ("assignee_id", "team_id"):
            if data.get(key) is not None:
                errors[key] = ["Requesters cannot assign tickets."]
        if data.get("requester_id") not in (None, user.id):
            errors["requester_id"] = ["Requesters open tickets for themselves."]
        if external_ids:
            # Other tools' ids are unique across every ticket: taking one would tell a requester
            # which tickets it may not see exist (409 naming the holder).
            errors["external_ids"] = ["Requesters cannot set external ids."]
        data["requester_id"] = user.id
    elif data.get("requester_id") is None and user is not None:
        data["requester_id"] = user.id
    _check_kind_fields(kind, data, errors)
    category = categories.check_ticket_category(kind, data.get("category_id"), errors)
    if kind == "change":
        ci_ids = _apply_template(data, ci_ids, errors)
    elif not data.get("title"):
        errors["title"] = ["Missing data for required field."]
    _check_people(data, errors, current=None)
    _check_window(data.get("planned_start"), data.get("planned_end"), errors)
    _check_cis(ci_ids, user, errors)
    if len(ci_ids) > MAX_CIS_PER_TICKET:
        errors.setdefault("ci_ids", []).append(f"At most {MAX_CIS_PER_TICKET} CIs per ticket.")
    _check_custom_fields(kind, data, None, errors)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    chosen_category = data.get("category_id")
    routed = routing.route_new(data, ci_ids)  # routing rules, then the category's team, then the team's rota
    if data.get("category_id") != chosen_category:
        data["custom_fields"] = with_defaults(
            "ticket", kind, data["custom_fields"], category_chain(data["category_id"])
        )
    if category is not None and data.get("team_id") is None:
        data["team_id"] = categories.default_team_id(category, data.get("assignee_id"))
    now = utcnow()
    ticket = Ticket(
        number=next_number(kind),
        state="new",
        impact=data.pop("impact", 3),
        urgency=data.pop("urgency", 3),
        created_at=now,
        updated_at=now,
        on_hold_seconds=0,
        approval_round=1,
        description=data.pop("description", ""),
        **data,
    )
    ticket.priority = workflow.priority_of(ticket.impact, ticket.urgency)
    sla.apply_targets(ticket)
    _set_clocks(ticket, clocks.refresh(ticket, now, ci_ids=ci_ids))
    if kind == "change":
        _set_risk(ticket, ci_ids)
    db.session.add(ticket)
    db.session.flush()
    if external_ids:
        _set_external_ids(ticket, external_ids)
    for ci_id in ci_ids:
        db.session.add(TicketCI(ticket=ticket, ci_id=ci_id))
    db.session.flush()
    routing.record_outcome(ticket, routed)
    return ticket


def _apply_template(data: dict, ci_ids: list[int], errors: dict) -> list[int]:
    """A change's type; a standard change takes what its template says for every field the request
    left out (title, description, plans, CIs). Returns the CIs to link."""
    template_id = data.get("template_id")
    change_type = data.get("change_type") or ("standard" if template_id is not None else workflow.DEFAULT_CHANGE_TYPE)
    data["change_type"] = change_type
    if change_type != "standard":
        if template_id is not None:
            errors["template_id"] = ["A template opens a standard change; leave change_type out or make it standard."]
        if not data.get("title"):
            errors["title"] = ["Missing data for required field."]
        return ci_ids
    template = db.session.get(ChangeTemplate, template_id) if template_id is not None else None
    if template is None:
        errors["template_id"] = [
            "A standard change is opened from a change template: name one."
            if template_id is None
            else f"No change template with id {template_id}."
        ]
        return ci_ids
    if not template.active:
        errors["template_id"] = [f"The change template {template.name!r} is retired."]
        return ci_ids
    if not data.get("title"):
        data["title"] = template.name
    if not data.get("description"):
        data["description"] = template.description
    for key in ("implementation_plan", "backout_plan"):
        if data.get(key) is None:
            data[key] = template.implementation_plan if key == "implementation_plan" else template.backout_plan
    return ci_ids or list(dict.fromkeys(template.ci_ids or []))


def _set_external_ids(ticket: Ticket, items: list[dict], *, replace: bool = False) -> bool:
    return set_external_ids(
        ticket, items, model=TicketExternalId, owner_key="ticket_id", label="ticket", replace=replace
    )


def find_by_external_id(source: str, external_id: str, viewer: User | None = None) -> Ticket | None:
    """The ticket a source knows by ``external_id``, or None (also when ``viewer`` may not see it)."""
    return db.session.scalar(
        visible_tickets(viewer)
        .join(TicketExternalId)
        .where(TicketExternalId.source == source, TicketExternalId.external_id == external_id)
    )


def update_ticket(ticket: Ticket, data: dict[str, Any], user: User | None, *, flush: bool = True) -> Ticket:
    """Apply a PATCH: text, impact and urgency (priority and SLA follow), assignment, change window
    and plans, problem analysis. ``flush=False`` leaves the flush to the caller (a bulk edit
    flushes a thousand tickets at once)."""
    data = dict(data)
    errors: dict[str, list[str]] = {}
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; it can't be changed.")
    external_ids = data.pop("external_ids", None)
    _check_kind_fields(ticket.kind, data, errors)
    if data.get("category_id") is not None and data["category_id"] != ticket.category_id:
        categories.check_ticket_category(ticket.kind, data["category_id"], errors)
    new_type = data.get("change_type")
    if ticket.kind == "change" and new_type is not None and new_type != ticket.change_type:
        if new_type == "standard":
            errors["change_type"] = ["A standard change is opened from a change template (template_id)."]
        elif ticket.state not in RETYPABLE_STATES:
            raise Conflict(f"{ticket.number} is {ticket.state}; its type can't change any more.")
    _check_people(data, errors, current=ticket)
    window_moves = any(k in data and data[k] != getattr(ticket, k) for k in ("planned_start", "planned_end"))
    if window_moves and ticket.state in ("scheduled", "implement", "review"):
        raise Conflict(
            f"{ticket.number} is {ticket.state}; move it back to assess before changing its window.",
            allowed=allowed_moves(ticket, user),
        )
    _check_window(data.get("planned_start", ticket.planned_start), data.get("planned_end", ticket.planned_end), errors)
    if "custom_fields" in data or data.get("category_id", ticket.category_id) != ticket.category_id:
        _check_custom_fields(ticket.kind, data, ticket, errors)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    team_moves = "team_id" in data and data["team_id"] != ticket.team_id
    recategorised = "category_id" in data and data["category_id"] != ticket.category_id
    for key, value in data.items():
        setattr(ticket, key, value)
    if recategorised:
        routing.reroute(ticket, data)  # the routing rules, again (tickets.routing.engine)
    if external_ids is not None:
        _set_external_ids(ticket, external_ids, replace=True)
    priority = workflow.priority_of(ticket.impact, ticket.urgency)
    if priority != ticket.priority or window_moves:
        ticket.priority = priority
        sla.apply_targets(ticket)
    if team_moves:
        ticket.ola_started_at = None  # a new team's OLA clock starts now
    _set_clocks(ticket, clocks.refresh(ticket, utcnow()))
    if ticket.kind == "change" and ticket.state in LIVE_RISK_STATES:
        _set_risk(ticket, ticket.ci_ids)
    if flush:
        db.session.flush()
    return ticket


def _check_custom_fields(kind: str, data: dict, ticket: Ticket | None, errors: dict) -> None:
    """The ticket's custom field values after the write, checked against the definitions of its kind
    (``data["custom_fields"]`` merges into the stored ones, a null removes one); a new ticket gets
    the defaults of the fields it lacks. The fields of its category (and the category's parent)
    apply too; a ticket moving to another category gets the defaults of that one's fields."""
    given = data.pop("custom_fields", None)
    category_id = data.get("category_id", None if ticket is None else ticket.category_id)
    moving = ticket is not None and category_id != ticket.category_id
    try:
        data["custom_fields"] = checked_values(
            "ticket",
            kind,
            given,
            None if ticket is None else ticket.custom_fields,
            fill_defaults=ticket is None or moving,
            categories=category_chain(category_id),
        )
    except ma.ValidationError as exc:
        errors["custom_fields"] = exc.messages


def _check_kind_fields(kind: str, data: dict, errors: dict) -> None:
    for key in CHANGE_FIELDS:
        if data.get(key) is not None and kind != "change":
            errors[key] = ["Only changes have this field."]
    for key in PROBLEM_FIELDS:
        if data.get(key) is not None and kind != "problem":
            errors[key] = ["Only problems have this field."]


def _check_people(data: dict, errors: dict, current: Ticket | None) -> None:
    if data.get("requester_id") is not None:
        requester = db.session.get(User, data["requester_id"])
        if requester is None:
            errors["requester_id"] = [f"No user with id {data['requester_id']}."]
    assignee = None
    if data.get("assignee_id") is not None:
        assignee = db.session.get(User, data["assignee_id"])
        if assignee is None:
            errors["assignee_id"] = [f"No user with id {data['assignee_id']}."]
        elif not assignee.active or assignee.role not in ASSIGNABLE_ROLES:
            errors["assignee_id"] = [f"User {assignee.id} can't work tickets (role {assignee.role})."]
            assignee = None
    team_id = data.get("team_id", current.team_id if current else None)
    if data.get("team_id") is not None and db.session.get(Team, data["team_id"]) is None:
        errors["team_id"] = [f"No team with id {data['team_id']}."]
        return
    if assignee is not None and team_id is not None:
        team = db.session.get(Team, team_id)
        if team is not None and assignee not in team.members:
            errors["assignee_id"] = [f"User {assignee.id} is not a member of team {team.name}."]


def _check_window(start: datetime | None, end: datetime | None, errors: dict) -> None:
    if start is not None and end is not None and end <= start:
        errors["planned_end"] = ["The window must end after it starts."]


def _check_cis(ci_ids: list[int], viewer: User | None, errors: dict) -> None:
    """The CIs must exist and be visible to ``viewer`` (the same message either way)."""
    if not ci_ids:
        return
    found = visible_ci_ids(viewer, _existing_ci_ids(ci_ids))
    missing = [i for i in ci_ids if i not in found]
    if missing:
        errors["ci_ids"] = [f"No CI with id {', '.join(map(str, missing[:20]))}."]


def _existing_ci_ids(ci_ids: list[int]) -> set[int]:
    wanted = [i for i in set(ci_ids) if 0 < i <= MAX_ID]
    return set(db.session.scalars(select(ConfigurationItem.id).where(id_in(ConfigurationItem.id, wanted))))


def _set_risk(ticket: Ticket, ci_ids: list[int]) -> None:
    from tickets import risk

    assessment = risk.assess(ticket, ci_ids)
    ticket.risk = assessment["risk"]
    ticket.risk_score = assessment["score"]
    ticket.risk_reasons = assessment["factors"]
    ticket.risk_assessed_at = assessment["assessed_at"]


def refresh_risk(ticket: Ticket) -> Ticket:
    """Store a change's risk as it is now (CIs, graph or other changes moved): the change log then
    shows the level it had at each decision point. Answers compute it afresh (``risk_of``). A change
    in review, closed or canceled keeps the risk it had when it left the open states."""
    if ticket.kind == "change" and ticket.state in LIVE_RISK_STATES:
        _set_risk(ticket, ticket.ci_ids)
        db.session.flush()
    return ticket


def risk_of(ticket: Ticket) -> dict | None:
    """A change's risk as an answer shows it: computed now while the change is open (its inputs, the
    graph, incidents, other changes, move without the change being written), the stored assessment
    once it is in review, closed or canceled (what it was when the work was done)."""
    from tickets import risk

    if ticket.kind != "change":
        return None
    if ticket.state in LIVE_RISK_STATES and ticket.id is not None:
        return risk.current(ticket)
    return risk.stored(ticket)


def _write_as(ticket: Ticket, action: str, values: dict, summary: str, extra: dict | None = None) -> dict:
    """Apply ``values`` to the ticket and record them as ONE change-log row under ``action``
    (``transition``, ``comment``), instead of the flush hook's plain ``update``."""
    db.session.flush()  # earlier edits are recorded as what they were
    changes = {}
    for key, value in values.items():
        before = getattr(ticket, key)
        if jsonable(before) != jsonable(value):
            changes[key] = [jsonable(before), jsonable(value)]
        setattr(ticket, key, value)
    changes.update(extra or {})
    write_as(db.session, ticket, action, summary[:300], extra)
    return changes


# ---------------------------------------------------------------------------------------------
# Transitions


def allowed_moves(ticket: Ticket, user: User | None) -> list[str]:
    """The states ``user`` may move the ticket to now (every legal one without a user): the workflow
    table's moves for the ticket's kind, state and change type that the user's role may make."""
    role = user.role if user is not None else None
    return workflow.allowed_targets(ticket.kind, ticket.state, role, ticket.change_type)


def transition(ticket: Ticket, to: str, body: dict[str, Any], user: User | None, *, system: bool = False) -> Ticket:
    """Move a ticket along its workflow. Illegal moves are 409 naming the ones the caller may make,
    a role that may not make the move 403, missing fields 422, unmet conditions (approvals,
    blackouts, the window) 409.

    Resolving an incident or a problem with ``resolve_linked`` resolves the open incidents linked to
    it too (an incident's duplicates and the incidents caused by it; a problem's incidents), each with
    the resolution note and its own change-log entry; their ids are in ``ticket.resolved_linked``."""
    kind, state = ticket.kind, ticket.state
    if to not in workflow.WORKFLOWS[kind]:
        raise Invalid(f"{to!r} is not a state of a {kind}.", errors={"to": [f"Choose one of {workflow.states(kind)}."]})
    move = workflow.find_move(kind, state, to, ticket.change_type)
    if move is None:
        allowed = allowed_moves(ticket, None if system else user)
        if not workflow.moves(kind, state, ticket.change_type):
            listed = "none, it is final"
        else:
            listed = ", ".join(allowed) or "none that you may make"
        raise Conflict(f"A {_kind_label(ticket)} cannot move from {state} to {to}; allowed: {listed}.", allowed=allowed)
    if not system and user is not None and user.role not in move.roles:
        raise Forbidden(f"The role {user.role!r} may not move a {kind} to {to}.")
    note = (body.get("note") or "").strip() or None
    values: dict[str, Any] = {"state": to}
    _check_needs(ticket, move, body, note, values)
    now = utcnow()
    if state == "new" and ticket.acknowledged_at is None:
        values["acknowledged_at"] = now
    if state in workflow.PAUSED_STATES and ticket.on_hold_since is not None:
        held = max(0, int((now - ticket.on_hold_since).total_seconds()))
        values["on_hold_seconds"] = (ticket.on_hold_seconds or 0) + held
        values["resolution_due"] = ticket.resolution_due + timedelta(seconds=held)
        values["on_hold_since"] = None
        values["hold_intervals"] = [*(ticket.hold_intervals or []), [ticket.on_hold_since.isoformat(), now.isoformat()]]
    if to in workflow.PAUSED_STATES:
        values["on_hold_since"] = now
        values["hold_reason"] = note
    if to == "resolved":
        values.update(resolved_at=now, resolution_code=body.get("resolution_code"), resolution_note=note)
    elif state == "resolved" and to != "closed":
        values.update(resolved_at=None, resolution_code=None, resolution_note=None)
    if to == "closed":
        values["closed_at"] = now
    if to == "canceled":
        values.update(canceled_at=now, cancel_reason=note)
    if to == "known_error":
        values["known_error"] = True
    if to == "implement":
        values["actual_start"] = now
    if to == "review":
        values["actual_end"] = now
    values.update(clocks.refresh(ticket, now, overrides=values, rematch=False))
    extra = {"note": [None, note]} if note else {}
    _write_as(ticket, "transition", values, f"{ticket.number} {state} → {to}: {ticket.title}", extra)
    if to == "resolved" and (body.get("resolve_linked") or body.get("resolve_linked_incidents")):
        ticket.resolved_linked = _resolve_linked(ticket, note, body.get("resolution_code"), user)
    if kind == "change" and state in LIVE_RISK_STATES:
        # Decision points (authorize, scheduled) store the risk as the graph and the calendar are now;
        # leaving the open states (review, canceled) freezes it as it was when the work was done.
        _set_risk(ticket, ticket.ci_ids)
        db.session.flush()
    return ticket


def _set_clocks(ticket: Ticket, values: dict) -> None:
    for key, value in values.items():
        setattr(ticket, key, value)


def _kind_label(ticket: Ticket) -> str:
    return f"{ticket.change_type} change" if ticket.kind == "change" and ticket.change_type else ticket.kind


def _check_needs(ticket: Ticket, move: workflow.Move, body: dict, note: str | None, values: dict) -> None:
    errors: dict[str, list[str]] = {}
    for need in move.needs:
        if need == "note" and not note:
            errors["note"] = [f"Moving to {move.to} needs a note saying why."]
        elif need == "resolution_code" and not body.get("resolution_code"):
            errors["resolution_code"] = [f"Choose one of {', '.join(workflow.RESOLUTION_CODES)}."]
        elif need == "outcome":
            outcome = body.get("outcome") or ticket.outcome
            if not outcome:
                errors["outcome"] = ["Say how the implementation went: successful, failed or backed_out."]
            values["outcome"] = outcome
        elif need == "workaround":
            workaround = body.get("workaround") or ticket.workaround
            if not workaround:
                errors["workaround"] = ["A known error needs its workaround."]
            values["workaround"] = workaround
        elif need == "window":
            if ticket.planned_start is None:
                errors["planned_start"] = ["Plan the window first (planned_start)."]
            if ticket.planned_end is None:
                errors["planned_end"] = ["Plan the window first (planned_end)."]
            elif ticket.planned_start is not None and ticket.planned_end <= ticket.planned_start:
                errors["planned_end"] = ["The window must end after it starts."]
    if errors:
        raise Invalid(f"Moving {ticket.number} to {move.to} needs more.", errors=errors)
    if "approvals" in move.needs and ticket.change_type not in APPROVAL_FREE_TYPES:
        approved, required = approval_count(ticket), required_approvals()
        if approved < required:
            raise Conflict(
                f"{ticket.number} has {approved} of the {required} approvals it needs to be scheduled.",
                approvals=approved,
                required=required,
            )
    if "approved_after_the_fact" in move.needs and ticket.change_type == "emergency":
        approved, required = approval_count(ticket), required_approvals()
        if approved < required:
            raise Conflict(
                f"{ticket.number} is an emergency change implemented without approval: it is closed once "
                f"approved after the fact ({approved} of {required} approvals).",
                approvals=approved,
                required=required,
            )
    if "in_window" in move.needs and ticket.change_type != "emergency":
        now = utcnow()
        if ticket.planned_start is not None and now < ticket.planned_start:
            raise Conflict(
                f"The window of {ticket.number} opens at {ticket.planned_start.isoformat()}; it is implemented "
                "inside its window (or as an emergency change).",
                planned_start=ticket.planned_start.isoformat(),
                planned_end=ticket.planned_end.isoformat() if ticket.planned_end else None,
            )
        if ticket.planned_end is not None and now >= ticket.planned_end:
            raise Conflict(
                f"The window of {ticket.number} closed at {ticket.planned_end.isoformat()}; move it back to assess "
                "and plan a new window.",
                planned_start=ticket.planned_start.isoformat() if ticket.planned_start else None,
                planned_end=ticket.planned_end.isoformat(),
            )
    if "no_blackout" in move.needs:
        clashes = blackouts_overlapping(ticket.planned_start, ticket.planned_end)
        if clashes:
            names = ", ".join(
                f"{b['name']} ({b['starts_at']:%Y-%m-%d %H:%M}–{b['ends_at']:%Y-%m-%d %H:%M})" for b in clashes
            )
            raise Conflict(
                f"The window of {ticket.number} meets a blackout: {names}.",
                blackouts=[
                    {**b, "starts_at": b["starts_at"].isoformat(), "ends_at": b["ends_at"].isoformat()} for b in clashes
                ],
            )


def _resolve_linked(parent: Ticket, note: str | None, code: str | None, user: User | None) -> list[int]:
    """Resolve the open incidents linked to ``parent`` along with it: for a problem, the incidents
    ``caused_by`` it; for an incident (a major incident), its duplicates (``duplicate_of`` it) and the
    incidents ``caused_by`` it. Each is resolved by its own transition (its change-log entry, its
    requester's notification) with the parent's resolution note. Returns their ids."""
    types = ("caused_by",) if parent.kind == "problem" else ("caused_by", "duplicate_of")
    links = db.session.execute(
        select(TicketLink.source_id, TicketLink.type)
        .where(TicketLink.target_id == parent.id, TicketLink.type.in_(types))
        .order_by(TicketLink.id)
    ).all()
    link_type = {}
    for source_id, type_ in links:
        link_type.setdefault(source_id, type_)
    if not link_type:
        return []
    incidents = db.session.scalars(
        select(Ticket)
        .where(Ticket.id.in_(list(link_type)), Ticket.kind == "incident")
        .order_by(Ticket.id)
        .with_for_update(of=Ticket)
    )
    resolved = []
    for incident in incidents:
        if workflow.find_move("incident", incident.state, "resolved") is None:
            continue
        if parent.kind == "problem":
            body = {"note": f"Resolved with problem {parent.number}: {note}", "resolution_code": "problem_resolved"}
        elif link_type[incident.id] == "duplicate_of":
            body = {"note": f"Resolved as a duplicate of {parent.number}: {note}", "resolution_code": "duplicate"}
        else:
            body = {"note": f"Resolved with {parent.number}: {note}", "resolution_code": code or "fixed"}
        transition(incident, "resolved", body, user, system=True)
        resolved.append(incident.id)
    return resolved


# ---------------------------------------------------------------------------------------------
# Comments, CIs, links, watchers


def add_comment(ticket: Ticket, body: str, internal: bool, user: User | None) -> TicketComment:
    """A public comment or an internal work note; closed tickets take none (409)."""
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; it takes no more comments.")
    if internal and user is not None and user.role == REQUESTER:
        raise Forbidden("Requesters write public comments only.")
    comment = TicketComment(
        ticket_id=ticket.id,
        author_id=user.id if user else None,
        author_label=user.email if user else "system",
        body=body,
        internal=internal,
    )
    db.session.add(comment)
    db.session.flush()
    kind = "work note" if internal else "comment"
    record(
        db.session,
        ticket,
        "comment",
        {"comment_id": [None, comment.id], "internal": [None, internal], "body": [None, body[:2000]]},
        f"{ticket.number}: {kind} by {comment.author_label}"[:300],
    )
    return comment


def add_ci(ticket: Ticket, ci_id: int, viewer: User | None) -> TicketCI:
    """Link a CI to the ticket (422 for an unknown CI, 409 when already linked)."""
    errors: dict = {}
    _check_cis([ci_id], viewer, errors)
    if errors:
        raise Invalid("Unknown CI.", errors={"ci_id": errors["ci_ids"]})
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; its CIs can't change.")
    link = db.session.scalar(select(TicketCI).where(TicketCI.ticket_id == ticket.id, TicketCI.ci_id == ci_id))
    if link is not None and link.removed_at is None:
        raise Conflict(f"CI {ci_id} is already on {ticket.number}.")
    active = db.session.scalar(
        select(func.count()).where(TicketCI.ticket_id == ticket.id, TicketCI.removed_at.is_(None))
    )
    if active >= MAX_CIS_PER_TICKET:
        raise Conflict(f"{ticket.number} has {MAX_CIS_PER_TICKET} CIs already.")
    if link is None:
        link = TicketCI(ticket=ticket, ci_id=ci_id)
        db.session.add(link)
    else:
        link.removed_at = None
    db.session.flush()
    db.session.expire(ticket, ["ci_links"])
    refresh_risk(ticket)
    return link


def remove_ci(ticket: Ticket, ci_id: int) -> None:
    """Unlink a CI; the link row stays with ``removed_at`` so both moves are in the history."""
    link = db.session.scalar(
        select(TicketCI).where(TicketCI.ticket_id == ticket.id, TicketCI.ci_id == ci_id, TicketCI.removed_at.is_(None))
    )
    if link is None:
        raise NotFound(f"CI {ci_id} is not on {ticket.number}.")
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; its CIs can't change.")
    link.removed_at = utcnow()
    db.session.flush()
    db.session.expire(ticket, ["ci_links"])
    refresh_risk(ticket)


LINK_RULES = {
    # type: (kinds allowed as source, kinds allowed as target)
    "caused_by": (("incident", "request", "problem"), ("problem", "change", "incident")),
    "duplicate_of": (None, None),
    "related": (None, None),
    "fixes": (("change",), ("problem", "incident")),
}


def add_link(ticket: Ticket, target_id: int, link_type: str, viewer: User | None) -> TicketLink:
    """``ticket`` <type> ``target``: INC caused_by PRB, CHG fixes PRB, INC duplicate_of INC."""
    target = db.session.get(Ticket, target_id) if 0 < target_id <= MAX_ID else None
    if not can_see_ticket(viewer, target):
        raise Invalid("Unknown ticket.", errors={"ticket_id": [f"No ticket with id {target_id}."]})
    if target.id == ticket.id:
        raise Invalid("A ticket can't link to itself.", errors={"ticket_id": ["Pick another ticket."]})
    sources, targets = LINK_RULES[link_type]
    if sources is not None and ticket.kind not in sources:
        raise Invalid(
            f"A {ticket.kind} can't be {link_type} another ticket.",
            errors={"type": [f"{link_type} links start from a {' or '.join(sources)}."]},
        )
    if targets is not None and target.kind not in targets:
        raise Invalid(
            f"{link_type} can't point at a {target.kind}.",
            errors={"ticket_id": [f"{link_type} points at a {' or '.join(targets)}."]},
        )
    if link_type == "duplicate_of" and target.kind != ticket.kind:
        raise Invalid(
            "Duplicates are of the same kind.", errors={"ticket_id": [f"{target.number} is a {target.kind}."]}
        )
    exists = db.session.scalar(
        select(TicketLink.id).where(
            TicketLink.source_id == ticket.id, TicketLink.target_id == target.id, TicketLink.type == link_type
        )
    )
    if exists is not None:
        raise Conflict(f"{ticket.number} is already {link_type} {target.number}.", conflicting_id=exists)
    link = TicketLink(source=ticket, target=target, type=link_type)
    db.session.add(link)
    db.session.flush()
    return link


def remove_link(ticket: Ticket, link_id: int) -> None:
    link = db.session.get(TicketLink, link_id) if 0 < link_id <= MAX_ID else None
    if link is None or ticket.id not in (link.source_id, link.target_id):
        raise NotFound(f"No link with id {link_id} on {ticket.number}.")
    db.session.delete(link)
    db.session.flush()


def add_watcher(ticket: Ticket, user_id: int) -> TicketWatcher:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise Invalid("Unknown user.", errors={"user_id": [f"No user with id {user_id}."]})
    if user.role == REQUESTER and user.id != ticket.requester_id:
        raise Invalid(
            "That user can't see this ticket.", errors={"user_id": ["Requesters watch their own tickets only."]}
        )
    if db.session.scalar(
        select(TicketWatcher.id).where(TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id == user_id)
    ):
        raise Conflict(f"User {user_id} already watches {ticket.number}.")
    watcher = TicketWatcher(ticket_id=ticket.id, user_id=user_id)
    db.session.add(watcher)
    db.session.flush()
    return watcher


def remove_watcher(ticket: Ticket, user_id: int) -> None:
    watcher = db.session.scalar(
        select(TicketWatcher).where(TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id == user_id)
    )
    if watcher is None:
        raise NotFound(f"User {user_id} does not watch {ticket.number}.")
    db.session.delete(watcher)
    db.session.flush()


# ---------------------------------------------------------------------------------------------
# Attachments


def add_attachment(
    ticket: Ticket, filename: str, declared_type: str | None, data: bytes, user: User | None
) -> TicketAttachment:
    """Store the bytes under the instance path and the row in the database; the type is what the
    bytes are. The file is removed again when the row can't be written or the unit of work rolls back."""
    if not data:
        raise Invalid("The file is empty.", errors={"file": ["Send a non-empty file."]})
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; it takes no more attachments.")
    key, digest = attachments.save(data)
    try:
        attachment = TicketAttachment(
            ticket=ticket,
            filename=_clean_filename(filename),
            content_type=attachments.stored_type(data, declared_type),
            declared_content_type=(declared_type or None) and declared_type[:100],
            size=len(data),
            sha256=digest,
            storage_key=key,
            uploaded_by_id=user.id if user else None,
        )
        db.session.add(attachment)
        db.session.flush()
    except Exception:
        attachments.discard(key)
        raise
    on_rollback(attachments.discard, key)
    return attachment


def _clean_filename(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    return (name or "attachment")[:255]


# ---------------------------------------------------------------------------------------------
# Standard change templates


def change_templates(active: bool | None = None) -> Select:
    stmt = select(ChangeTemplate).order_by(ChangeTemplate.name, ChangeTemplate.id)
    if active is not None:
        stmt = stmt.where(ChangeTemplate.active.is_(active))
    return stmt


def get_change_template(template_id: int) -> ChangeTemplate:
    template = db.session.get(ChangeTemplate, template_id) if 0 < template_id <= MAX_ID else None
    if template is None:
        raise NotFound(f"No change template with id {template_id}.")
    return template


def save_change_template(data: dict[str, Any], template: ChangeTemplate | None = None) -> ChangeTemplate:
    """Create a standard change template (``template`` None) or change one; a name is unique (409)
    and the default CIs must exist (422)."""
    data = dict(data)
    if "ci_ids" in data:
        data["ci_ids"] = list(dict.fromkeys(data["ci_ids"] or []))
        errors: dict = {}
        _check_cis(data["ci_ids"], None, errors)
        if errors:
            raise Invalid("Unknown CI.", errors=errors)
    name = data.get("name")
    if name is not None and (template is None or name != template.name):
        clash = db.session.scalar(select(ChangeTemplate.id).where(ChangeTemplate.name == name))
        if clash is not None:
            raise Conflict(f"A change template is named {name!r} already.", conflicting_id=clash)
    if template is None:
        template = ChangeTemplate(**{"description": "", "ci_ids": [], "active": True, **data})
        db.session.add(template)
    else:
        for key, value in data.items():
            setattr(template, key, value)
    db.session.flush()
    return template


# ---------------------------------------------------------------------------------------------
# Approvals and blackouts


def required_approvals() -> int:
    return int(setting("CAIRN_CHANGE_APPROVALS_REQUIRED", 1))


# Standard changes are pre-approved (their template was); emergency changes are approved after the fact.
APPROVAL_FREE_TYPES = ("standard", "emergency")
# Where approvals are taken: in authorize; an emergency change until it is closed.
EMERGENCY_APPROVAL_STATES = ("authorize", "scheduled", "implement", "review")


def approval_count(ticket: Ticket) -> int:
    """Approvals in the change's current round."""
    return db.session.scalar(
        select(func.count()).where(
            TicketApproval.ticket_id == ticket.id,
            TicketApproval.round == ticket.approval_round,
            TicketApproval.decision == "approve",
        )
    )


def separation_of_duties() -> bool:
    return bool(setting("CAIRN_CHANGE_SEPARATION_OF_DUTIES", True))


def implementers(ticket: Ticket) -> set[int]:
    """Who implements a change: its assignee, and whoever moved it to implement."""
    people = {ticket.assignee_id} if ticket.assignee_id else set()
    rows = db.session.execute(
        select(ChangeLog.actor_id, ChangeLog.changes).where(
            ChangeLog.object_type == "ticket",
            ChangeLog.object_id == ticket.id,
            ChangeLog.action == "transition",
            ChangeLog.actor_id.is_not(None),
        )
    )
    people |= {actor for actor, changes in rows if (changes or {}).get("state", [None, None])[1] == "implement"}
    return people


def approval_pending_after_the_fact(ticket: Ticket) -> bool:
    """An emergency change that went ahead without the approvals it still needs."""
    if ticket.kind != "change" or ticket.change_type != "emergency" or ticket.state not in ("implement", "review"):
        return False
    return approval_count(ticket) < required_approvals()


def approval_refusal(ticket: Ticket, user: User) -> DomainError | None:
    """Why ``user`` may not decide on ``ticket`` now, as the error ``decide_approval`` raises (409 not a
    change waiting for approvals, or decided already this round; 403 separation of duties), or None
    when it may. Pages ask it to offer the approval form only to those who may use it."""
    if ticket.kind != "change":
        return Conflict(f"{ticket.number} is a {ticket.kind}; only changes take approvals.")
    if ticket.change_type == "standard":
        return Conflict(f"{ticket.number} is a standard change: its template is its approval.")
    states = EMERGENCY_APPROVAL_STATES if ticket.change_type == "emergency" else ("authorize",)
    if ticket.state not in states:
        where = "until it is closed" if ticket.change_type == "emergency" else "in authorize"
        return Conflict(f"{ticket.number} is {ticket.state}; approvals are given {where}.")
    if separation_of_duties():
        if user.id == ticket.requester_id:
            return Forbidden(f"You requested {ticket.number}; someone else approves it (separation of duties).")
        if user.id in implementers(ticket):
            return Forbidden(f"You implement {ticket.number}; someone else approves it (separation of duties).")
    already = db.session.scalar(
        select(TicketApproval.id).where(
            TicketApproval.ticket_id == ticket.id,
            TicketApproval.round == ticket.approval_round,
            TicketApproval.approver_id == user.id,
        )
    )
    if already is not None:
        return Conflict(f"You decided on {ticket.number} in this round already.", conflicting_id=already)
    return None


def decide_approval(ticket: Ticket, decision: str, comment: str, user: User) -> TicketApproval:
    """A change manager approves or rejects a change waiting in ``authorize`` (an emergency change
    also after the fact, until it is closed). A rejection of a change not yet implemented sends it
    back to ``assess``; every rejection starts a new approval round.

    Separation of duties (CAIRN_CHANGE_SEPARATION_OF_DUTIES, on by default): whoever requested the
    change or implements it (its assignee, whoever moved it to implement) can't approve it: 403."""
    refusal = approval_refusal(ticket, user)
    if refusal is not None:
        raise refusal
    approval = TicketApproval(
        ticket_id=ticket.id, approver_id=user.id, round=ticket.approval_round, decision=decision, comment=comment
    )
    db.session.add(approval)
    db.session.flush()
    if decision == "reject":
        if ticket.state in ("authorize", "scheduled"):
            transition(ticket, "assess", {"note": f"Rejected by {user.email}: {comment}"}, user, system=True)
        ticket.approval_round += 1
        db.session.flush()
    return approval


def _configured_blackouts() -> list[dict]:
    out = []
    for i, item in enumerate(setting("CAIRN_CHANGE_BLACKOUTS", [])):
        starts, ends = item["start"], item["end"]
        if isinstance(starts, str):
            starts, ends = datetime.fromisoformat(starts), datetime.fromisoformat(ends)
        out.append({"id": None, "key": f"config-{i}", "name": item.get("name", f"blackout {i + 1}"),
                    "starts_at": _aware(starts), "ends_at": _aware(ends)})  # fmt: skip
    return out


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def blackouts_overlapping(start: datetime | None, end: datetime | None) -> list[dict]:
    """Blackouts (API and CAIRN_CHANGE_BLACKOUTS) that share time with [start, end)."""
    if start is None or end is None:
        return []
    rows = db.session.scalars(
        select(BlackoutWindow)
        .where(BlackoutWindow.starts_at < end, BlackoutWindow.ends_at > start)
        .order_by(BlackoutWindow.starts_at)
    )
    found = [{"id": b.id, "name": b.name, "starts_at": b.starts_at, "ends_at": b.ends_at} for b in rows]
    found += [
        {k: b[k] for k in ("id", "name", "starts_at", "ends_at")}
        for b in _configured_blackouts()
        if b["starts_at"] < end and b["ends_at"] > start
    ]
    return found


def delete_blackout(blackout: BlackoutWindow) -> None:
    db.session.delete(blackout)
    db.session.flush()


def create_blackout(data: dict) -> BlackoutWindow:
    if data["ends_at"] <= data["starts_at"]:
        raise Invalid("A blackout must end after it starts.", errors={"ends_at": ["Must be after starts_at."]})
    blackout = BlackoutWindow(**data)
    db.session.add(blackout)
    db.session.flush()
    return blackout


# ---------------------------------------------------------------------------------------------
# SLA breaches


def mark_sla_breaches(now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Flag open tickets without an SLA policy past their response or resolution due time (on-hold
    ones are paused) and record each as a ticket update with the breach named: that is the event
    webhooks pick up."""
    now = now or utcnow()
    t = Ticket
    late_response = and_(t.acknowledged_at.is_(None), t.response_due < now)
    late_resolution = and_(t.on_hold_since.is_(None), t.actual_end.is_(None), t.resolution_due < now)
    rows = db.session.scalars(
        select(t)
        .where(
            t.sla_breached.is_(False),
            t.sla_policy_id.is_(None),  # business-hours clocks: tickets.slas.scan
            t.state.not_in(workflow.DONE_STATES),
            or_(late_response, late_resolution),
        )
        .order_by(t.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Ticket)
    )
    marked = []
    for ticket in rows:
        which = "response" if ticket.acknowledged_at is None and ticket.response_due < now else "resolution"
        _write_as(
            ticket,
            "update",
            {"sla_breached": True, "sla_breached_at": now},
            f"{ticket.number} breached its {which} SLA",
            {"sla_breach": [None, which]},
        )
        marked.append(ticket.id)
    return marked
