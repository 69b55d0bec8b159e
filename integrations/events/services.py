"""Monitoring events: store first, process by job, correlate into one incident per root cause.

This module is the intake and the reading side; processing.py binds, updates each alert's state and
correlates (correlation.py), incidents.py writes the incidents and their life cycle.

``accept`` stores every received occurrence (one row each) and commits before the sender hears
202; the rows' ids are queued as a range for ``process_range`` once the commit is done (a durable
kind: the sweep queues again what Redis lost).
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, update

from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.errors import NotFound
from cairn.jobs import durable
from cairn.uow import after_commit, checkpoint
from cmdb.models import ConfigurationItem
from integrations.events.incidents import settle
from integrations.events.models import EventGroup, EventOccurrence, MonitoringEvent
from integrations.events.processing import process_batch, process_range
from tickets.models import Ticket

__all__ = ["accept", "console", "get_event", "history", "install", "process_batch", "process_range", "search",
           "settle", "ticket_events"]  # fmt: skip
PROCESS_JOB = "integrations.events.tasks.process_range"

# ---------------------------------------------------------------------------------------------
# Intake


def accept(events: list[dict]) -> list[EventOccurrence]:
    """Store the occurrences (already validated: schemas.py) and queue their processing once this
    commits; nothing else happens in the request."""
    now = utcnow()
    rows = [
        EventOccurrence(
            received_at=now,
            source=e["source"],
            fingerprint=e["fingerprint"],
            status=e["status"],
            severity=(e.get("severity") or "warning").lower()[:30],
            summary=e.get("summary") or "",
            labels=e.get("labels") or {},
            ci_hints=e.get("ci") or {},
            starts_at=e.get("starts_at"),
            ends_at=e.get("ends_at"),
            generator_url=e.get("generator_url"),
            processing="queued",
            enqueued_at=now,
        )
        for e in events
    ]
    db.session.add_all(rows)
    db.session.flush()
    first, last = rows[0].id, rows[-1].id
    after_commit(_enqueue_or_unmark, first, last)
    return rows


def _enqueue_or_unmark(first: int, last: int) -> None:
    from flask import current_app

    from cairn.jobs import enqueue_now

    if enqueue_now(PROCESS_JOB, first, last, job_id=f"cairn-events-{first}-{last}") is None and current_app.config.get(
        "REDIS_URL"
    ):
        db.session.execute(
            update(EventOccurrence)
            .where(EventOccurrence.id.between(first, last), EventOccurrence.processing == "queued")
            .values(enqueued_at=None)
        )
        checkpoint()


def stale_ids() -> list[int]:
    """Queued occurrences never put in Redis, or queued long ago (their job was lost)."""
    stale = utcnow() - durable.requeue_after()
    o = EventOccurrence
    return list(
        db.session.scalars(
            select(o.id)
            .where(o.processing == "queued", or_(o.enqueued_at.is_(None), o.enqueued_at < stale))
            .order_by(o.id)
            .limit(durable.SWEEP_LIMIT)
        )
    )


def requeue(occurrence_id: int) -> None:
    row = db.session.get(EventOccurrence, occurrence_id)
    if row is not None and row.processing == "queued":
        row.enqueued_at = utcnow()
        db.session.flush()
        after_commit(_enqueue_or_unmark, occurrence_id, occurrence_id)


def install() -> None:
    """Event pipeline: stored events are a durable kind (swept when their job was lost)."""
    durable.register(durable.DurableKind("events", stale_ids, requeue))


# ---------------------------------------------------------------------------------------------
# Reading


def search(filters: dict):
    """GET /events: alerts' current state, newest first."""
    m = MonitoringEvent
    stmt = select(m)
    if filters.get("status"):
        stmt = stmt.where(m.status == filters["status"])
    if filters.get("ci_id") is not None:
        stmt = stmt.where(m.ci_id == filters["ci_id"])
    if filters.get("bound") is not None:
        stmt = stmt.where(m.ci_id.is_not(None) if filters["bound"] else m.ci_id.is_(None))
    for key in ("source", "group_id", "ticket_id", "disposition"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(m, key) == filters[key])
    return stmt.order_by(m.last_seen_at.desc(), m.id.desc())


def get_event(event_id: int) -> MonitoringEvent:
    alert = db.session.get(MonitoringEvent, event_id) if 0 < event_id <= MAX_ID else None
    if alert is None:
        raise NotFound(f"No event with id {event_id}.")
    return alert


def history(alert: MonitoringEvent, limit: int = 200) -> list[EventOccurrence]:
    """The alert's occurrences as received, newest first."""
    o = EventOccurrence
    return list(db.session.scalars(select(o).where(o.alert_id == alert.id).order_by(o.id.desc()).limit(limit)))


def ticket_events(ticket: Ticket, status: str | None = None, limit: int = 5000) -> dict:
    """The alerts correlated into an incident (or suppressed into a change), firing first, and the
    correlation groups with their reasoning."""
    m = MonitoringEvent
    stmt = select(m).where(m.ticket_id == ticket.id)
    if status:
        stmt = stmt.where(m.status == status)
    events = list(db.session.scalars(stmt.order_by((m.status == "firing").desc(), m.id).limit(limit)))
    groups = list(
        db.session.scalars(select(EventGroup).where(EventGroup.ticket_id == ticket.id).order_by(EventGroup.id))
    )
    return {"ticket_id": ticket.id, "groups": groups, "events": events}


def firing_by_ci(ci_ids) -> dict[int, int]:
    """How many alerts are firing on each of ``ci_ids`` (those with none left out): what the impact
    map marks."""
    wanted = {i for i in ci_ids if isinstance(i, int) and 0 < i <= MAX_ID}
    if not wanted:
        return {}
    m = MonitoringEvent
    stmt = select(m.ci_id, func.count()).where(m.status == "firing", id_in(m.ci_id, wanted)).group_by(m.ci_id)
    return dict(db.session.execute(stmt).tuples().all())


def cis_by_id(ids) -> dict[int, ConfigurationItem]:
    ci = ConfigurationItem
    return {c.id: c for c in db.session.scalars(select(ci).where(id_in(ci.id, set(ids))))} if ids else {}


def console() -> dict:
    """The event console: firing alerts by group (incident) and the unbound ones."""
    m = MonitoringEvent
    firing = list(
        db.session.scalars(select(m).where(m.status == "firing").order_by(m.group_id, m.ci_id, m.id).limit(2000))
    )
    group_ids = {a.group_id for a in firing if a.group_id}
    groups = {g.id: g for g in db.session.scalars(select(EventGroup).where(EventGroup.id.in_(group_ids or [0])))}
    ticket_ids = {a.ticket_id for a in firing if a.ticket_id}
    tickets_by_id = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids or [0])))}
    ci_ids = {a.ci_id for a in firing if a.ci_id} | {g.root_ci_id for g in groups.values()}
    cis = cis_by_id(ci_ids)
    counts = dict(db.session.execute(select(m.status, func.count()).group_by(m.status)).tuples().all())
    return {"firing": firing, "groups": groups, "tickets": tickets_by_id, "cis": cis, "counts": counts}
