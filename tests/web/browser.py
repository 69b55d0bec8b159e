"""The web desk's test harness: the deployed server (gunicorn, two workers, its own database), Debian's
Chromium through Playwright, screenshots a person looks at, and an axe-core accessibility check.

The fixtures in tests/web/conftest.py are built from what is here; tests import the helpers
(`shoot`, `assert_accessible`, `console_errors`) from this module."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, _backend, _fresh_postgres_database
from tests.deploy.topology import Deployment
from tests.web.pages import PASSWORD  # the one password of every web test's users

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "web" / "output"
AXE_JS = ROOT / "web" / "static" / "vendor" / "axe-core" / "axe.min.js"

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, never a browser Playwright downloads (`playwright install` is not used).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def backend() -> str:
    return _backend()


# The server ---------------------------------------------------------------------------------------


@dataclass
class WebServer:
    """The app as it is deployed (gunicorn, two workers, embedded runner, inline jobs) on a database
    of its own, and a scratch app on that database to create data with."""

    url: str
    database_url: str
    backend: str
    deployment: Deployment
    app: Any = field(repr=False)
    log_dir: Path = field(repr=False)

    def seed(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` as one unit of work on the server's database (in an app context
        of the scratch app) and commit; return what it returns. Return plain values (ids, e-mails),
        not ORM objects: they are detached once this returns."""
        from cairn.db import sqlite_begin_immediate
        from cairn.uow import command

        # The servers' processes write too: on SQLite take the write lock up front and wait for it.
        immediate = sqlite_begin_immediate.set(True)
        try:
            with self.app.app_context():
                return command(fn)(*args, **kwargs)
        finally:
            sqlite_begin_immediate.reset(immediate)

    def user(self, role: str = "agent", email: str | None = None, name: str = "", password: str = PASSWORD):
        """A user who can sign in: ``.id``, ``.email``, ``.password``, ``.role``, ``.name``."""
        from cairn.auth.services import create_user

        email = email or f"{role}-{time.monotonic_ns()}@example.com"

        def make():
            user = create_user(email, role, name, password=password)
            return SimpleNamespace(id=user.id, email=user.email, name=user.name, role=user.role, password=password)

        return self.seed(make)


def start_web_server() -> WebServer:
    """Create a database, migrate it with `cairn db upgrade`, start gunicorn on a free port. The caller
    must `stop_web_server` it."""
    from cairn.app import create_app
    from cairn.config import Config

    kind = backend()
    instance_dir = Path(tempfile.mkdtemp(prefix="cairn-web-"))
    log_dir = OUTPUT / kind / "_server"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    if kind == "postgresql":
        database_url = _fresh_postgres_database(_pg_name())
    else:
        database_url = f"sqlite:///{instance_dir / 'web.db'}"
    # No Redis: jobs run inline and periodic work on the embedded runner of each gunicorn worker.
    # Tokens and sessions are re-checked on every request, so what a test seeds is seen at once.
    # Webhooks may target the tests' receivers on loopback (tests/peers.py Receiver).
    deployment = Deployment(
        database_url,
        instance_dir,
        log_dir,
        redis=False,
        CAIRN_TOKEN_REMEMBER_SECONDS=0,
        CAIRN_WEBHOOK_ALLOW_PRIVATE=1,
    )
    app = None
    try:
        migrated = deployment.cli("db", "upgrade")
        if migrated.returncode != 0:
            raise RuntimeError(f"`cairn db upgrade` failed:\n{migrated.stdout}\n{migrated.stderr}")
        deployment.start_web(workers=2)
        app = create_app(
            Config(
                SQLALCHEMY_DATABASE_URI=database_url,
                INSTANCE_PATH=instance_dir,
                REDIS_URL=None,
                SECRET_KEY=deployment.env["SECRET_KEY"],
                LOG_LEVEL="WARNING",
            )
        )
    except BaseException:
        _teardown(deployment, app, kind, instance_dir)
        raise
    return WebServer(deployment.url, database_url, kind, deployment, app, log_dir)


def stop_web_server(server: WebServer) -> None:
    _teardown(server.deployment, server.app, server.backend, Path(server.deployment.env["CAIRN_INSTANCE_PATH"]))


def _pg_name() -> str:
    return f"cairn_web_{os.getpid()}"


def _teardown(deployment: Deployment, app, kind: str, instance_dir: Path) -> None:
    deployment.close()
    if app is not None:
        from cairn.db import db

        with app.app_context():
            db.engine.dispose()
    if kind == "postgresql":
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_name()}" WITH (FORCE)'))
        admin.dispose()
    shutil.rmtree(instance_dir, ignore_errors=True)


# The browser --------------------------------------------------------------------------------------


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def open_page(browser, base_url: str):
    """A page in a fresh context (no cookies; 1280x800, en-US, UTC, light) whose relative URLs go to
    ``base_url`` and whose console errors are recorded. Close it with ``page.context.close()``."""
    context = browser.new_context(
        base_url=base_url, viewport=VIEWPORT, locale="en-US", timezone_id="UTC", color_scheme="light"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch_console(page)
    return page


_ERRORS = "_cairn_console_errors"


def watch_console(page) -> None:
    """Record the page's console errors and uncaught exceptions (a CSP violation is one)."""
    errors: list[str] = []
    setattr(page, _ERRORS, errors)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))


def console_errors(page) -> list[str]:
    """What the page logged as errors so far (`page` from the fixture, or after `watch_console`)."""
    return list(getattr(page, _ERRORS, []))


# Screenshots --------------------------------------------------------------------------------------

_shots: dict[str, int] = {}
_folders: dict[Path, str] = {}


def _current_test() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0] or "outside-a-test"


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-")[:120] or "shot"


def shot_dir(nodeid: str | None = None) -> Path:
    """tests/web/output/<database>/<test name>/ of the running test."""
    nodeid = nodeid or _current_test()
    return OUTPUT / backend() / _slug(nodeid.rsplit("::", 1)[-1])


def shoot(page, name: str) -> Path:
    """A full-page PNG of ``page`` as tests/web/output/<database>/<test>/<nn>-<name>.png, numbered in
    the order a test takes them (the test's earlier run's pictures are removed at its first)."""
    nodeid = _current_test()
    folder = shot_dir(nodeid)
    owner = _folders.setdefault(folder, nodeid)
    if owner != nodeid:
        raise AssertionError(f"{nodeid} and {owner} would share {folder}: give one of them another name")
    if nodeid not in _shots:
        shutil.rmtree(folder, ignore_errors=True)
        _shots[nodeid] = 0
    _shots[nodeid] += 1
    path = folder / f"{_shots[nodeid]:02d}-{_slug(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


# Accessibility ------------------------------------------------------------------------------------

FAILING_IMPACTS = ("serious", "critical")


def _inject_axe(page) -> None:
    # `page.add_script_tag` adds an inline <script>, which the pages' Content-Security-Policy
    # (script-src 'self') blocks. Evaluated through the DevTools protocol, the vendored file is not
    # subject to the page's CSP, and the page keeps enforcing its CSP for everything else.
    source = AXE_JS.read_text(encoding="utf-8") + "\n;undefined"
    for frame in page.frames:
        if not frame.is_detached() and not frame.evaluate("() => typeof window.axe === 'object'"):
            frame.evaluate(source)


def axe_violations(page, *, disable_rules: tuple[str, ...] = ()) -> list[dict]:
    """Every axe-core violation on the page as it is now (all impacts)."""
    if not AXE_JS.is_file():
        raise AssertionError(f"{AXE_JS} is missing: run web/vendor/refresh.sh")
    _inject_axe(page)
    return page.evaluate(
        """async (disabled) => {
            const rules = Object.fromEntries(disabled.map((id) => [id, {enabled: false}]));
            const results = await axe.run(document, {resultTypes: ['violations'], rules});
            return results.violations;
        }""",
        list(disable_rules),
    )


def describe(violations: list[dict], nodes: int = 3) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} node(s)] {v.get('helpUrl', '')}")
        for node in v["nodes"][:nodes]:
            target = " ".join(map(str, node.get("target", [])))
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}: {summary[:200]}")
    return "\n".join(lines)


def assert_accessible(
    page, *, disable_rules: tuple[str, ...] = (), impacts: tuple[str, ...] = FAILING_IMPACTS
) -> list[dict]:
    """Run axe-core on the page; fail on any violation whose impact is serious or critical, naming the
    rule, its impact and help, and the first offending elements. Returns all violations found (the
    minor and moderate ones too) for a test that wants to look at them."""
    violations = axe_violations(page, disable_rules=disable_rules)
    failing = [v for v in violations if v.get("impact") in impacts]
    if failing:
        raise AssertionError(f"{len(failing)} accessibility violation(s) on {page.url}:\n{describe(failing)}")
    return violations


def check_page(page, name: str, phone: bool = False) -> None:
    """Photograph the page as ``name``, run axe-core on it and fail on console errors (CSP included);
    with ``phone`` also at a phone's width (390 px), then back to the desktop's."""
    shoot(page, name)
    assert_accessible(page)
    if phone:
        page.set_viewport_size(PHONE)
        shoot(page, f"{name}-phone")
        assert_accessible(page)
        page.set_viewport_size(VIEWPORT)
    assert console_errors(page) == []


def sign_in(page, user) -> None:
    """Sign ``user`` (with ``.email`` and ``.password``) in through the sign-in form, as a person does."""
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
