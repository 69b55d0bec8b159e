"""Periodic work of the accounts (cairn/jobs/schedule.py): the sign-in audit's retention."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select

from cairn.auth.models import AuthEvent
from cairn.config import setting
from cairn.db import db, utcnow
from cairn.uow import checkpoint

log = logging.getLogger("cairn.auth")

DEFAULT_RETENTION_DAYS = 400  # a year of audit and a margin for the yearly review
BATCH = 5000  # rows deleted per transaction: no long lock, no huge transaction


def prune_auth_events() -> int:
    """Delete the sign-in audit rows older than ``CAIRN_AUTH_EVENT_RETENTION_DAYS`` (0: keep them
    forever), a batch per transaction; returns how many went. Token use and failed sign-ins from a
    busy network fill the table quickly, and it is personal data (addresses, user agents)."""
    days = setting("CAIRN_AUTH_EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    removed = 0
    while True:
        ids = list(
            db.session.scalars(select(AuthEvent.id).where(AuthEvent.at < cutoff).order_by(AuthEvent.id).limit(BATCH))
        )
        if not ids:
            break
        db.session.execute(delete(AuthEvent).where(AuthEvent.id.in_(ids)))
        checkpoint()
        removed += len(ids)
    if removed:
        log.info("sign-in audit: %s events older than %s days deleted", removed, days)
    return removed
