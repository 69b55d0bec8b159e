"""After a commit that changed CIs, relationships or tickets, nudge the dispatcher through Redis so
deliveries leave within moments; the periodic sweep covers everything this misses (no Redis, a
crash between commit and enqueue)."""

from __future__ import annotations

import logging
import time

from flask import current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event, select

log = logging.getLogger("cairn.webhooks")
NUDGE_KEY = "cairn_webhook_nudge"
WATCHED = {"ci", "relationship", "ticket"}
_active_cache: dict[str, tuple[float, bool]] = {}
CACHE_SECONDS = 30.0


def _after_flush(session, _context) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        audit_type = getattr(obj, "audit_type", None)
        if audit_type is not None and audit_type() in WATCHED:
            session.info[NUDGE_KEY] = True
            return


def _has_active_webhooks(engine) -> bool:
    key = str(engine.url)
    cached = _active_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    from integrations.webhooks.models import Webhook

    with engine.connect() as conn:
        active = conn.execute(select(Webhook.id).where(Webhook.active.is_(True)).limit(1)).first() is not None
    _active_cache[key] = (now, active)
    return active


def forget_cache() -> None:
    _active_cache.clear()


def _after_commit(session) -> None:
    if not session.info.pop(NUDGE_KEY, False):
        return
    if not has_app_context() or not current_app.config.get("REDIS_URL"):
        return
    try:
        from cairn.db import db
        from cairn.jobs import enqueue

        if _has_active_webhooks(db.engine):
            enqueue("integrations.webhooks.tasks.dispatch", job_id="cairn-webhooks-dispatch")
    except Exception:  # noqa: BLE001 - a nudge must never fail the commit that already happened
        log.warning("could not nudge the webhook dispatcher; the sweep will", exc_info=True)


def _after_rollback(session) -> None:
    session.info.pop(NUDGE_KEY, None)


def install(session_class=FlaskSession) -> None:
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)
        event.listen(session_class, "after_commit", _after_commit)
        event.listen(session_class, "after_soft_rollback", lambda s, _t: _after_rollback(s))
