"""Kernel jobs."""

from __future__ import annotations

from flask import current_app

from cairn.db import utcnow


def heartbeat() -> str:
    """Records that a worker and the scheduler are alive (read by /readyz and operators)."""
    stamp = utcnow().isoformat()
    if current_app.config.get("REDIS_URL"):
        from cairn.jobs import redis_connection

        redis_connection().set("cairn:heartbeat", stamp, ex=600)
    return stamp
