"""Tickets over the dependency graph: a change's blast radius, collisions between changes, probable
causes of an incident storm, and the open tickets shown on an impact answer. The graph itself is
the relations package's; this module only asks it questions."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from cairn.auth.models import User
from cairn.auth.policy import hidden, restricted
from cairn.config import setting
from cairn.db import db, id_in, utcnow
from cmdb.models import ConfigurationItem
from cmdb.services import visible_ci_ids
from tickets import workflow
from tickets.models import Ticket, TicketCI
from tickets.services import visible_ticket_ids

DEFAULT_PROBABLE_CAUSE_HOURS = 24


def blast_radius(ci_ids, *, as_of: datetime | None = None, max_depth: int | None = None):
    """relations' ImpactResult for the CIs failing together."""
    from relations.services import impact

    return impact(list(ci_ids), max_depth=max_depth, as_of=as_of)


def reach(ci_ids) -> set[int]:
    """The CIs themselves and everything they impact."""
    ci_ids = set(ci_ids)
    if not ci_ids:
        return set()
    return ci_ids | {item.ci_id for item in blast_radius(ci_ids).impacted}


def impact_of_ticket(
    ticket: Ticket,
    *,
    as_of: datetime | None = None,
    max_depth: int | None = None,
    viewer: User | None = None,
    summary: bool = False,
    page: int | None = None,
    page_size: int | None = None,
) -> dict:
    """The blast radius of all of a ticket's CIs, as POST /impact answers it for those CIs (with the
    open tickets on the impacted CIs, which the registered enricher adds), and ``ticket_id``, as
    ``viewer`` may see it: the whole list, ``page`` of ``page_size`` items or the ``summary``
    (relations.services.impact_answer). A ticket without CIs has an answer with nothing impacted.
    The body may hold ``orjson.Fragment`` values: write it with orjson."""
    from relations.services import impact_answer

    body = impact_answer(
        ticket.ci_ids, single_root=False, viewer=viewer, summary=summary, page=page, page_size=page_size,
        allow_no_roots=True, as_of=as_of, max_depth=max_depth,
    )  # fmt: skip
    body["ticket_id"] = ticket.id
    return body


def open_tickets_on(ci_ids, *, exclude_ticket_id: int | None = None) -> list[dict]:
    """Open tickets linked to any of the CIs, each with the CIs (of those) it touches; P1 first."""

    stmt = (
        select(Ticket.id, Ticket.number, Ticket.kind, Ticket.state, Ticket.priority, Ticket.title, TicketCI.ci_id)
        .join(TicketCI, TicketCI.ticket_id == Ticket.id)
        .where(
            TicketCI.removed_at.is_(None),
            Ticket.state.not_in(workflow.DONE_STATES),
            Ticket.id != (exclude_ticket_id or 0),
        )
    )
    # P1 first, then by ticket, each ticket's CIs by id (an answer may name 40,000 CIs: id_in binds
    # them as one parameter).
    wanted = ci_ids if isinstance(ci_ids, (set, frozenset)) else set(ci_ids)
    rows = sorted(
        db.session.execute(stmt.where(id_in(TicketCI.ci_id, wanted))),
        key=lambda row: (row.priority, row.id, row.ci_id),
    )
    tickets: dict[int, dict] = {}
    for ticket_id, number, kind, state, priority, title, ci_id in rows:
        entry = tickets.setdefault(
            ticket_id,
            {"id": ticket_id, "number": number, "kind": kind, "state": state, "priority": priority, "title": title,
             "ci_ids": []},
        )  # fmt: skip
        entry["ci_ids"].append(ci_id)
    return list(tickets.values())


def open_tickets_enricher(result, viewer: User | None = None) -> dict:
    """Registered with relations: every impact answer names the open tickets on its CIs, those
    ``viewer`` may see (each with the CIs of those it may see); the others are only counted."""

    found = open_tickets_on(result.ci_ids())
    if not restricted(viewer):
        return {"open_tickets": found, "hidden_open_tickets": 0}
    tickets = visible_ticket_ids(viewer, [t["id"] for t in found])
    cis = visible_ci_ids(viewer, {ci_id for t in found for ci_id in t["ci_ids"]})
    shown = [{**t, "ci_ids": [c for c in t["ci_ids"] if c in cis]} for t in found if t["id"] in tickets]
    return {"open_tickets": shown, "hidden_open_tickets": len(found) - len(shown)}


# ---------------------------------------------------------------------------------------------
# Change collisions


def conflicts(ticket: Ticket, ci_ids=None, *, radius=None) -> list[dict]:
    """Other open changes whose window overlaps this one's and whose CIs or blast radius meet this
    one's anywhere in the graph: ``[{ticket, overlap: {start, end}, shared_ci_ids, direct_ci_ids}]``."""
    if ticket.kind != "change" or ticket.planned_start is None or ticket.planned_end is None:
        return []
    ci_ids = set(ticket.ci_ids if ci_ids is None else ci_ids)
    if not ci_ids:
        return []
    if radius is None:
        radius = blast_radius(ci_ids)
    mine = ci_ids | {item.ci_id for item in radius.impacted}
    others = list(
        db.session.scalars(
            select(Ticket)
            .where(
                Ticket.kind == "change",
                Ticket.id != (ticket.id or 0),
                Ticket.state.not_in(workflow.CLOSED_STATES + ("review",)),
                Ticket.planned_start < ticket.planned_end,
                Ticket.planned_end > ticket.planned_start,
            )
            .order_by(Ticket.planned_start, Ticket.id)
        )
    )
    if not others:
        return []
    cis_of: dict[int, set[int]] = defaultdict(set)
    for ticket_id, ci_id in db.session.execute(
        select(TicketCI.ticket_id, TicketCI.ci_id).where(
            TicketCI.ticket_id.in_([o.id for o in others]), TicketCI.removed_at.is_(None)
        )
    ):
        cis_of[ticket_id].add(ci_id)
    found = []
    for other in others:
        theirs = cis_of.get(other.id)
        if not theirs:
            continue
        shared = mine & reach(theirs)
        if not shared:
            continue
        found.append(
            {
                "ticket": other,
                "overlap": {
                    "start": max(ticket.planned_start, other.planned_start),
                    "end": min(ticket.planned_end, other.planned_end),
                },
                "shared_ci_ids": sorted(shared),
                "direct_ci_ids": sorted(ci_ids & theirs),
            }
        )
    return found


def conflicts_shown(ticket: Ticket, viewer: User | None) -> list[dict]:
    """``conflicts`` as ``viewer`` may see them: a colliding change it may not see is
    ``{id: null, visible: false}`` without its window, and CI ids it may not see are left out."""
    found = conflicts(ticket)
    if not restricted(viewer):
        return found

    tickets = visible_ticket_ids(viewer, [item["ticket"].id for item in found])
    shared = {c for item in found for c in (*item["shared_ci_ids"], *item["direct_ci_ids"])}
    cis = visible_ci_ids(viewer, shared)
    shown = []
    for item in found:
        item = {**item, **{key: [c for c in item[key] if c in cis] for key in ("shared_ci_ids", "direct_ci_ids")}}
        if item["ticket"].id not in tickets:
            item.update(ticket=hidden(), overlap=None)
        shown.append(item)
    return shown


# ---------------------------------------------------------------------------------------------
# Probable causes


def upstream_of(ci_id: int, max_depth: int | None = None) -> dict[int, int]:
    """The CI and everything it depends on, each with its distance in hops (the CI itself: 0)."""
    from relations.services import dependencies

    upstream = {item.ci_id: item.depth for item in dependencies([ci_id], max_depth=max_depth).impacted}
    upstream[ci_id] = 0
    return upstream


def common_causes(cis_of: dict, upstream=upstream_of) -> dict[int, dict]:
    """For sets of failing CIs (``{key: {ci ids}}``: an incident's CIs, or one alerting CI each), the
    CIs that explain them: candidate -> {key: distance from that key's nearest CI}, ranked (the dict's
    order) by how many keys a candidate explains, then how close it is on average, then id. A CI
    explains a key when it is one of its CIs or upstream of one (``upstream(ci) -> {ci: hops}``)."""
    explains: dict[int, dict] = defaultdict(dict)
    upstream_cache: dict[int, dict[int, int]] = {}
    for key, ci_ids in cis_of.items():
        for ci_id in ci_ids:
            if ci_id not in upstream_cache:
                upstream_cache[ci_id] = upstream(ci_id)
            for candidate, depth in upstream_cache[ci_id].items():
                known = explains[candidate].get(key)
                if known is None or depth < known:
                    explains[candidate][key] = depth
    ranked = sorted(explains, key=lambda c: (-len(explains[c]), sum(explains[c].values()) / len(explains[c]), c))
    return {c: explains[c] for c in ranked}


def probable_causes(incident: Ticket, *, hours: int | None = None, limit: int = 10, now: datetime | None = None):
    """Among the open incidents of the last ``hours``, the CIs upstream of the most incident CIs,
    ranked: each explains the incidents whose CIs are it or depend on it. Only candidates that
    explain ``incident`` are returned; a closer common dependency ranks above a farther one."""
    now = now or utcnow()
    hours = hours or int(setting("CAIRN_PROBABLE_CAUSE_HOURS", DEFAULT_PROBABLE_CAUSE_HOURS))
    since = now - timedelta(hours=hours)
    rows = db.session.execute(
        select(Ticket.id, Ticket.number, Ticket.title, Ticket.priority, TicketCI.ci_id)
        .join(TicketCI, TicketCI.ticket_id == Ticket.id)
        .where(
            TicketCI.removed_at.is_(None),
            Ticket.kind == "incident",
            Ticket.state.not_in(workflow.DONE_STATES),
            (Ticket.created_at >= since) | (Ticket.id == incident.id),
        )
    ).all()
    incidents: dict[int, dict] = {}
    cis_of: dict[int, set[int]] = defaultdict(set)
    for ticket_id, number, title, priority, ci_id in rows:
        incidents[ticket_id] = {"id": ticket_id, "number": number, "title": title, "priority": priority}
        cis_of[ticket_id].add(ci_id)
    if incident.id not in cis_of:
        return {"window_hours": hours, "open_incidents": len(incidents), "causes": []}
    explains = common_causes(cis_of)
    candidates = [c for c, explained in explains.items() if incident.id in explained][:limit]
    cis = {
        ci.id: ci
        for ci in db.session.scalars(select(ConfigurationItem).where(ConfigurationItem.id.in_(candidates or [0])))
    }
    out = []
    for candidate in candidates:
        ci = cis.get(candidate)
        explained = explains[candidate]
        out.append(
            {
                "ci": {
                    "id": candidate,
                    "name": ci.name if ci else None,
                    "ci_class": ci.ci_class if ci else None,
                    "criticality": ci.criticality if ci else None,
                },
                "incident_count": len(explained),
                "mean_distance": round(sum(explained.values()) / len(explained), 2),
                "incidents": [
                    {**incidents[i], "distance": explained[i]}
                    for i in sorted(explained, key=lambda i: (explained[i], i))
                ],
            }
        )
    return {"window_hours": hours, "open_incidents": len(incidents), "causes": out}


def causes_shown(answer: dict, viewer: User | None) -> dict:
    """``probable_causes``' answer as ``viewer`` may see it: a CI or an incident it may not see is
    ``{id: null, visible: false}`` (an incident keeps its distance)."""
    if not restricted(viewer):
        return answer
    causes = answer["causes"]
    cis = visible_ci_ids(viewer, [cause["ci"]["id"] for cause in causes])
    tickets = visible_ticket_ids(viewer, {i["id"] for cause in causes for i in cause["incidents"]})
    shown = []
    for cause in causes:
        incidents = [i if i["id"] in tickets else {**hidden(), "distance": i["distance"]} for i in cause["incidents"]]
        ci = cause["ci"] if cause["ci"]["id"] in cis else hidden()
        shown.append({**cause, "ci": ci, "incidents": incidents})
    return {**answer, "causes": shown}


def install() -> None:
    """Event pipeline: impact answers over HTTP carry the open tickets on the impacted CIs."""
    from relations.services import register_impact_enricher

    register_impact_enricher(open_tickets_enricher)
