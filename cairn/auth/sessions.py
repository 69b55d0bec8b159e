"""Browser sessions: how a person signed in to the web desk is recognised on each request.

The API authenticates bearer tokens only; pages (views declared with :func:`page`) authenticate the
signed session cookie only, and every state-changing page request must carry the CSRF token. The two
never mix: a token does not open a page and a session cookie does not call the API.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, g, request
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from cairn.auth.guard import PUBLIC, ROLES_ATTR, SESSION_ATTR
from cairn.auth.models import User
from cairn.http import ACCEPTS_ATTR, WRITE_METHODS

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

login_manager = LoginManager()
csrf = CSRFProtect()


def page(*roles: str):
    """Declare a web page: the roles that may open it (or :data:`cairn.auth.guard.PUBLIC` alone for
    sign-in). Pages take form bodies and are opened with the session cookie."""
    if not roles:
        raise ValueError("page() needs the roles that may open it")
    declared = PUBLIC if roles == (PUBLIC,) else frozenset(roles)

    def decorate(func):
        setattr(func, ROLES_ATTR, declared)
        setattr(func, SESSION_ATTR, True)
        setattr(func, ACCEPTS_ATTR, FORM_TYPES)
        return func

    return decorate


def is_page_request() -> bool:
    """Whether this request is for a web page (so an error is answered with a page, not problem+json)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is not None:
        return bool(getattr(view, SESSION_ATTR, False))
    # no route matched: a page for browsers outside the API's paths
    path = request.path
    if path.startswith(("/api/", "/health")):
        return False
    return request.accept_mimetypes.accept_html


def session_id(user: User) -> str:
    """What the session cookie holds for ``user``: the id and a stamp of the password hash (and of
    the last deactivation), so that a password change (or reset) signs out every other session of
    that user, and a deactivation every session for good."""
    signed = f"{user.id}:{user.password_hash or ''}"
    if user.sessions_revoked_at is not None:
        signed += f":{user.sessions_revoked_at.isoformat()}"
    stamp = hashlib.sha256(signed.encode()).hexdigest()[:20]
    return f"{user.id}:{stamp}"


@login_manager.user_loader
def _load_user(value: str) -> User | None:
    from cairn.db import db

    user_id, _, _stamp = value.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not hmac.compare_digest(session_id(user), value):
        return None
    return user


def init_app(app, sign_in_endpoint: str) -> None:
    # Flask's defaults hold these keys already: set, not setdefault (Config may override them)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("CAIRN_SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_NAME"] = "cairn_session"
    # The cookie is sent only when a request changed the session. Sent on every answer (Flask's default
    # for a permanent session), the answer to a request already in flight, the page's htmx fragments,
    # carried the session as it was and replaced the one a write had just set: its flash message lost.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    # Checked by authenticate_session for pages only: the API is token-authenticated, CSRF-free.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    login_manager.init_app(app)
    login_manager.login_view = sign_in_endpoint
    login_manager.session_protection = "basic"
    csrf.init_app(app)


def authenticate_session(declared):
    """The guard for pages: the signed-in user from the session cookie, the CSRF token on writes,
    then the roles the page declares. Signed out: to the sign-in page."""
    from flask_smorest import abort

    from cairn.audit import context

    if request.method in WRITE_METHODS:
        csrf.protect()
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        g.user = user
        g.actor_token = context.set_actor(context.Actor(user.email, user.id))
    if declared == PUBLIC:
        return None
    if g.user is None:
        response = login_manager.unauthorized()
        if request.headers.get("HX-Request"):
            # htmx would swap the sign-in page into a fragment: have it load the page instead
            response.headers["HX-Redirect"] = response.location
        return response
    if declared is None:
        abort(403, message="This page is not open to any role.")
    if g.user.role not in declared:
        abort(403, message="Your role may not open this page.")
    return None
