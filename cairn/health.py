"""Liveness and readiness probes (no auth, as API.md says)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from cairn.auth.guard import public
from cairn.db import db

blp = Blueprint("health", __name__)


@blp.get("/healthz")
@public
def healthz():
    return jsonify(status="ok")


@blp.get("/readyz")
@public
def readyz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        checks["database"] = f"unavailable: {exc.__class__.__name__}"
    if current_app.config.get("REDIS_URL"):
        from cairn.jobs import redis_connection

        try:
            redis_connection().ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"unavailable: {exc.__class__.__name__}"
    else:
        checks["redis"] = "not configured (jobs run inline)"
    ready = all(v == "ok" or v.startswith("not configured") for v in checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    return response
