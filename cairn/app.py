"""The composition root: the only kernel module that knows every domain."""

from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask

from cairn.config import Config


def create_app(config: Config | dict | None = None) -> Flask:
    """Build a Cairn app. ``config`` overrides what the environment says."""
    if config is None:
        config = Config()
    elif isinstance(config, dict):
        config = Config(**config)
    from cairn.http import CairnFlask, FastJSONProvider

    app = CairnFlask("cairn", static_folder=None, instance_path=str(config.INSTANCE_PATH))
    app.config.from_mapping(config.as_dict())

    app.json = FastJSONProvider(app)
    if app.config.get("CAIRN_PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from cairn.logging import configure_logging

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])
    from cairn.auth.services import check_password_hash_profile

    with app.app_context():  # before any extension knows this app: a refused start leaves them alone
        check_password_hash_profile()

    from cairn import http
    from cairn.auth.guard import authenticate_request
    from cairn.db import read_json
    from cairn.errors import register_error_handlers
    from cairn.extensions import api, db, migrate

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "json_deserializer": read_json,
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    }
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    api.init_app(app)
    register_error_handlers(app)

    with app.app_context():
        from cairn.db import configure_engine

        configure_engine(db.engine)
    install_event_pipeline()

    app.before_request(http.begin_request)
    app.before_request(authenticate_request)
    app.before_request(http.check_content_type)
    app.after_request(http.finish_request)
    app.teardown_request(http.teardown_request)

    _register_blueprints(app, api)
    from cairn.uow import wrap_views

    wrap_views(app)

    from cairn.cli import register_commands
    from integrations.cli import register_commands as register_integration_commands

    register_commands(app)
    register_integration_commands(app)
    from cairn.uow import wrap_commands

    wrap_commands(app.cli)
    return app


# The event pipeline: every session hook and change-log consumer, installed in this order by
# create_app. Importing a module installs nothing; this list is the whole wiring.
EVENT_PIPELINE = (
    # after-commit work registered in a savepoint that rolled back is dropped with it
    "cairn.uow.install",
    # every write of an Audited model -> a change-log row in the same flush; the rows written
    # nudge the outbox consumers below once the transaction commits
    "cairn.audit.mixin.install",
    # each unit of work's first CI class lookup checks the registry's version (custom classes)
    "cmdb.classes.install",
    # relationship and graph-relevant CI changes bump the graph version (other processes refresh)
    "relations.services.install_hooks",
    # custom CI classes check the relationship types they name through relations' reader
    "relations.services.install_type_names",
    # impact answers over HTTP carry the open tickets on the impacted CIs
    "tickets.graph.install",
    # outbox consumers of the change log (cairn/outbox.py): signed webhooks, mail notifications
    "integrations.webhooks.services.install",
    "integrations.email.notify.install",
    # durable jobs (cairn/jobs/durable.py), swept when lost and resumed: mail, imports, discovery
    "integrations.email.intake.install",
    "integrations.events.services.install",
    "integrations.sync.tasks.install",
    "tickets.slas.recompute.install",
)


def install_event_pipeline() -> None:
    for dotted_name in EVENT_PIPELINE:
        module_name, _, attr = dotted_name.rpartition(".")
        getattr(importlib.import_module(module_name), attr)()


# The blueprint of every domain, mounted under /api/v1 in this order (each module exposes ``blp``).
API_BLUEPRINTS = (
    "cairn.auth.routes",
    "cairn.audit.routes",
    "cairn.directory.routes",
    "cmdb.routes",
    "cmdb.custom_fields.routes",
    "cmdb.assets.routes",
    "relations.routes",
    "tickets.routes",
    "tickets.slas.routes",
    "tickets.knowledge.routes",
    "tickets.routing.routes",
    "tickets.catalogue.routes",
    "integrations.reports.routes",
    "integrations.email.routes",
    "integrations.sync.routes",
    "integrations.webhooks.routes",
    "integrations.search.routes",
    "integrations.agents.routes",
    "integrations.views.routes",
    "integrations.events.routes",
)


def _register_blueprints(app: Flask, api) -> None:
    from cairn.health import blp as health_blp

    app.register_blueprint(health_blp)
    for module in API_BLUEPRINTS:
        api.register_blueprint(importlib.import_module(module).blp, url_prefix="/api/v1")
    # The web desk for people, on the same app: "/", "/portal", "/sign-in", ...
    import web

    web.init_app(app)
