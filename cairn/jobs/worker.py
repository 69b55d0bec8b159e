"""`cairn worker`: an RQ worker (and optionally the periodic scheduler) inside the app context."""

from __future__ import annotations

import logging

from flask import current_app

from cairn.jobs import execute, redis_connection
from cairn.jobs.schedule import PERIODIC_JOBS

log = logging.getLogger("cairn.jobs")


def build_scheduler():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=redis_connection(), name="cairn-scheduler")
    for dotted_name, interval in PERIODIC_JOBS:
        scheduler.register(
            execute,
            current_app.config["CAIRN_QUEUE_NAME"],
            args=(dotted_name,),
            interval=interval,
            name=dotted_name,
        )
    return scheduler


def run_scheduler() -> None:
    """Enqueue the periodic jobs when they are due, until stopped. Run exactly one per deployment."""
    build_scheduler().start()


def all_queues() -> list[str]:
    """Every queue the app puts jobs on: the main one and the mail queue."""
    from cairn.config import setting

    names = [current_app.config["CAIRN_QUEUE_NAME"], setting("CAIRN_MAIL_QUEUE", "emails")]
    return list(dict.fromkeys(names))


def run_worker(queues: list[str] | None = None, burst: bool = False) -> bool:
    """Work the queues (default: all of them) in this process. Jobs run in-process (SimpleWorker)
    so they share the app, its engine and the graph cache; a job that crashes the process is
    retried by the sweepers. The worker also moves RQ's retries that are due back to their queue."""
    from rq import Queue, SimpleWorker

    connection = redis_connection()
    names = queues or all_queues()
    worker = SimpleWorker([Queue(n, connection=connection) for n in names], connection=connection)
    return worker.work(burst=burst, logging_level=current_app.config.get("LOG_LEVEL") or "INFO", with_scheduler=True)
