"""Recomputing open tickets' clocks after a calendar or policy edit, as a durable job.

An edit commits at once with an ``sla_recompute`` row (``request``); its job (``run``) is queued
once that commits: through RQ with Redis, inline after the commit without (`make run`). The row is
the job's input and its record (``GET /sla-recomputes/<id>``): swept when its job was lost or its
worker died (cairn/jobs/durable.py) and resumed after the last ticket it committed.

Runs go one at a time (the database lease ``sla-recompute``), and a run that starts takes in every
other queued row (they become ``merged`` into it), so a burst of edits costs one pass; an edit made
while a run is going queues a row that runs after it, with the calendars and policies as they are
then: the last edit's recompute always comes last. Each batch reads the policies afresh and, on
PostgreSQL, locks its tickets, so a ticket changed meanwhile is computed from its committed state.

Meanwhile the periodic scan (tickets.slas.scan) matches the tickets it looks at again while a
recompute is pending, so it never fires a condition of a policy they no longer have.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import lazyload

from cairn.audit.context import current_actor
from cairn.db import MAX_ID, db, utcnow
from cairn.jobs import durable
from cairn.jobs import lease as leases
from cairn.uow import checkpoint
from tickets import workflow
from tickets.models import Ticket
from tickets.slas import clocks
from tickets.slas.models import SLARecompute

log = logging.getLogger("cairn.sla")
JOB = "tickets.slas.recompute.run"
LEASE = "sla-recompute"
BATCH = 500
PENDING = ("queued", "running")


def job_id(row_id: int) -> str:
    return f"cairn-sla-recompute-{row_id}"


def request(
    reason: str,
    *,
    policy_ids: list[int] | None = None,
    rematch: bool = False,
    orphan_ids: list[int] | None = None,
) -> SLARecompute | None:
    """Queue a recomputation of the open tickets of ``policy_ids`` (None: all of them; with
    ``rematch``, their policies picked again first; ``orphan_ids``: tickets whose SLA policy is being
    deleted, back to the wall clock). The row is written in the caller's transaction and its job
    queued once that commits. None when there is nothing to recompute."""
    if policy_ids is not None and not policy_ids and not orphan_ids:
        return None
    row = SLARecompute(
        status="queued",
        reason=reason[:300],
        actor=current_actor().label[:255],
        rematch=rematch,
        policy_ids=sorted(set(policy_ids)) if policy_ids is not None else None,
        orphan_ids=sorted(set(orphan_ids or [])),
    )
    db.session.add(row)
    db.session.flush()
    durable.queue_row(row, JOB, job_id=job_id(row.id))
    return row


def pending() -> bool:
    """Whether a recomputation is queued or running (the scan then matches tickets again)."""
    return bool(db.session.scalar(select(exists().where(SLARecompute.status.in_(PENDING)))))


def leader(row: SLARecompute) -> SLARecompute:
    """The row whose run does the work of ``row`` (itself unless merged)."""
    seen = 0
    while row.merged_into_id is not None and seen < 100:
        following = db.session.get(SLARecompute, row.merged_into_id)
        if following is None:
            break
        row, seen = following, seen + 1
    return row


def recent() -> select:
    return select(SLARecompute).order_by(SLARecompute.id.desc())


# ---------------------------------------------------------------------------------------------
# The job


def run(row_id: int) -> None:
    """RQ job: recompute for row ``row_id``, one run at a time, batch by batch, committing each
    batch with the row's position and heartbeat; then queue the next queued row."""
    if not 0 < row_id <= MAX_ID:
        return
    seconds = durable.heartbeat_timeout().total_seconds()
    token = leases.acquire(LEASE, seconds)
    if token is None:  # another run goes on: it queues this row's job when it is done
        return
    renewed = [time.monotonic()]

    def renew() -> bool:  # a third of the lease gone: extend it (a commit of its own, so not every batch)
        if time.monotonic() - renewed[0] < seconds / 3:
            return True
        renewed[0] = time.monotonic()
        return leases.renew(LEASE, token, seconds)

    try:
        row = durable.claim(SLARecompute, row_id)
        if row is not None:
            _work(row, renew)
    except BaseException:
        db.session.rollback()
        _interrupted(row_id)
        leases.release(LEASE, token)
        raise
    leases.release(LEASE, token)
    _next()


def _work(row: SLARecompute, renew) -> None:
    if row.started_at is None:
        row.started_at = utcnow()
    if row.position == 0:
        _merge(row)
    checkpoint()  # claimed (and merged): the heartbeat tells the sweep this run is alive
    orphans = set(row.orphan_ids or [])
    policy_ids = None if orphans else row.policy_ids  # a deleted policy's tickets: match them all again
    while True:
        count, changed, last_id = recompute_batch(
            after_id=row.position, policy_ids=policy_ids, rematch=row.rematch, orphans=orphans
        )
        if not count:
            break
        row.position, row.heartbeat_at = last_id, utcnow()
        row.tickets += count
        row.changed += changed
        checkpoint()
        if not renew():
            raise RuntimeError("the sla-recompute lease was lost")
    row.status, row.finished_at = "done", utcnow()
    checkpoint()
    log.info("sla recompute %s: %s open tickets, %s changed", row.id, row.tickets, row.changed)


def _merge(row: SLARecompute) -> None:
    """Take in the other queued rows (their scopes join this run's)."""
    others = list(
        db.session.scalars(
            select(SLARecompute)
            .where(SLARecompute.status == "queued", SLARecompute.id != row.id)
            .order_by(SLARecompute.id)
            .with_for_update(skip_locked=True)
        )
    )
    for other in others:
        if row.policy_ids is not None:
            row.policy_ids = None if other.policy_ids is None else sorted({*row.policy_ids, *other.policy_ids})
        row.rematch = row.rematch or other.rematch
        row.orphan_ids = sorted({*(row.orphan_ids or []), *(other.orphan_ids or [])})
        other.status, other.merged_into_id, other.finished_at = "merged", row.id, utcnow()
        if row.reason and other.reason and len(row.reason) < 250:
            row.reason = f"{row.reason}; {other.reason}"[:300]


def _interrupted(row_id: int) -> None:
    """A run that failed leaves its row running without a heartbeat: RQ's retry, or the sweep,
    resumes it after its last committed batch."""
    try:
        row = db.session.get(SLARecompute, row_id)
        if row is not None and row.status == "running":
            row.heartbeat_at = None
            checkpoint()
    except Exception:  # noqa: BLE001 - the sweep finds it by its stopped heartbeat anyway
        db.session.rollback()


def _next() -> None:
    """Queue the oldest row still queued (its job found the lease taken and left it)."""
    from cairn.jobs import enqueue_now

    next_id = db.session.scalar(
        select(SLARecompute.id).where(SLARecompute.status == "queued").order_by(SLARecompute.id).limit(1)
    )
    if next_id is not None:
        enqueue_now(JOB, next_id, job_id=job_id(next_id))


def recompute_batch(
    *,
    after_id: int,
    policy_ids: list[int] | None = None,
    rematch: bool = False,
    orphans: set[int] | frozenset[int] = frozenset(),
    ticket_ids: list[int] | None = None,
    without_policy_id: int | None = None,
    now: datetime | None = None,
    limit: int = BATCH,
) -> tuple[int, int, int]:
    """Recompute the next ``limit`` open tickets after ``after_id`` in the scope (the tickets of
    ``policy_ids``, or ``ticket_ids``, or all; ``orphans`` lost their SLA policy); returns (tickets read, changed,
    last id). The policies are read afresh: an edit committed meanwhile counts from this batch."""
    now = now or utcnow()
    stmt = (
        select(Ticket)
        .options(lazyload("*"))
        .where(Ticket.state.not_in(workflow.DONE_STATES), Ticket.id > after_id)
        .order_by(Ticket.id)
        .limit(limit)
    )
    if policy_ids is not None:
        stmt = stmt.where(or_(Ticket.sla_policy_id.in_(policy_ids), Ticket.ola_policy_id.in_(policy_ids)))
    if ticket_ids is not None:
        stmt = stmt.where(Ticket.id.in_(ticket_ids))
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Ticket)  # a ticket changed meanwhile: its committed state
    loaded = [p for p in clocks.all_policies() if p.id != without_policy_id]
    batch = list(db.session.scalars(stmt.execution_options(populate_existing=True)))
    if not batch:
        return 0, 0, after_id
    fired = clocks.fired_keys(t.id for t in batch)
    updates = []
    for ticket in batch:
        values = clocks.refresh(
            ticket,
            now,
            rematch=rematch,
            policies=loaded,
            fired=fired.get(ticket.id, set()),
            orphaned=ticket.id in orphans,
        )
        if values:
            updates.append((ticket, values))
    clocks.store(updates)
    return len(batch), len(updates), batch[-1].id


# ---------------------------------------------------------------------------------------------
# Durable kind


def stale_ids() -> list[int]:
    return durable.stale_ids(SLARecompute)


def requeue(row_id: int) -> None:
    row = db.session.get(SLARecompute, row_id)
    if row is not None and row.status in PENDING:
        durable.queue_row(row, JOB, job_id=job_id(row.id))


def install() -> None:
    """SLA recomputations are a durable kind (swept when their job was lost, resumed)."""
    durable.register(durable.DurableKind("sla_recompute", stale_ids, requeue))
