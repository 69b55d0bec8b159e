"""The incident of a correlation group and its life cycle, and maintenance windows.

A group whose alerts are all resolved gets a note on its incident and (setting) the incident
resolves. An alert re-firing within the flap window of its group's resolution reopens the group once
(the incident goes back to in progress) and counts as flapping: a group with a flapping alert waits
for it to stay resolved for the flap window (the periodic ``settle``). An alert on a CI inside the
window of a change being implemented (scheduled or implement, in its planned window), or in that
change's blast radius, is suppressed into the change instead.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from cairn.db import db, id_in, utcnow
from cmdb.models import ConfigurationItem
from integrations.events import settings
from integrations.events.correlation import GroupState, Member
from integrations.events.models import EventGroup, MonitoringEvent, lock_correlation
from tickets import services as tickets
from tickets import workflow
from tickets.graph import reach
from tickets.models import Ticket, TicketCI

SEVERITY_URGENCY = {"critical": 1, "disaster": 1, "emergency": 1, "page": 1, "error": 2, "major": 2, "high": 2}
CRITICALITY_IMPACT = {"critical": 1, "high": 1, "medium": 2, "low": 3}
CHANGE_WINDOW_STATES = ("scheduled", "implement")

# ---------------------------------------------------------------------------------------------
# The incident of a group


def _business_services(root_id: int) -> list[ConfigurationItem]:
    from relations.services import impact

    ids = impact([root_id]).business_services
    if not ids:
        return []
    return list(db.session.scalars(select(ConfigurationItem).where(ConfigurationItem.id.in_(ids[:200]))))


def _priority(root: ConfigurationItem, services: list[ConfigurationItem], severities: set[str]) -> tuple[int, int]:
    """(impact, urgency): impact from the most critical business service affected (the root's own
    criticality when none is), urgency from the most severe alert."""
    criticalities = [s.criticality for s in services] or [root.criticality]
    impact = min(CRITICALITY_IMPACT.get(c, 2) for c in criticalities)
    urgency = min((SEVERITY_URGENCY.get(s, 3) for s in severities), default=3)
    return impact, urgency


def write_incident(state: GroupState, hops: int) -> None:
    """Open the group's incident, or bring it up to date (root moved, priority rose)."""
    group = state.group
    root = db.session.get(ConfigurationItem, group.root_ci_id)
    known = group.reasoning.get("business_services")
    if known is not None and state.started_root == root.id:
        services = list(
            db.session.scalars(select(ConfigurationItem).where(id_in(ConfigurationItem.id, {s["id"] for s in known})))
        )
    else:
        services = _business_services(root.id)
    severities = set(
        db.session.scalars(select(MonitoringEvent.severity).where(MonitoringEvent.group_id == group.id).distinct())
    )
    impact, urgency = _priority(root, services, severities)
    group.reasoning = {**group.reasoning, "business_services": [{"id": s.id, "name": s.name} for s in services]}
    alerts = len(state.members)
    if group.ticket_id is None:
        names = ", ".join(s.name for s in services[:10]) or "none found in the dependency graph"
        ticket = tickets.create_ticket(
            {
                "kind": "incident",
                "title": f"{root.name}: {alerts} alert{'s' if alerts != 1 else ''} correlated"[:200],
                "description": (
                    f"Opened from monitoring alerts correlated through the dependency graph.\n\n"
                    f"Root cause: {root.name}. {group.reasoning.get('text', '')}\n"
                    f"Business services affected: {names}\n"
                ),
                "impact": impact,
                "urgency": urgency,
                "ci_ids": [root.id],
            },
            None,
        )
        group.ticket_id = ticket.id
    else:
        ticket = db.session.get(Ticket, group.ticket_id)
        if ticket is None or ticket.state in workflow.CLOSED_STATES:
            return
        if state.started_root is not None and state.started_root != root.id:
            _move_root(ticket, state.started_root, root, group)
        if impact < ticket.impact or urgency < ticket.urgency:
            tickets.update_ticket(
                ticket, {"impact": min(impact, ticket.impact), "urgency": min(urgency, ticket.urgency)}, None
            )
    for merged_ticket_id in state.merged_tickets:
        _close_merged(merged_ticket_id, ticket)
    m = MonitoringEvent
    db.session.execute(
        update(m)
        .where(m.group_id == group.id, or_(m.ticket_id.is_(None), m.ticket_id != group.ticket_id))
        .values(ticket_id=group.ticket_id)
    )
    firing = sum(1 for m in state.members.values() if m.status == "firing")
    group.alert_count, group.firing_count = alerts, firing


def _move_root(ticket: Ticket, previous: int, root: ConfigurationItem, group: EventGroup) -> None:
    linked = set(db.session.scalars(
        select(TicketCI.ci_id).where(TicketCI.ticket_id == ticket.id, TicketCI.removed_at.is_(None))
    ))  # fmt: skip
    if root.id not in linked:
        tickets.add_ci(ticket, root.id, None)
    if previous in linked and previous != root.id:
        tickets.remove_ci(ticket, previous)
    old = db.session.get(ConfigurationItem, previous)
    tickets.update_ticket(ticket, {"title": f"{root.name}: alerts correlated"[:200]}, None)
    tickets.add_comment(
        ticket,
        f"Root cause moved from {old.name if old else previous} to {root.name}: {group.reasoning.get('text', '')}",
        True,
        None,
    )


def _close_merged(ticket_id: int | None, into: Ticket) -> None:
    merged = db.session.get(Ticket, ticket_id) if ticket_id else None
    if merged is None or merged.id == into.id or merged.state in workflow.DONE_STATES:
        return
    tickets.add_link(merged, into.id, "duplicate_of", None)
    tickets.transition(
        merged, "resolved",
        {"note": f"Its alerts share a root cause with {into.number}: see there.", "resolution_code": "duplicate"},
        None, system=True,
    )  # fmt: skip


def evaluate(state: GroupState, now: datetime, flap: timedelta) -> bool:
    """Resolve the group (note; incident resolved when CAIRN_EVENTS_AUTO_RESOLVE) when every alert
    is resolved and no flapping one resolved less than the flap window ago. True when resolved."""
    group = state.group
    members = state.members.values()
    if not members or any(m.status == "firing" for m in members):
        return False
    if any(m.flap_count >= 2 and now - m.last_change_at < flap for m in members):
        return False
    group.state, group.open_root, group.resolved_at, group.firing_count = "resolved", None, now, 0
    ticket = db.session.get(Ticket, group.ticket_id) if group.ticket_id else None
    if ticket is not None and ticket.state not in workflow.DONE_STATES:
        note = f"All {len(state.members)} alerts of this incident are resolved ({now:%Y-%m-%d %H:%M:%S} UTC)."
        if settings.get("CAIRN_EVENTS_AUTO_RESOLVE"):
            tickets.transition(ticket, "resolved", {"note": note, "resolution_code": "fixed"}, None, system=True)
        else:
            tickets.add_comment(ticket, note, True, None)
    db.session.flush()
    return True


def settle() -> int:
    """Periodic: resolve the groups whose last alerts were flapping and have now been quiet for the
    flap window, and close the groups whose incident a person resolved. Returns groups resolved."""
    now = utcnow()
    flap = timedelta(minutes=float(settings.get("CAIRN_EVENTS_FLAP_MINUTES")))
    lock_correlation()
    g = EventGroup
    resolved = 0
    for group in db.session.scalars(select(g).where(g.state == "open", g.firing_count == 0).order_by(g.id)):
        state = GroupState(group)
        m = MonitoringEvent
        for alert_id, ci_id, status, flaps, changed_at in db.session.execute(
            select(m.id, m.ci_id, m.status, m.flap_count, m.last_change_at).where(m.group_id == group.id)
        ):
            state.add(alert_id, Member(ci_id, status, flaps, changed_at))
        resolved += evaluate(state, now, flap)
    return resolved


# ---------------------------------------------------------------------------------------------
# Maintenance windows


def maintenance_map() -> dict[int, int]:
    """CI -> the change whose implement window is now and whose CIs (or their blast radius) hold it."""
    now = utcnow()
    changes = list(
        db.session.execute(
            select(Ticket.id, TicketCI.ci_id)
            .join(TicketCI, TicketCI.ticket_id == Ticket.id)
            .where(
                Ticket.kind == "change",
                Ticket.state.in_(CHANGE_WINDOW_STATES),
                Ticket.planned_start <= now,
                Ticket.planned_end > now,
                TicketCI.removed_at.is_(None),
            )
            .order_by(Ticket.id)
        )
    )
    cis_of: dict[int, set[int]] = defaultdict(set)
    for change_id, ci_id in changes:
        cis_of[change_id].add(ci_id)
    covered: dict[int, int] = {}
    for change_id, ci_ids in cis_of.items():
        for ci_id in reach(ci_ids):
            covered.setdefault(ci_id, change_id)
    return covered


def note_on_change(change_id: int, alerts: list[MonitoringEvent]) -> None:
    change = db.session.get(Ticket, change_id)
    if change is None or change.state in workflow.CLOSED_STATES:
        return
    shown = ", ".join(a.summary or a.fingerprint for a in alerts[:20])
    more = f" and {len(alerts) - 20} more" if len(alerts) > 20 else ""
    tickets.add_comment(
        change,
        f"{len(alerts)} monitoring alert{'s' if len(alerts) != 1 else ''} suppressed during this change's "
        f"window: {shown}{more}."[:5000],
        True,
        None,
    )
