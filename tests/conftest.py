"""Fixtures: one app per session on the database named by CAIRN_TEST_DATABASE (sqlite or
postgresql), the schema built by the migrations, and a rolled-back transaction per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from cairn.uow import UnitOfWorkSession

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("CAIRN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The suite signs in thousands of times: argon2id's cheapest parameters here and in every server,
# worker and command it starts (they inherit the environment), instead of 0.13 s of CPU a hash and
# as much a check. tests/kernel/test_auth.py checks the production default.
os.environ.setdefault("CAIRN_PASSWORD_HASH_PROFILE", "CHEAPEST")


def _backend() -> str:
    return os.environ.get("CAIRN_TEST_DATABASE", "sqlite")


def _fresh_postgres_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


# Tests that drive Chromium or a whole deployment (gunicorn, job workers, scheduler, their own
# Redis): `make test` runs the rest of the SQLite and PostgreSQL suites side by side and these one
# suite at a time, as two of them at once starve each other's processes on two cores.
SERIAL_FIXTURES = {"browser", "web_server", "deployment"}
SERIAL_DIRECTORIES = ("deploy",)

# The web desk's browser tests each run on one database. What they add to the page tests (Flask's
# client renders the desk's pages and posts its forms on both databases) is the browser's part:
# htmx, scripts, CSP, layout, accessibility, the same on both; run twice, they cost a fifth of
# `make test`. Most run on PostgreSQL, whose lane has room for them beside schemathesis (Makefile);
# the scenarios of the main desk and of saved views keep a real browser on SQLite through gunicorn,
# htmx's parallel requests included. A module not named here runs on both; a test of these modules
# that drives no browser runs on both.
BROWSER_MODULE_DATABASE = {
    "test_scenarios.py": "sqlite",
    "test_view_scenarios.py": "sqlite",
    "test_directory_sign_in_browser.py": "postgresql",
    "test_asset_scenarios.py": "postgresql",
    "test_knowledge_scenarios.py": "postgresql",
    "test_catalogue_scenarios.py": "postgresql",
    "test_sla_admin_scenarios.py": "postgresql",
    "test_custom_field_filter_scenarios.py": "postgresql",
    "test_discovery_scenarios.py": "postgresql",
    "test_sla_scenarios.py": "postgresql",
    "test_admin_scenarios.py": "postgresql",
    "test_change_scenarios.py": "postgresql",
    "test_oidc_sign_in_browser.py": "postgresql",
    "test_class_and_category_scenarios.py": "postgresql",
    "test_impact_scenarios.py": "postgresql",
    "test_custom_field_scenarios.py": "postgresql",
    "test_routing_scenarios.py": "postgresql",
    "test_two_factor_scenarios.py": "postgresql",
    "test_event_scenarios.py": "postgresql",
    "test_harness.py": "postgresql",
}


def pytest_collection_modifyitems(config, items):
    backend = _backend()
    on_sqlite = backend != "postgresql"
    for item in items:
        relative = Path(str(item.path)).relative_to(Path(__file__).parent).parts
        fixtures = getattr(item, "fixturenames", ())
        if relative[0] in SERIAL_DIRECTORIES or SERIAL_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.serial)
        drives_browser = relative[0] == "web" and {"browser", "web_server"}.intersection(fixtures)
        browser_database = BROWSER_MODULE_DATABASE.get(relative[-1]) if drives_browser else None
        if browser_database not in (None, backend):
            item.add_marker(pytest.mark.skip(reason=f"a browser test run on {browser_database} (tests/conftest.py)"))
        if on_sqlite and item.get_closest_marker("postgres_only"):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL semantics (concurrent writers)"))


@pytest.fixture(scope="session")
def instance_dir():
    path = Path(tempfile.mkdtemp(prefix="cairn-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(instance_dir):
    if _backend() != "postgresql":
        yield f"sqlite:///{instance_dir / 'test.db'}"
        return
    name = f"cairn_test_{os.getpid()}"
    yield _fresh_postgres_database(name)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def app(database_url, instance_dir):
    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.config import Config

    os.environ.pop("REDIS_URL", None)
    config = Config(
        SQLALCHEMY_DATABASE_URI=database_url,
        INSTANCE_PATH=instance_dir,
        REDIS_URL=None,
        TESTING=True,
        LOG_LEVEL="WARNING",
        SECRET_KEY="test-secret",
        CAIRN_TOKEN_REMEMBER_SECONDS=0,
    )
    app = create_app(config)
    with app.app_context():
        upgrade(revision="heads")
    yield app
    with app.app_context():
        from cairn.db import db

        db.engine.dispose()


class _ConnectionBoundSession(UnitOfWorkSession):
    """Flask-SQLAlchemy's session picks the engine itself; in tests it must use our connection."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


@pytest.fixture
def db(app):
    """The app's db with every write in this test rolled back at the end."""
    from cairn.db import db as _db

    with app.app_context():
        connection = _db.engine.connect()
        outer = connection.begin()
        original = _db.session
        _db.session = _db._make_scoped_session(
            {"bind": connection, "join_transaction_mode": "create_savepoint", "class_": _ConnectionBoundSession}
        )
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def committed_db(app):
    """For tests that need real commits (threads, subprocesses): tables are emptied afterwards."""
    from cairn.db import db as _db

    with app.app_context():
        yield _db
        _db.session.remove()
        truncate_all(_db)


def truncate_all(_db) -> None:
    tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


class RequestScopedClient(FlaskClient):
    """A test client whose requests each start with an empty ``g``, as on a server. The tests hold an
    app context open (for the per-test transaction), which requests would otherwise share: the
    signed-in user (Flask-Login) and the CSRF token (Flask-WTF) cached in ``g`` would leak from one
    request into the next."""

    def open(self, *args, **kwargs):
        from flask import g, has_app_context

        if has_app_context():  # threads of a test open without the test's context
            vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app, db):
    app.test_client_class = RequestScopedClient
    return app.test_client()


_counter = itertools.count(1)


class Factory:
    """Builds users, tokens and CIs through the services, as the API would."""

    def __init__(self, db):
        self.db = db

    def user(self, role="agent", email=None, name=""):
        from cairn.auth.services import create_user

        user = create_user(email or f"{role}{next(_counter)}@example.com", role, name)
        self.db.session.commit()
        return user

    def token(self, user, **kwargs):
        from cairn.auth.services import create_token

        _, secret = create_token(user, **kwargs)
        self.db.session.commit()
        return secret

    def headers(self, role="admin", user=None):
        user = user or self.user(role)
        return {"Authorization": f"Bearer {self.token(user)}"}

    def team(self, name=None, members=()):
        from cairn.auth.services import create_team

        team = create_team(name or f"Team {next(_counter)}", member_ids=[m.id for m in members])
        self.db.session.commit()
        return team

    def ci(self, ci_class="server", name=None, **fields):
        from cmdb.services import create_ci

        ci = create_ci({"name": name or f"{ci_class}-{next(_counter)}", "ci_class": ci_class, **fields})
        self.db.session.commit()
        return ci

    def location(self, name=None, kind="site", parent=None):
        from cmdb.services import create_location

        location = create_location(
            {
                "name": name or f"{kind}-{next(_counter)}",
                "kind": kind,
                "parent_id": parent.id if parent else None,
            }
        )
        self.db.session.commit()
        return location


@pytest.fixture
def make(db):
    return Factory(db)


@pytest.fixture
def admin(make):
    return make.headers("admin")


@pytest.fixture
def committed_make(committed_db):
    """Factory whose objects are really committed (seen by other connections and processes)."""
    return Factory(committed_db)


@pytest.fixture
def committed_client(app, committed_db):
    return app.test_client()


@pytest.fixture
def redis_url():
    import redis

    connection = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: run `make test`, which starts it")
    connection.flushdb()
    yield REDIS_TEST_URL
    connection.flushdb()


@pytest.fixture
def asking(app):
    """Set this process to ask its graph questions of the graph host on a path (relations.graphd),
    or to answer them itself with "", its caches emptied."""
    from relations import answers, graphd
    from relations.graph import forget_graphs

    def use(path: str) -> None:
        app.config[graphd.SOCKET_SETTING] = path
        forget_graphs()
        answers.forget()

    yield use
    use("")
    graphd.close_connections()
