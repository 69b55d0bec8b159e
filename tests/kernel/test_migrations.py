"""The migrations build the schema the models describe, both ways, on this test's database."""

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from cairn.db import db as _db
from cairn.extensions import not_a_search_index, render_migration_type
from tests.conftest import PG_ADMIN_URL, _backend


def test_models_and_migrations_agree(app):
    with app.app_context(), _db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_item": lambda t, o, a: render_migration_type(o, None, a),
                # the same filter `cairn db migrate` uses (cairn/extensions.py)
                "include_name": not_a_search_index,
            },
        )
        differences = compare_metadata(context, _db.metadata)
    assert differences == [], "run `cairn db migrate` and commit the migration:\n" + "\n".join(map(str, differences))


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    """On a scratch database: every migration's downgrade works, and upgrading again rebuilds it all."""
    from cairn.app import create_app
    from cairn.config import Config

    if _backend() == "postgresql":
        name = f"cairn_migrate_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        admin, name, url = None, None, f"sqlite:///{tmp_path / 'scratch.db'}"
    scratch = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=tmp_path, LOG_LEVEL="WARNING"))
    try:
        with scratch.app_context():
            upgrade(revision="heads")
            tables = set(inspect(_db.engine).get_table_names())
            assert {"ci", "change_log", "user", "team", "api_token", "location"} <= tables
            downgrade(revision="base")
            assert set(inspect(_db.engine).get_table_names()) <= {"alembic_version"}
            upgrade(revision="heads")
            assert set(inspect(_db.engine).get_table_names()) == tables
            _db.engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
