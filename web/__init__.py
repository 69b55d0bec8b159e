"""The web desk: the pages people use (technicians, change managers, asset managers, requesters).

The top layer: pages call the domain services exactly as the API routes do, so there is one set of
rules and two front doors. Sign-in, sessions and CSRF are the kernel's (cairn/auth/sessions.py);
this package adds the pages, their templates and the vendored browser assets.
"""

from __future__ import annotations

import importlib

# The modules that add pages to the blueprint, imported in this order by init_app.
PAGES = (
    "web.sign_in",
    "web.desk",
    "web.search",
    "web.tickets",
    "web.cis",
    "web.account",
    "web.portal",
    "web.impact",
    "web.changes",
    "web.assets",
    "web.discovery",
    "web.events",
    "web.views",
    "web.admin",
    "web.custom_fields",
    "web.classes_admin",
    "web.routing",
    "web.slas_admin",
    "web.knowledge",
    "web.catalogue",
)


def init_app(app) -> None:
    """Mount the web desk on ``app``: sessions, translations, throttling, pages, error pages."""
    from cairn.auth import sessions
    from cairn.errors import ERROR_PAGE
    from web import shell
    from web.blueprint import bp

    sessions.init_app(app, "web.sign_in")
    shell.init_app(app)
    for module in PAGES:
        importlib.import_module(module)
    app.register_blueprint(bp)
    app.extensions[ERROR_PAGE] = shell.error_page
