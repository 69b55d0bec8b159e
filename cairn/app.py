"""The composition root: the only kernel module that knows every domain."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from cairn.config import Config


def create_app(config: Config | dict | None = None) -> Flask:
    """Build a Cairn app. ``config`` overrides what the environment says."""
    if config is None:
        config = Config()
    elif isinstance(config, dict):
        config = Config(**config)
    app = Flask("cairn", static_folder=None, instance_path=str(config.INSTANCE_PATH))
    app.config.from_mapping(config.as_dict())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from cairn.logging import configure_logging

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])

    from cairn import http
    from cairn.auth.guard import authenticate_request
    from cairn.errors import register_error_handlers
    from cairn.extensions import api, db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    api.init_app(app)
    register_error_handlers(app)

    with app.app_context():
        from flask_sqlalchemy.session import Session as FlaskSession

        from cairn.audit.mixin import install as install_change_log
        from cairn.db import configure_engine

        configure_engine(db.engine)
        install_change_log(FlaskSession)

    app.before_request(http.begin_request)
    app.before_request(authenticate_request)
    app.before_request(http.check_content_type)
    app.after_request(http.finish_request)
    app.teardown_request(http.teardown_request)

    _register_blueprints(app, api)

    from cairn.cli import register_commands
    from integrations.cli import register_commands as register_integration_commands

    register_commands(app)
    register_integration_commands(app)
    return app


def _register_blueprints(app: Flask, api) -> None:
    from cairn.audit.routes import blp as audit_blp
    from cairn.auth.routes import blp as auth_blp
    from cairn.health import blp as health_blp
    from cmdb.routes import blp as cmdb_blp

    app.register_blueprint(health_blp)
    from relations.routes import blp as relations_blp

    for blueprint in (auth_blp, audit_blp, cmdb_blp, relations_blp):
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    from tickets.routes import blp as tickets_blp

    api.register_blueprint(tickets_blp, url_prefix="/api/v1")
