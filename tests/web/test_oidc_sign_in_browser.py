"""OpenID Connect sign-in in a real browser: the deployed app (gunicorn, two workers) and a real
provider, the `oidc-provider` npm package (tests/oidc/provider.mjs) with its own login and consent
pages, both on free ports. The first sign-in creates the user with the role and team its groups
claim maps to; sign-out ends the provider's session too (the next sign-in asks for the login
again); a deactivated user is refused; a replayed or forged answer ends on a clear page, signed in
as nobody."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from tests.conftest import PG_ADMIN_URL, _fresh_postgres_database
from tests.deploy.topology import Deployment
from tests.oidc.servers import NodeProvider
from tests.web.browser import OUTPUT, assert_accessible, backend, console_errors, shoot

ACCOUNTS = {
    "alice": {"email": "alice@example.org", "name": "Alice Agent", "groups": ["helpdesk"]},
    "olga": {"email": "olga@example.org", "name": "Olga Owner", "groups": ["staff"]},
}


@pytest.fixture(scope="module")
def oidc_site(tmp_path_factory):
    """The deployed app configured for a running oidc-provider, on a database of its own; a
    scratch app on that database (``seed``) and the provider."""
    from cairn.app import create_app
    from cairn.config import Config

    instance_dir = Path(tempfile.mkdtemp(prefix="cairn-web-oidc-"))
    pg_name = f"cairn_web_oidc_{os.getpid()}"
    kind = backend()
    database_url = _fresh_postgres_database(pg_name) if kind == "postgresql" else f"sqlite:///{instance_dir / 'web.db'}"
    log_dir = OUTPUT / kind / "_oidc_server"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    deployment = Deployment(database_url, instance_dir, log_dir, redis=False, CAIRN_TOKEN_REMEMBER_SECONDS=0)
    provider = NodeProvider(
        ACCOUNTS,
        [f"{deployment.url}/login/oidc/callback"],
        [f"{deployment.url}/login"],
        log_dir / "oidc-provider.log",
    )
    app = None
    try:
        deployment.env.update(provider.settings(CAIRN_OIDC_CREATE_USERS="true"))
        assert deployment.cli("db", "upgrade").returncode == 0
        app = create_app(
            Config(
                SQLALCHEMY_DATABASE_URI=database_url,
                INSTANCE_PATH=instance_dir,
                REDIS_URL=None,
                SECRET_KEY="test-secret",
                LOG_LEVEL="WARNING",
            )
        )

        def seed(fn):
            from cairn.uow import command

            with app.app_context():
                return command(fn)()

        def mappings():
            from cairn.auth.services import create_team
            from cairn.directory.services import create_mapping

            desk = create_team("Service Desk")
            create_mapping("helpdesk", role="agent", team_id=desk.id, source="oidc")

        seed(mappings)
        deployment.start_web(workers=2)
        yield deployment, provider, seed
    finally:
        deployment.close()
        provider.stop()
        if app is not None:
            from cairn.db import db

            with app.app_context():
                db.engine.dispose()
        if kind == "postgresql":
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(instance_dir, ignore_errors=True)


def _open(browser, url):
    from tests.web.browser import open_page

    page = open_page(browser, url)
    # the provider's pages @import a web font: no internet here, and nothing to wait for
    page.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    return page


def _at_provider_sign_in(page, login: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Sign in with Test SSO").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.get_by_role("button", name="Sign-in").click()
    _consent_if_asked(page)


def _consent_if_asked(page) -> None:
    """The provider's consent page, the first time: continue (then the browser is back at Cairn)."""
    from playwright.sync_api import expect

    either = page.locator("button:has-text('Continue'), button:has-text('Sign out'), #oidc-refused")
    expect(either.first).to_be_visible()
    consent = page.get_by_role("button", name="Continue")
    if consent.count():
        consent.click()


def _user(seed, email):
    from cairn.auth.models import User
    from cairn.db import db

    def read():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            return None
        return (user.source, user.external_id, user.role, user.active, [t.name for t in user.teams])

    return seed(read)


def test_sign_in_with_the_provider_creates_the_user_and_sign_out_ends_both_sessions(browser, oidc_site):
    from playwright.sync_api import expect

    deployment, provider, seed = oidc_site
    page = _open(browser, deployment.url)
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/login/oidc/callback" in r.url else None)
    try:
        page.goto("/login")
        expect(page.get_by_role("link", name="Sign in with Test SSO")).to_be_visible()
        shoot(page, "sign-in-page-with-provider")
        assert_accessible(page)
        page.get_by_role("link", name="Sign in with Test SSO").click()
        expect(page.locator("input[name=login]")).to_be_visible()
        shoot(page, "the-provider-asks-who-you-are")
        page.goto("/login")
        _at_provider_sign_in(page, "alice")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert page.url.startswith(deployment.url)
        shoot(page, "signed-in-through-the-provider")
        assert _user(seed, "alice@example.org") == ("oidc", "alice", "agent", True, ["Service Desk"])
        page.goto("/account")
        expect(page.locator("#directory-password")).to_contain_text("change your password there")
        assert page.get_by_label("Current password").count() == 0

        # the answer replayed: refused, nobody signed in
        assert len(callbacks) == 1
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Yes, sign me out")).to_be_visible()  # the provider asks
        shoot(page, "provider-sign-out")
        page.get_by_role("button", name="Yes, sign me out").click()
        expect(page.get_by_role("link", name="Sign in with Test SSO")).to_be_visible()  # back at Cairn
        assert page.url == f"{deployment.url}/login"
        page.goto(callbacks[0])
        expect(page.locator("#oidc-refused")).to_contain_text("Sign-in refused")
        expect(page.locator("#oidc-refused")).to_contain_text("You are not signed in.")
        shoot(page, "replayed-answer-refused")
        assert_accessible(page)
        # the provider's aborted web font and the refusal's own 400 are the only failed loads: no CSP violation
        assert [e for e in console_errors(page) if not e.startswith("Failed to load resource")] == []
        page.goto("/account")
        assert "/login" in page.url, "signed in as nobody"

        # the provider's session ended with Cairn's: it asks who you are again
        page.goto("/login")
        page.get_by_role("link", name="Sign in with Test SSO").click()
        expect(page.locator("input[name=login]")).to_be_visible()
        shoot(page, "provider-asks-again")
    finally:
        page.context.close()


def test_a_deactivated_user_and_a_forged_answer_are_refused(browser, oidc_site):
    from playwright.sync_api import expect

    deployment, provider, seed = oidc_site
    page = _open(browser, deployment.url)
    try:
        page.goto("/login")
        _at_provider_sign_in(page, "olga")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert _user(seed, "olga@example.org")[2:4] == ("requester", True), "no mapped group: a requester"

        def deactivate():
            from cairn.auth.models import User
            from cairn.auth.services import update_user
            from cairn.db import db

            update_user(db.session.scalar(select(User).where(User.email == "olga@example.org")), {"active": False})

        seed(deactivate)
        page.goto("/")
        expect(page.get_by_role("link", name="Sign in with Test SSO")).to_be_visible()  # her session ended
        page.get_by_role("link", name="Sign in with Test SSO").click()  # the provider still knows her
        _consent_if_asked(page)
        expect(page.locator("#oidc-refused")).to_contain_text("Your account is deactivated.")
        shoot(page, "deactivated-user-refused")
        page.goto("/login/oidc/callback?code=forged&state=forged")
        expect(page.locator("#oidc-refused")).to_contain_text("Start the sign-in again")
        shoot(page, "forged-answer-refused")
        page.goto("/account")
        assert "/login" in page.url
        assert _user(seed, "nobody@example.org") is None
    finally:
        page.context.close()
