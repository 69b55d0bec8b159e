"""Background jobs: RQ when REDIS_URL is set, inline otherwise.

Jobs are plain functions taking ids, named by dotted path (``"tickets.tasks.mark_breaches"``), so the
kernel and the domains never import the packages that implement them.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable

from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError

from cairn.audit.context import Actor, acting_as

log = logging.getLogger("cairn.jobs")
PENDING = {"queued", "started", "deferred", "scheduled"}
WAITING = {"queued", "deferred", "scheduled"}
JOB_ACTOR_PREFIX = "job:"


def resolve(dotted_name: str) -> Callable:
    module_name, _, attr = dotted_name.rpartition(".")
    if not module_name:
        raise ValueError(f"not a dotted name: {dotted_name!r}")
    return getattr(importlib.import_module(module_name), attr)


_connections: dict[str, Redis] = {}


def redis_connection(url: str | None = None) -> Redis:
    """One client (and connection pool) per URL per process: a new one per call cost a TCP
    connection per enqueue. redis-py's pool notices a fork and starts afresh in the child."""
    url = url or current_app.config["REDIS_URL"]
    client = _connections.get(url)
    if client is None:
        client = _connections[url] = Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
    return client


def queue(name: str | None = None):
    from rq import Queue

    return Queue(name or current_app.config["CAIRN_QUEUE_NAME"], connection=redis_connection())


# A job that fails (a transient database error, a worker's connection cut) is tried again by RQ
# after these many seconds; jobs are idempotent, so a second run of finished work does nothing.
RETRY_INTERVALS = (1, 5, 30)


def enqueue(dotted_name: str, *args, job_id: str | None = None, queue_name: str | None = None) -> None:
    """Queue ``dotted_name(*args)`` once the current unit of work has committed (never if it rolls
    back), so a worker never starts before the job's input is visible. Without Redis the job runs
    right after the commit, in this process."""
    from cairn.uow import after_commit

    after_commit(enqueue_now, dotted_name, *args, job_id=job_id, queue_name=queue_name)


def enqueue_now(dotted_name: str, *args, job_id: str | None = None, queue_name: str | None = None):
    """Queue ``dotted_name(*args)`` now: only for work whose input is already committed (sweepers,
    after-commit work). Returns the RQ job, or None when the job ran inline or Redis could not be
    reached (then it is logged, never raised: the database is the source of truth and each domain's
    sweeper re-queues what is left undone). ``job_id`` makes a second enqueue of the same work a
    no-op while the first still waits in the queue (see ``_dedupe`` for one already started)."""
    if not current_app.config.get("REDIS_URL"):
        execute(dotted_name, *args)
        return None
    try:
        from rq import Retry

        q = queue(queue_name)
        if job_id is not None:
            waiting, job_id = _dedupe(q, job_id)
            if waiting is not None:
                return waiting
        return q.enqueue(
            "cairn.jobs.execute",
            dotted_name,
            *args,
            job_id=job_id,
            retry=Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS)),
        )
    except RedisError:
        # The database holds the work; the domain's sweeper queues it again once Redis is back.
        log.warning("Redis unavailable: %s%r not queued now; its sweeper will pick it up", dotted_name, args)
        return None


def _dedupe(q, job_id: str):
    """(the job already waiting under ``job_id``, or None; the id to queue a new one under).

    A keyed job waits in the queue at most once. When it has started, its input may have come
    after it read, so one more run is queued under ``<id>-again`` (also at most once); only when
    both are running does a nudge get a job of its own, and that lasts milliseconds."""
    for candidate in (job_id, f"{job_id}-again"):
        existing = q.fetch_job(candidate)
        if existing is None:
            return None, candidate
        status = existing.get_status(refresh=True)
        if status in WAITING:
            return existing, candidate
        if status not in PENDING:  # finished, failed, stopped: the id is free again
            return None, candidate
    return None, f"{job_id}-{uuid.uuid4().hex[:12]}"


def execute(dotted_name: str, *args):
    """Entry point of every job: actor ``job:<name>``, commit on success, roll back on failure. In a
    worker it gets a fresh app context; inline (no Redis) it runs in the caller's context, whose
    work is committed already (jobs are queued after the commit)."""
    if has_app_context():
        return _run(dotted_name, args)
    with _worker_app().app_context():
        return _run(dotted_name, args)


def _run(dotted_name: str, args: tuple):
    """One job is one unit of work: committed when it returns, rolled back when it raises. On
    SQLite a job takes the write lock up front, so it waits its turn (busy timeout) instead of
    failing when a request committed between its read and its write."""
    from cairn.db import db, sqlite_begin_immediate

    func = resolve(dotted_name)
    immediate = sqlite_begin_immediate.set(True)
    try:
        with acting_as(Actor(JOB_ACTOR_PREFIX + dotted_name)):
            try:
                result = func(*args)
                db.session.commit()
                return result
            except Exception:
                db.session.rollback()
                log.exception("job %s%r failed", dotted_name, args)
                raise
    finally:
        sqlite_begin_immediate.reset(immediate)


_app = None


def _worker_app():
    global _app
    if _app is None:
        from cairn.app import create_app

        _app = create_app()
    return _app
