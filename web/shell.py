"""What every page shares: translations and time zones, sign-in throttling, security headers, the
layout's menu and queue counts, template filters, and the error page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

from babel import Locale
from flask import current_app, g, render_template, request, url_for
from flask_babel import Babel, format_date, format_datetime, format_decimal, format_timedelta, get_locale
from flask_babel import lazy_gettext as _l
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from cairn.auth import roles
from cairn.auth.sessions import is_page_request, login_manager
from cairn.db import utcnow

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
babel = Babel()
# Sign-in throttling; counters in Redis when there is one (shared by every worker), else in memory.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)

# No inline script anywhere: htmx is told not to inject its indicator styles (web/templates/base.html).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

STAFF = tuple(r for r in roles.ALL_ROLES if r not in (roles.REQUESTER, roles.INTEGRATION))

# The menu: (endpoint, label, roles that see it). Entries whose page is not mounted are left out.
MENU = (
    ("web.desk", _l("Desk"), STAFF),
    ("web.tickets", _l("Tickets"), STAFF),
    ("web.cis", _l("CIs"), STAFF),
    ("web.changes", _l("Changes"), STAFF),
    ("web.assets", _l("Assets"), STAFF),
    ("web.discovery_home", _l("Discovery"), STAFF),
    ("web.events_console", _l("Events"), STAFF),
    ("web.knowledge", _l("Knowledge"), STAFF),
    ("web.catalogue_tasks", _l("Fulfilment"), tuple(r for r in STAFF if r != roles.AUDITOR)),
    ("web.admin", _l("Admin"), (roles.ADMIN,)),
    ("web.portal", _l("My requests"), (roles.REQUESTER,)),
    ("web.portal_knowledge", _l("Help articles"), (roles.REQUESTER,)),
    ("web.catalogue_browse", _l("Catalogue"), (roles.REQUESTER,)),
    ("web.catalogue_approvals", _l("Approvals"), tuple(r for r in roles.ALL_ROLES if r != roles.AUDITOR)),
)


def init_app(app) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    babel.init_app(app, locale_selector=_locale, timezone_selector=_timezone)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    # Redis down must not lock everybody out: the limiter lets requests through when its store fails.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
    _pages_only(app, limiter, login_manager)
    app.jinja_env.filters.update(dt=_datetime, day=_date, ago=_ago, number=format_decimal, iso=_iso)
    app.jinja_env.globals.update(sla_state=sla_state)
    app.context_processor(_layout)
    app.after_request(_security_headers)


def _pages_only(app, *extensions) -> None:
    """Hooks that only pages need run for the web blueprint alone, not for every API request:
    Flask-Limiter's (only sign-in is throttled) and Flask-Login's remember-me cookie update (which
    also read the session on every API answer, adding ``Vary: Cookie``); about 0.1 ms a request."""

    def owned(hook) -> bool:
        return any(ext in (getattr(hook, "__self__", None), *getattr(hook, "args", ())[:1]) for ext in extensions)

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        everywhere = hooks.get(None, [])
        mine = [f for f in everywhere if owned(f)]
        hooks[None] = [f for f in everywhere if f not in mine]
        hooks.setdefault("web", []).extend(mine)


def available_locales() -> list[str]:
    found = {p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir()} if TRANSLATIONS.is_dir() else set()
    return sorted(found | {"en"})


def locale_names() -> list[tuple[str, str]]:
    return [(code, Locale.parse(code).get_display_name(code).capitalize()) for code in available_locales()]


def _locale() -> str:
    user = g.get("user")
    if user is not None and user.locale:
        return user.locale
    return request.accept_languages.best_match(available_locales()) or "en"


def _timezone() -> str | None:
    user = g.get("user")
    return user.timezone if user is not None else None


def _aware(value: datetime) -> datetime:
    # The database keeps naive UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _datetime(value: datetime | None, style: str = "medium") -> str:
    return "" if value is None else format_datetime(_aware(value), style)


def _date(value: date | None, style: str = "medium") -> str:
    return "" if value is None else format_date(value, style)


def _iso(value: datetime | None) -> str:
    return "" if value is None else _aware(value).isoformat(timespec="seconds")


def _ago(value: datetime | None) -> str:
    if value is None:
        return ""
    return format_timedelta(_aware(value) - _aware(utcnow()), add_direction=True, threshold=1.1)


def sla_state(due: datetime | None, breached: bool = False) -> str:
    """ok, near (under an hour left), breached: the colour of an SLA clock."""
    if breached:
        return "breached"
    if due is None:
        return "none"
    left = (_aware(due) - _aware(utcnow())).total_seconds()
    return "breached" if left <= 0 else "near" if left < 3600 else "ok"


def _layout() -> dict:
    user = g.get("user")
    if user is None or request.blueprint != "web":
        return {"menu": [], "queues": None, "lang": str(get_locale() or "en")}
    from tickets.services import queue_counts

    menu = [
        (endpoint, label)
        for endpoint, label, allowed in MENU
        if user.role in allowed and endpoint in current_app.view_functions
    ]
    # Counted only when the layout is rendered (fragments and the typeahead don't extend it).
    queues = partial(queue_counts, user) if user.role in STAFF and "web.tickets" in current_app.view_functions else None
    return {"menu": menu, "queues": queues, "lang": str(get_locale() or "en")}


def _security_headers(response):
    headers = response.headers
    # set, not setdefault: no view sets these otherwise, and werkzeug's setdefault raises and
    # catches an exception per missing header (a few percent of a GET by id's CPU)
    headers.set("X-Content-Type-Options", "nosniff")
    headers.set("X-Frame-Options", "DENY")
    headers.set("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html" and (request.blueprint == "web" or request.endpoint is None):
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
    return response


def error_page(status: int, detail: str, headers: dict):
    """The page for an error on a page request; None for the API (it answers problem+json)."""
    if not is_page_request():
        return None
    from cairn.errors import TITLES

    if request.headers.get("HX-Request"):
        body = render_template("errors/fragment.html", status=status, detail=detail)
    else:
        body = render_template("errors/page.html", status=status, title=TITLES.get(status, "Error"), detail=detail)
    response = current_app.response_class(body, status=status, mimetype="text/html")
    for key, value in headers.items():
        response.headers[key] = value
    return _security_headers(response)


def home_for(user) -> str:
    """Where a user lands after signing in: requesters in the portal, everyone else at the desk."""
    if user.role == roles.REQUESTER:
        return url_for("web.portal")
    return url_for("web.desk")
