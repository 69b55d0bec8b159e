"""Every endpoint declares who may call it; one before-request hook enforces it (deny by default)."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import abort

from cairn.audit import context
from cairn.auth.models import User

ROLES_ATTR = "_cairn_roles"
# Set on web pages (cairn.auth.sessions.page): signed in by session cookie, never by bearer token.
SESSION_ATTR = "_cairn_session"
PUBLIC = "public"
# Endpoints flask-smorest adds for the OpenAPI document and the docs UI.
PUBLIC_ENDPOINT_PREFIXES = ("api-docs.",)


def requires(*roles: str):
    """Declare the roles that may call a view method (checked before the view runs)."""
    if not roles:
        raise ValueError("requires() needs at least one role; use public() for open endpoints")

    def decorate(func):
        setattr(func, ROLES_ATTR, frozenset(roles))
        return func

    return decorate


def public(func):
    """Declare a view reachable without a token (health checks only)."""
    setattr(func, ROLES_ATTR, PUBLIC)
    return func


# Views whose caller proves itself with a secret in the path (inventory agents, which cannot send a
# bearer header): no bearer token, no session, no role; the secret grants that view only.
PATH_TOKEN = frozenset({"path-token"})
PATH_TOKEN_CHECK_ATTR = "_cairn_path_token_check"


def path_token(check):
    """Declare a view authenticated by ``check(**view_args)``, which returns the credential (kept in
    ``g.path_token``) or None (401)."""

    def decorate(func):
        setattr(func, ROLES_ATTR, PATH_TOKEN)
        setattr(func, PATH_TOKEN_CHECK_ATTR, check)
        return func

    return decorate


def _check_path_token():
    view = current_app.view_functions[request.endpoint]
    view_class = getattr(view, "view_class", None)
    handlers = (
        [getattr(view_class, m, None) for m in (request.method.lower(), "post", "get", "put")] if view_class else [view]
    )
    check = next((getattr(h, PATH_TOKEN_CHECK_ATTR) for h in handlers if hasattr(h, PATH_TOKEN_CHECK_ATTR)), None)
    g.path_token = check(**(request.view_args or {})) if check is not None else None
    if g.path_token is None:
        abort(401, message="Unknown or revoked token.", headers={"WWW-Authenticate": 'Bearer realm="cairn"'})


def declared_roles(endpoint: str, method: str):
    """What the view behind ``endpoint`` declares for ``method``: a role set, PUBLIC, or None."""
    if endpoint.startswith(PUBLIC_ENDPOINT_PREFIXES) or endpoint == "static" or endpoint.endswith(".static"):
        return PUBLIC
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        name = method.lower()
        if name == "head":
            name = "get"
        handler = getattr(view_class, name, None)
        if handler is None and name == "options":
            return frozenset(_any_role_of(view_class))
        return getattr(handler, ROLES_ATTR, None) if handler else None
    return getattr(view, ROLES_ATTR, None)


def _any_role_of(view_class):
    roles: set[str] = set()
    for name in ("get", "post", "put", "patch", "delete"):
        declared = getattr(getattr(view_class, name, None), ROLES_ATTR, None)
        if declared == PUBLIC:
            return {"*"}
        if declared:
            roles |= declared
    return roles


def current_user() -> User:
    return g.user


def authenticate_request():
    """before_request: 401 without a valid token, 403 when the role is not declared for the view."""
    from cairn.auth.services import authenticate, session_user

    request_ = request._get_current_object()  # read many times here: once through the proxy
    globals_ = g._get_current_object()
    globals_.user = None
    endpoint = request_.endpoint
    if endpoint is None:  # unknown route: let the 404/405 handlers answer
        return None
    app = current_app._get_current_object()
    declared = declared_roles(endpoint, request_.method)
    if getattr(app.view_functions.get(endpoint), SESSION_ATTR, False):
        from cairn.auth.sessions import authenticate_session

        return authenticate_session(declared)
    if declared == PUBLIC:
        return None
    if declared == PATH_TOKEN:
        return _check_path_token()
    scheme, _, secret = request_.headers.get("Authorization", "").partition(" ")
    token = None
    if scheme.lower() == "bearer" and secret.strip():
        touch, remember = app.config["CAIRN_TOKEN_TOUCH_SECONDS"], app.config["CAIRN_TOKEN_REMEMBER_SECONDS"]
        token = authenticate(secret.strip(), touch, remember)
    if token is None:
        abort(
            401,
            message="A valid bearer token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="cairn"'},
        )
    user = globals_.user = session_user(token)
    globals_.token = token
    globals_.actor_token = context.set_actor(context.Actor(user.email, user.id))
    if declared is None:
        # A view that forgot to declare its roles is closed to everyone.
        abort(403, message="This endpoint is not open to any role.")
    if "*" not in declared and user.role not in declared:
        abort(403, message=f"The role {user.role!r} may not do this.")
    if token.scopes is not None or token.allowed_networks:
        _check_token_limits(token, app, endpoint, request_)
    return None


_needed_scopes: dict[tuple[str, str], str | None] = {}


def needed_scope(app, endpoint: str, method: str) -> str | None:
    """The scope a call of ``endpoint`` with ``method`` needs (cairn/auth/scopes.py), cached."""
    key = (endpoint, method)
    if key not in _needed_scopes:
        from cairn.auth.scopes import needed

        view = app.view_functions.get(endpoint)
        view_class = getattr(view, "view_class", None)
        name = "get" if method in ("HEAD", "OPTIONS") else method.lower()
        handler = getattr(view_class, name, None) if view_class is not None else view
        _needed_scopes[key] = needed(endpoint.split(".", 1)[0], method, handler)
    return _needed_scopes[key]


def _check_token_limits(token, app, endpoint: str, request_) -> None:
    from cairn.auth.scopes import allowed_networks_ok

    if token.scopes is not None:
        scope = needed_scope(app, endpoint, request_.method)
        if scope is None or scope not in token.scopes:
            held = ", ".join(token.scopes) or "none"
            abort(403, message=f"This token's scopes ({held}) do not include {scope or 'a scope for this'!r}.")
    if not allowed_networks_ok(token.allowed_networks, request_.remote_addr):
        abort(403, message="This token may not be used from this address.")
