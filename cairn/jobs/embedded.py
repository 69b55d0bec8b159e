"""The embedded runner: without Redis, the periodic jobs and the outbox consumers' nudges run on a
background thread of the serving process, so `make run` delivers webhooks and notifications, marks
SLA breaches and sweeps mail with no other process.

Each periodic job is guarded by a database lease held for its interval (``periodic:<job>``), so
several processes (gunicorn workers, `cairn scheduler`) never run the same job in the same period.
"""

from __future__ import annotations

import logging
import threading
import time

from cairn.jobs.schedule import PERIODIC_JOBS

log = logging.getLogger("cairn.jobs")
IDLE_SECONDS = 1.0


class EmbeddedRunner:
    def __init__(self, app, jobs: list[tuple[str, int]] | None = None):
        self.app = app
        self.jobs = list(PERIODIC_JOBS if jobs is None else jobs)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._nudged: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self, consumer: str) -> None:
        """Run outbox consumer ``consumer`` soon (called after a commit that wrote what it reads)."""
        with self._lock:
            self._nudged.add(consumer)
        self._wake.set()

    def start(self) -> EmbeddedRunner:
        from cairn import outbox

        outbox.set_waker(self.wake)
        self._thread = threading.Thread(target=self.run_forever, name="cairn-embedded-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        from cairn import outbox

        outbox.set_waker(None)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        from cairn.db import sqlite_begin_immediate

        sqlite_begin_immediate.set(True)  # this thread's own context: it writes, so take the lock up front
        next_due = dict.fromkeys((name for name, _ in self.jobs), 0.0)
        while not self._stop.is_set():
            with self.app.app_context():
                self._run_nudged()
                for name, interval in self.jobs:
                    if self._stop.is_set() or time.monotonic() < next_due[name]:
                        continue
                    next_due[name] = time.monotonic() + interval
                    self._run_periodic(name, interval)
                    self._run_nudged()
            wait = min(next_due.values(), default=time.monotonic() + IDLE_SECONDS) - time.monotonic()
            self._wake.wait(max(0.0, min(IDLE_SECONDS, wait)))
            self._wake.clear()

    def _run_nudged(self) -> None:
        from cairn.jobs import execute

        with self._lock:
            nudged, self._nudged = self._nudged, set()
        for consumer in sorted(nudged):
            self._guarded(execute, "cairn.outbox.run", consumer)

    def _run_periodic(self, name: str, interval: int) -> None:
        from cairn.jobs import execute
        from cairn.jobs.lease import hold_for

        # Held for a little less than the interval, so this process's next turn finds it free.
        if self._guarded(hold_for, f"periodic:{name}", max(1.0, interval * 0.9)):
            self._guarded(execute, name)

    def _guarded(self, fn, *args):
        from cairn.db import db

        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("embedded runner: %s%r failed", getattr(fn, "__name__", fn), args)
            db.session.rollback()
            return None
        finally:
            db.session.remove()


_runner: EmbeddedRunner | None = None


def start_embedded_runner(app) -> EmbeddedRunner | None:
    """Start the runner in this process when the app has no Redis (once per process)."""
    global _runner
    from cairn.config import TRUE_WORDS

    enabled = str(app.config.get("CAIRN_EMBEDDED_RUNNER", "true")).strip().lower() in TRUE_WORDS
    if app.config.get("REDIS_URL") or not enabled:
        return None
    if _runner is None:
        _runner = EmbeddedRunner(app).start()
        log.info("no REDIS_URL: periodic jobs and outbox consumers run in this process")
    return _runner
