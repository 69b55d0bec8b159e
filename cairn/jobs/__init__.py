"""Background jobs: RQ when REDIS_URL is set, inline otherwise.

Jobs are plain functions taking ids, named by dotted path (``"tickets.tasks.mark_breaches"``), so the
kernel and the domains never import the packages that implement them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from flask import current_app, has_app_context, has_request_context
from redis import Redis
from redis.exceptions import RedisError

from cairn.audit.context import Actor, acting_as

log = logging.getLogger("cairn.jobs")
PENDING = {"queued", "started", "deferred", "scheduled"}
JOB_ACTOR_PREFIX = "job:"


def resolve(dotted_name: str) -> Callable:
    module_name, _, attr = dotted_name.rpartition(".")
    if not module_name:
        raise ValueError(f"not a dotted name: {dotted_name!r}")
    return getattr(importlib.import_module(module_name), attr)


def redis_connection(url: str | None = None) -> Redis:
    return Redis.from_url(url or current_app.config["REDIS_URL"])


def queue(name: str | None = None):
    from rq import Queue

    return Queue(name or current_app.config["CAIRN_QUEUE_NAME"], connection=redis_connection())


def enqueue(dotted_name: str, *args, job_id: str | None = None, queue_name: str | None = None):
    """Run ``dotted_name(*args)`` in a worker, or right now when no Redis is configured.

    Call it after the commit that made the job's input visible. Returns the RQ job, or None when the
    job ran inline or Redis could not be reached (then it is logged, never raised: the database is the
    source of truth and each domain's sweeper re-queues what is left undone). ``job_id`` makes a
    second enqueue of the same work a no-op while the first is still pending in Redis.
    """
    if not current_app.config.get("REDIS_URL"):
        execute(dotted_name, *args)
        return None
    try:
        q = queue(queue_name)
        if job_id is not None:
            existing = q.fetch_job(job_id)
            if existing is not None and existing.get_status(refresh=True) in PENDING:
                return existing
        return q.enqueue("cairn.jobs.execute", dotted_name, *args, job_id=job_id)
    except RedisError:
        # The database holds the work; the domain's sweeper queues it again once Redis is back.
        log.warning("Redis unavailable: %s%r not queued now; its sweeper will pick it up", dotted_name, args)
        return None


def execute(dotted_name: str, *args):
    """Entry point of every job: a fresh app context (unless inline in a request), actor
    ``job:<name>``, commit on success, roll back on failure."""
    if has_request_context():
        return _run(dotted_name, args)
    app = current_app._get_current_object() if has_app_context() else _worker_app()
    with app.app_context():
        return _run(dotted_name, args)


def _run(dotted_name: str, args: tuple):
    from cairn.db import db

    func = resolve(dotted_name)
    with acting_as(Actor(JOB_ACTOR_PREFIX + dotted_name)):
        try:
            result = func(*args)
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            log.exception("job %s%r failed", dotted_name, args)
            raise


_app = None


def _worker_app():
    global _app
    if _app is None:
        from cairn.app import create_app

        _app = create_app()
    return _app
