"""Durable jobs: work whose input is a database row (a stored mail, an import file, a discovery
payload), so it survives Redis going away and workers dying.

A row is marked queued (``enqueued_at``) in the transaction that stores it and its job is queued
once that commits (``queue_row``). Each kind registers how to find its stale rows: queued but never
put in Redis (Redis was down), queued long ago (the job was lost with Redis), or running with a
heartbeat that stopped (its worker died). One periodic job, ``cairn.jobs.durable.sweep``, queues
them again, for every kind. A job claims its row (``claim``) so that two runs never work on it at
once, and commits its progress together with the row's position and heartbeat, so the run that
picks it up again resumes where the dead one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from cairn.config import setting
from cairn.db import db, utcnow

log = logging.getLogger("cairn.jobs")
SWEEP_LIMIT = 500


@dataclass(frozen=True)
class DurableKind:
    """``stale_ids()`` lists rows to queue again; ``requeue(id)`` queues one (marking it)."""

    name: str
    stale_ids: Callable[[], list[int]]
    requeue: Callable[[int], None]


_kinds: dict[str, DurableKind] = {}


def register(kind: DurableKind) -> None:
    """Add a durable kind (from the app's event pipeline)."""
    _kinds[kind.name] = kind


def kinds() -> list[DurableKind]:
    return list(_kinds.values())


def heartbeat_timeout() -> timedelta:
    """A running job whose heartbeat is older than this has lost its worker."""
    return timedelta(seconds=setting("CAIRN_JOB_HEARTBEAT_SECONDS", 60))


def requeue_after() -> timedelta:
    """A row queued this long ago whose job never started is queued again (lost with Redis)."""
    return timedelta(seconds=setting("CAIRN_JOB_REQUEUE_SECONDS", 300))


def sweep(only: str | None = None) -> dict[str, int]:
    """The periodic job: queue again every durable row whose job was lost; returns counts by kind."""
    counts = {}
    for kind in kinds():
        if only is not None and kind.name != only:
            continue
        ids = kind.stale_ids()
        for row_id in ids:
            kind.requeue(row_id)
        counts[kind.name] = len(ids)
        if ids:
            log.info("durable sweep: %s %s queued again", len(ids), kind.name)
    return counts


# ---------------------------------------------------------------------------------------------
# Helpers for kinds whose rows have status, enqueued_at and heartbeat_at


def queue_row(row, job: str, *, job_id: str, queue_name: str | None = None) -> None:
    """Mark ``row`` queued now, in the transaction that writes it, and queue ``job(row.id)`` once
    that commits: nothing updates the row after the commit, so a fast worker never finds it
    locked. When the job could not be queued (Redis down), the mark is taken back for the sweep."""
    from cairn.uow import after_commit

    row.enqueued_at = utcnow()
    db.session.flush()
    after_commit(_enqueue_or_unmark, type(row), row.id, job, job_id, queue_name)


def _enqueue_or_unmark(model, row_id: int, job: str, job_id: str, queue_name: str | None) -> None:
    from cairn.jobs import enqueue_now
    from cairn.uow import checkpoint

    if enqueue_now(job, row_id, job_id=job_id, queue_name=queue_name) is None and current_app.config.get("REDIS_URL"):
        db.session.execute(update(model).where(model.id == row_id, model.status == "queued").values(enqueued_at=None))
        checkpoint()


def stale_ids(model, *conditions, requeue: timedelta | None = None) -> list[int]:
    """Rows of ``model`` (matching ``conditions``) queued but not in Redis, queued too long ago, or
    running under a heartbeat that stopped."""
    now = utcnow()
    stale_queue = now - (requeue if requeue is not None else requeue_after())
    dead = now - heartbeat_timeout()
    stmt = (
        select(model.id)
        .where(
            *conditions,
            or_(
                (model.status == "queued") & (model.enqueued_at.is_(None) | (model.enqueued_at < stale_queue)),
                (model.status == "running") & (model.heartbeat_at.is_(None) | (model.heartbeat_at < dead)),
            ),
        )
        .order_by(model.id)
        .limit(SWEEP_LIMIT)
    )
    return list(db.session.scalars(stmt))


def claim(model, row_id: int):
    """Lock row ``row_id`` of ``model`` and take it for this run: returns the row (now ``running``
    with a fresh heartbeat), or None when it is done, or running under a live heartbeat (another
    worker has it). The caller commits (``checkpoint``) to make the claim visible."""
    stmt = select(model).where(model.id == row_id).with_for_update(of=model)
    row = db.session.scalar(stmt.execution_options(populate_existing=True))
    if row is None or row.status not in ("queued", "running"):
        return None
    now = utcnow()
    if row.status == "running" and row.heartbeat_at is not None and now - row.heartbeat_at < heartbeat_timeout():
        return None
    row.status, row.heartbeat_at = "running", now
    return row
