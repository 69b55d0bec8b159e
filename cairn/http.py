"""Per-request plumbing: request ids, content types, conditional GETs, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from decimal import Decimal

import orjson
from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import abort
from werkzeug.http import unquote_etag

from cairn.audit import context
from cairn.db import sqlite_begin_immediate
from cairn.uow import begin_read_only

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_PREFIX = "/api/"
ACCEPTS_ATTR = "_cairn_accepts"
access_log = logging.getLogger("cairn.access")


class CairnFlask(Flask):
    """Flask, minus two costs it pays on every request for every hook: whether a function is a
    coroutine (``inspect`` walked some 13 times per request, 7% of a GET by id's CPU) is asked once
    per function; the session's signing serializer is built once per secret key."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sync_views: dict = {}
        self.session_interface = CookieSessions()

    def ensure_sync(self, func):
        try:
            return self._sync_views[func]
        except KeyError:
            synced = self._sync_views[func] = super().ensure_sync(func)
            return synced
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


class CookieSessions(SecureCookieSessionInterface):
    """The web desk's session cookie: its signing serializer built once per secret key, Secure
    whenever the request came over HTTPS (behind a proxy, with ``CAIRN_PROXY_FIX`` set) or always
    with ``SESSION_COOKIE_SECURE``, and never read for the API (tokens only: a cookie opens no API
    call, and the API pays nothing to decode one)."""

    def __init__(self) -> None:
        self._serializers: dict = {}

    def get_signing_serializer(self, app):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(key)
        if serializer is None and app.secret_key:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app, request):
        if request.path.startswith(API_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


class FastJSONProvider(DefaultJSONProvider):
    """orjson for every JSON response: several times faster on large bodies (an impact answer with
    thousands of items), same output as the standard encoder for what our schemas produce."""

    _options = orjson.OPT_NON_STR_KEYS

    def dumps(self, obj, **kwargs) -> str:
        try:
            return orjson.dumps(obj, default=self._fallback, option=self._options).decode()
        except TypeError:  # what orjson refuses (integers past 64 bits) the standard encoder writes
            return super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self.dumps(obj) + "\n", mimetype=self.mimetype)

    @staticmethod
    def _fallback(value):
        if isinstance(value, Decimal):
            return str(value)
        return DefaultJSONProvider.default(value)


def accepts(*mimetypes: str):
    """Declare the request body types a view method takes (default: application/json)."""

    def decorate(func):
        setattr(func, ACCEPTS_ATTR, frozenset(mimetypes))
        return func

    return decorate


def _handler():
    """The view function (of a MethodView: the method) that will answer this request, or None."""
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    name = request.method.lower()
    return getattr(view_class, "get" if name == "head" else name, None)


def _accepted_types() -> frozenset[str]:
    return getattr(_handler(), ACCEPTS_ATTR, frozenset({"application/json"}))


def begin_request():
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_token = context.set_request_id(g.request_id)
    g.immediate_token = sqlite_begin_immediate.set(request.method in WRITE_METHODS)
    if request.method in ("GET", "HEAD"):
        begin_read_only(_handler())


def check_content_type():
    if request.method in {"POST", "PUT", "PATCH"} and request.endpoint is not None:
        has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
        if has_body and request.mimetype not in _accepted_types():
            abort(415, message=f"Send the body as {', '.join(sorted(_accepted_types()))}.")


def not_modified(etag: str) -> bool:
    """Whether the request's If-None-Match names ``etag`` (an ETag header value). RFC 9110 13.1.2:
    the weak comparison, so ``W/"x"`` matches ``"x"`` (and ``*`` anything)."""
    if "If-None-Match" not in request.headers:
        return False
    value, _weak = unquote_etag(etag)
    return value is not None and request.if_none_match.contains_weak(value)


def finish_request(response):
    response.headers[REQUEST_ID_HEADER] = getattr(g, "request_id", "")
    etag = response.headers.get("ETag")
    if etag and request.method in {"GET", "HEAD"} and response.status_code == 200 and not_modified(etag):
        response.status_code = 304
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
    started = getattr(g, "started", None)
    if started is not None and access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s %s",
            request.method,
            logged_path(),
            response.status_code,
            extra={
                "method": request.method,
                "path": logged_path(),
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    return response


def logged_path() -> str:
    """The request's path as logs may show it: for a view whose secret is in its path (an inventory
    agent's site token), the route's pattern instead (``/api/v1/agent-inventory/<string:token>``)."""
    from cairn.auth.guard import PATH_TOKEN, declared_roles

    rule, endpoint = request.url_rule, request.endpoint
    if rule is not None and endpoint is not None and declared_roles(endpoint, request.method) == PATH_TOKEN:
        return rule.rule
    return request.path


def teardown_request(_exc=None):
    for name, reset in (
        ("actor_token", lambda t: context.reset(actor_token=t)),
        ("request_token", lambda t: context.reset(request_token=t)),
        ("immediate_token", sqlite_begin_immediate.reset),
    ):
        token = g.pop(name, None)
        if token is not None:
            try:
                reset(token)
            except ValueError:  # reset from another context (streamed responses)
                pass
