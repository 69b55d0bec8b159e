"""Configuration read from the environment when the app is created, never at import time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import current_app


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_WORDS


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def setting(name: str, default: Any = None) -> Any:
    """A domain setting (``CAIRN_*``) from the app's config, read when used, as the type of ``default``.

    Values from the environment arrive as text: numbers are converted, booleans read from
    1/true/yes/on, JSON objects and lists parsed (also when ``default`` is None and the text starts with
    { or [). Unset, or empty for a non-text default, gives ``default``."""
    raw = current_app.config.get(name)
    if raw is None or (raw == "" and not isinstance(default, str)):
        return default
    if not isinstance(raw, str):
        return raw
    if isinstance(default, bool):
        return raw.strip().lower() in TRUE_WORDS
    if isinstance(default, (int, float)):
        try:
            return type(default)(raw)
        except ValueError as exc:
            raise ValueError(f"{name}={raw!r} is not a number") from exc
    if isinstance(default, (dict, list)) or (default is None and raw.lstrip()[:1] in ("{", "[")):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{name} is not valid JSON: {exc}") from exc
    return raw


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


class Config:
    """Settings for one app instance; every value can be overridden by an environment variable."""

    def __init__(self, **overrides):
        env = os.environ
        self.INSTANCE_PATH = Path(env.get("CAIRN_INSTANCE_PATH", Path.cwd() / "instance")).resolve()
        default_db = f"sqlite:///{self.INSTANCE_PATH / 'cairn.db'}"
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(env.get("DATABASE_URL") or default_db)
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.SECRET_KEY = env.get("SECRET_KEY") or "dev-only-not-secret"
        self.TESTING = _bool(env.get("CAIRN_TESTING"))
        self.LOG_LEVEL = env.get("CAIRN_LOG_LEVEL", "INFO")
        self.LOG_JSON = _bool(env.get("CAIRN_LOG_JSON"), default=True)
        # Request bodies past this size are refused with 413 before anything is parsed.
        self.MAX_CONTENT_LENGTH = _int("CAIRN_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
        self.CAIRN_QUEUE_NAME = env.get("CAIRN_QUEUE_NAME", "cairn")
        self.CAIRN_TOKEN_TOUCH_SECONDS = _int("CAIRN_TOKEN_TOUCH_SECONDS", 300)
        # Where processes keep the dependency graph's snapshot (relations/snapshot.py), one file per
        # database: unset or empty, the instance path; "off", no snapshots (every process rebuilds).
        self.CAIRN_GRAPH_SNAPSHOT_DIR = env.get("CAIRN_GRAPH_SNAPSHOT_DIR", "")
        # A process re-checks a token it saw this recently without a query; revocations and
        # deactivations reach other processes within this time (0: check every request).
        self.CAIRN_TOKEN_REMEMBER_SECONDS = float(env.get("CAIRN_TOKEN_REMEMBER_SECONDS") or 2)
        # No pre-ping: it costs a round trip per request. A connection found dead is invalidated by
        # SQLAlchemy, its request answered 503 (see errors.py), and the next one gets a fresh connection.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_recycle": 3600}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            self.SQLALCHEMY_ENGINE_OPTIONS.update(pool_size=10, max_overflow=20)
        # flask-smorest / OpenAPI
        self.API_TITLE = "Cairn"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.1.0"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        # The docs pages load their assets from this process (cairn/docs.py), so they work offline.
        # Relative to the pages (/api/v1/docs, /api/v1/redoc), so a proxy's path prefix is kept.
        self.OPENAPI_SWAGGER_UI_PATH = "docs"
        self.OPENAPI_SWAGGER_UI_URL = env.get("CAIRN_SWAGGER_UI_URL") or "docs/static/"
        self.OPENAPI_REDOC_PATH = "redoc"
        self.OPENAPI_REDOC_URL = env.get("CAIRN_REDOC_URL") or "docs/static/redoc/redoc.standalone.js"
        self.API_SPEC_OPTIONS = {
            "info": {
                "description": (
                    "Cairn: CMDB and ITSM ticketing. Try every operation at /api/v1/docs (Swagger UI) or read "
                    "them at /api/v1/redoc (ReDoc); this document is /api/v1/openapi.json. Send a bearer token "
                    "(`cairn tokens create EMAIL`); the README says how to run Cairn and get one."
                )
            },
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        }
        self.JSON_SORT_KEYS = False
        # The web desk's session cookie: Secure always with CAIRN_SECURE_COOKIES, else whenever the
        # request came over HTTPS (behind a TLS-terminating proxy: CAIRN_PROXY_FIX=1 trusts its
        # X-Forwarded-Proto/For/Host). A session lasts CAIRN_SESSION_HOURS after sign-in.
        from datetime import timedelta

        self.SESSION_COOKIE_SECURE = _bool(env.get("CAIRN_SECURE_COOKIES"))
        self.CAIRN_PROXY_FIX = _bool(env.get("CAIRN_PROXY_FIX"))
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=_int("CAIRN_SESSION_HOURS", 12))
        # Domain settings (CAIRN_SLA_POLICIES, CAIRN_BUSINESS_HOURS, ...) pass through as text; each
        # domain reads and parses its own (numbers with int(), structures as JSON).
        for key, value in env.items():
            if key.startswith("CAIRN_") and not hasattr(self, key):
                setattr(self, key, value)
        for key, value in overrides.items():
            setattr(self, key, value)

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for every PostgreSQL URL, whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
