"""A directory user in a real browser against the deployed app (gunicorn, two workers) pointed at a
real slapd: the first sign-in through the form creates the account with its mapped role; after the
directory disables the user, the next `cairn directory sync` locks the open session out."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, _fresh_postgres_database
from tests.deploy.topology import Deployment
from tests.kernel.directory.slapd import PASSWORDS, dn, group, start_slapd
from tests.web.browser import OUTPUT, backend, shoot, sign_in


@pytest.fixture(scope="module")
def directory_server(tmp_path_factory):
    """slapd, and the deployed app configured for it on a database of its own."""
    slapd = start_slapd(tmp_path_factory.mktemp("slapd"))
    instance_dir = Path(tempfile.mkdtemp(prefix="cairn-web-dir-"))
    pg_name = f"cairn_web_directory_{os.getpid()}"
    kind = backend()
    database_url = _fresh_postgres_database(pg_name) if kind == "postgresql" else f"sqlite:///{instance_dir / 'web.db'}"
    log_dir = OUTPUT / kind / "_directory_server"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    deployment = Deployment(
        database_url, instance_dir, log_dir, redis=False, CAIRN_TOKEN_REMEMBER_SECONDS=0, **slapd.settings()
    )
    try:
        assert deployment.cli("db", "upgrade").returncode == 0
        made = deployment.cli("directory", "mappings", "add", group("helpdesk"), "--role", "agent")
        assert made.returncode == 0, made.stderr
        deployment.start_web(workers=2)
        yield deployment, slapd
    finally:
        deployment.close()
        slapd.stop()
        if kind == "postgresql":
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(instance_dir, ignore_errors=True)


def test_a_directory_user_signs_in_and_is_locked_out_after_the_sync(browser, directory_server):
    from playwright.sync_api import expect

    from tests.web.browser import open_page

    deployment, slapd = directory_server
    page = open_page(browser, deployment.url)
    try:
        page.goto("/login")
        page.get_by_label("E-mail").fill("bob@example.org")
        page.get_by_label("Password").fill(PASSWORDS["bob"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        page.goto("/account")
        expect(page.locator("#directory-password")).to_contain_text("change your password there")
        shoot(page, "directory-user-account")
        slapd.ldapmodify(f"dn: {dn('bob')}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
        synced = deployment.cli("directory", "sync")
        assert synced.returncode == 0, synced.stderr
        assert "deactivated bob@example.org: disabled in the directory" in synced.stdout
        page.goto("/account")
        expect(page.get_by_label("E-mail")).to_be_visible()  # back at the sign-in form
        assert "/login" in page.url
        page.get_by_label("E-mail").fill("bob@example.org")
        page.get_by_label("Password").fill(PASSWORDS["bob"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("The e-mail or the password is wrong.")).to_be_visible()
        shoot(page, "directory-user-locked-out")
        # a local admin sees where each account comes from
        made = deployment.cli(
            "users", "create", "boss@example.com", "--role", "admin", "--password", "a local admin password"
        )
        assert made.returncode == 0, made.stderr
        sign_in(page, SimpleNamespace(email="boss@example.com", password="a local admin password"))
        page.goto("/admin/users")
        row = page.get_by_role("row").filter(has_text="bob@example.org")
        expect(row).to_contain_text("LDAP")
        expect(row).to_contain_text("deactivated")
        shoot(page, "admin-users-with-sources")
        row.get_by_role("link", name="bob@example.org").click()
        expect(page.locator("#user-source")).to_contain_text(f"the directory (LDAP): {dn('bob')}")
        expect(page.get_by_text("their password is changed there, not in Cairn")).to_be_visible()
        shoot(page, "admin-directory-user")
    finally:
        page.context.close()
