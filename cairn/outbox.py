"""One outbox consumer mechanism for everything that reads the change log to act on it.

The change log is the outbox (ARCHITECTURE.md, invariant 1). A consumer (webhooks, notifications)
has a name, the object types it reads, a ``run_pass`` that turns the next changes after its cursor
into work rows (deliveries, notifications) in the database, and a ``queue_due`` that queues the rows
whose time has come (new ones, retries by the per-delivery schedule, ones whose job was lost).

The kernel gives each consumer:
- a **nudge** after every commit that wrote the object types it reads (queued as a job with Redis,
  a wake-up of the embedded runner without), so work leaves within moments;
- a **lease**, so one process advances a cursor at a time; a nudge that arrives while a pass runs
  asks the holder for one more pass (``cairn.jobs.lease.request_rerun``), so no wake-up is lost;
- a short **wait for older transactions**: on PostgreSQL the feed shows a change only once every
  older transaction has ended; a pass that finds changes held back looks again shortly;
- a periodic **sweep** (``cairn.outbox.sweep``) that runs every consumer, catching up whatever was
  committed while Redis was down or a worker died.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import exists, select, tuple_

from cairn.audit.models import ChangeLog
from cairn.audit.services import Cursor, feed_horizon
from cairn.db import db, utcnow
from cairn.jobs import lease

log = logging.getLogger("cairn.outbox")
RUN_JOB = "cairn.outbox.run"
LEASE_SECONDS = 60
# A pass that finds changes held back behind an older, still open transaction looks again for this
# long in place, then asks for a run a second later (up to HELD_BACK_RERUNS times in a row; the
# periodic sweep covers a transaction left open longer). Under steady load the next commit's nudge
# comes first anyway; this is for the last writes of a burst.
HELD_BACK_WAIT_SECONDS = 0.25
HELD_BACK_POLL_SECONDS = 0.05
HELD_BACK_RERUN_SECONDS = 1.0
HELD_BACK_RERUNS = 30


@dataclass
class PassResult:
    """What one pass did: rows of work created, whether a full page was read (read again now), and
    whether committed changes exist past the cursor that the feed does not show yet."""

    created: int = 0
    more: bool = False
    held_back: bool = False


@dataclass(frozen=True)
class Consumer:
    name: str
    object_types: frozenset[str]
    run_pass: Callable[[], PassResult]
    queue_due: Callable[[], int]
    is_active: Callable[[], bool] = field(default=lambda: True)


_consumers: dict[str, Consumer] = {}


def register(consumer: Consumer) -> None:
    """Add a consumer (from the app's event pipeline); registering a name again replaces it."""
    _consumers[consumer.name] = consumer


def consumers() -> list[Consumer]:
    return list(_consumers.values())


def retry_at(attempts: int, schedule: tuple[int, ...], jitter: float = 0.2):
    """When to try a delivery again after its ``attempts``-th failure, or None once the schedule
    is used up (the delivery has failed for good)."""
    if attempts < 1 or attempts > len(schedule):
        return None
    wait = schedule[attempts - 1] * (1 + random.uniform(-jitter, jitter))
    return utcnow() + timedelta(seconds=wait)


def held_back(after: Cursor, object_types: list[str] | None = None) -> bool:
    """Are there committed changes after ``after`` that the gap-free feed does not show yet
    (PostgreSQL: behind a transaction that started earlier and is still open)?"""
    if db.session.get_bind().dialect.name != "postgresql":
        return False
    condition = [tuple_(ChangeLog.txid, ChangeLog.id) > tuple_(after.txid, after.id), ChangeLog.txid >= feed_horizon()]
    if object_types:
        condition.append(ChangeLog.object_type.in_(object_types))
    return bool(db.session.scalar(select(exists().where(*condition))))


# ---------------------------------------------------------------------------------------------
# Nudges: after a commit that wrote what a consumer reads


NUDGE_KEY = "cairn-outbox-nudge"


def note_written(object_types) -> None:
    """Called by the change-log writer: once this transaction commits, nudge the consumers that
    read any of ``object_types``."""
    from cairn.uow import after_commit, pending_args

    pending = pending_args(NUDGE_KEY)
    if pending is not None:
        pending[0].update(object_types)
        return
    after_commit(nudge_for_types, set(object_types), key=NUDGE_KEY)


def nudge_for_types(object_types: set[str]) -> None:
    for consumer in consumers():
        if consumer.object_types & object_types:
            nudge(consumer.name)


# The embedded runner of this process (no Redis) registers its wake-up here.
_wake: Callable[[str], None] | None = None


def set_waker(waker: Callable[[str], None] | None) -> None:
    global _wake
    _wake = waker


def nudge(name: str) -> None:
    """Ask for a pass of consumer ``name`` soon: a job with Redis, a wake-up of the embedded runner
    without (nothing when this process has none: the runner's sweep will see it)."""
    consumer = _consumers.get(name)
    if consumer is None or not consumer.is_active():
        return
    if current_app.config.get("REDIS_URL"):
        from cairn.jobs import enqueue_now

        enqueue_now(RUN_JOB, name, job_id=f"cairn-outbox-{name}")
    elif _wake is not None:
        _wake(name)


def nudge_later(name: str, held_back_round: int) -> None:
    """Ask for a pass of ``name`` in about a second (changes it saw were held back)."""
    if current_app.config.get("REDIS_URL"):
        from cairn.jobs import queue

        try:
            queue().enqueue_in(
                timedelta(seconds=HELD_BACK_RERUN_SECONDS), "cairn.jobs.execute", RUN_JOB, name, held_back_round
            )
        except RedisError:
            log.warning("could not schedule a rerun of %s; the sweep will", name)
    elif _wake is not None:
        timer = threading.Timer(HELD_BACK_RERUN_SECONDS, _wake, args=(name,))
        timer.daemon = True
        timer.start()


# ---------------------------------------------------------------------------------------------
# Running


def run(name: str, held_back_round: int = 0, *, wait_for_held_back: float = HELD_BACK_WAIT_SECONDS) -> dict[str, int]:
    """Run consumer ``name`` under its lease until it is caught up; returns counts. When another
    process holds the lease, ask it for one more pass and return (it will see our changes)."""
    from cairn.uow import checkpoint

    consumer = _consumers[name]
    totals = {"created": 0, "queued": 0}
    last = PassResult()
    deadline = time.monotonic() + wait_for_held_back

    def passes(renew) -> None:
        nonlocal last
        while True:
            while True:
                last = consumer.run_pass()
                totals["created"] += last.created
                if not last.more:
                    break
                checkpoint()
                renew()
            totals["queued"] += consumer.queue_due()
            checkpoint()
            if not (last.held_back and time.monotonic() < deadline):
                return
            time.sleep(HELD_BACK_POLL_SECONDS)

    if not lease.exclusively(f"outbox:{name}", LEASE_SECONDS, passes):
        return {**totals, "deferred": 1}
    if last.held_back and held_back_round < HELD_BACK_RERUNS:
        nudge_later(name, held_back_round + 1)
    return totals


def sweep() -> dict[str, dict[str, int]]:
    """The periodic job: run every consumer (dispatch what was missed, queue what is due)."""
    return {consumer.name: run(consumer.name, wait_for_held_back=0) for consumer in consumers()}
