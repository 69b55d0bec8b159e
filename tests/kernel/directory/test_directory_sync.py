"""`cairn directory sync` against a real slapd: users created and updated with their attributes,
roles and teams moved per the group mappings, leavers and disabled users deactivated (never
deleted) and locked out of the desk and the API at once; a dry run changes nothing; the report
is printed and lands in the change log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cairn.auth.models import AuthEvent, User
from cairn.directory.models import DirectorySyncRun
from cairn.directory.services import create_mapping
from tests.kernel.directory.conftest import web_sign_in
from tests.kernel.directory.slapd import PASSWORDS, dn, group, start_slapd


@pytest.fixture
def own_directory(directory, tmp_path):
    """A slapd of this test's own (the test changes its entries)."""
    server = start_slapd(tmp_path / "slapd")
    directory(**server.settings())
    yield server
    server.stop()


@pytest.fixture
def mapped(db, make):
    desk, admins = make.team("Service Desk"), make.team("Admins")
    create_mapping(group("admins"), role="admin", team_id=admins.id)
    create_mapping(group("helpdesk"), role="agent", team_id=desk.id)
    db.session.commit()
    return {"desk": desk, "admins": admins}


def _sync(app, *args):
    result = app.test_cli_runner().invoke(args=["directory", "sync", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _users(db) -> dict[str, User]:
    db.session.expire_all()
    return {u.email: u for u in db.session.scalars(select(User).where(User.source == "ldap"))}


def test_sync_creates_users_with_attributes_roles_teams_and_managers(app, db, make, own_directory, mapped):
    local = make.user("agent", email="local@example.com")
    output = _sync(app)
    users = _users(db)
    assert set(users) == {"alice@example.org", "bob@example.org", "erin@example.org"}, "no carol, no dave"
    alice, bob, erin = users["alice@example.org"], users["bob@example.org"], users["erin@example.org"]
    assert (alice.role, [t.name for t in alice.teams]) == ("admin", ["Admins"])
    assert (bob.role, [t.name for t in bob.teams]) == ("agent", ["Service Desk"])
    assert (erin.role, erin.teams) == ("requester", [])
    assert bob.directory_profile.manager_id == alice.id and erin.directory_profile.manager_id == bob.id
    assert alice.directory_profile.phone == "+33 1 23 45 67 89"
    assert "created alice@example.org" in output and "skipped uid=carol" in output
    assert "created 3" in output and "skipped 1" in output
    assert local.active and local.source == "local"
    run = db.session.scalars(select(DirectorySyncRun)).one()
    assert run.counts["created"] == 3
    logged = db.session.scalars(select(ChangeLog).where(ChangeLog.object_type == "directory_sync_run")).one()
    assert "created 3" in logged.summary
    # a second sync finds nothing to change and records no run
    assert "unchanged 3" in _sync(app)
    assert db.session.scalars(select(DirectorySyncRun)).all() == [run]


def test_sync_moves_roles_and_teams_and_updates_attributes(app, db, own_directory, mapped):
    _sync(app)
    own_directory.ldapmodify(
        f"dn: {group('admins')}\nchangetype: modify\nadd: member\nmember: {dn('erin')}\n\n"
        f"dn: {group('l1-helpdesk')}\nchangetype: modify\ndelete: member\nmember: {dn('bob')}\n\n"
        f"dn: {dn('erin')}\nchangetype: modify\nreplace: displayName\ndisplayName: Erin Boss\n"
    )
    output = _sync(app)
    users = _users(db)
    erin, bob = users["erin@example.org"], users["bob@example.org"]
    assert (erin.role, erin.name, [t.name for t in erin.teams]) == ("admin", "Erin Boss", ["Admins"])
    assert (bob.role, bob.teams, bob.active) == ("requester", [], True)
    assert "updated 2" in output and "role -> admin" in output


def test_leavers_and_disabled_users_are_deactivated_and_locked_out(app, db, client, own_directory, mapped):
    from cairn.auth.services import create_token

    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 302
    bob = _users(db)["bob@example.org"]
    _token, secret = create_token(bob, "script")
    db.session.commit()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    assert client.get("/account").status_code == 200
    _sync(app)
    own_directory.ldapmodify(
        f"dn: {dn('bob')}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n\n"
        f"dn: {dn('erin')}\nchangetype: delete\n"
    )
    output = _sync(app)
    assert "deactivated bob@example.org: disabled in the directory" in output
    assert "deactivated erin@example.org: left the directory" in output
    users = _users(db)
    assert not users["bob@example.org"].active and not users["erin@example.org"].active, "deactivated, not deleted"
    # locked out of the API and the desk at once
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    answer = client.get("/account")
    assert answer.status_code == 302 and "/login" in answer.location
    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 401
    events = db.session.scalars(select(AuthEvent).where(AuthEvent.kind == "deactivated")).all()
    assert sorted((e.email, e.reason) for e in events) == [
        ("bob@example.org", "disabled in the directory"),
        ("erin@example.org", "left the directory"),
    ]
    # enabled again in the directory: the next sync gives the account back (not its old token)
    own_directory.ldapmodify(f"dn: {dn('bob')}\nchangetype: modify\ndelete: employeeType\n")
    assert "reactivated bob@example.org" in _sync(app)
    assert _users(db)["bob@example.org"].active
    assert client.get("/api/v1/me", headers=bearer).status_code == 401


def test_a_user_an_admin_deactivated_stays_deactivated(app, db, client, make, own_directory, mapped):
    _sync(app)
    erin = _users(db)["erin@example.org"]
    headers = make.headers("admin")
    assert client.patch(f"/api/v1/users/{erin.id}", json={"active": False}, headers=headers).status_code == 200
    assert "reactivated erin" not in _sync(app)
    assert not _users(db)["erin@example.org"].active


def test_an_admins_deactivation_after_a_directory_one_is_the_admins(app, db, client, make, own_directory, mapped):
    _sync(app)
    erin = _users(db)["erin@example.org"]
    disable = f"dn: {dn('erin')}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n"
    own_directory.ldapmodify(disable)
    assert "deactivated erin@example.org" in _sync(app)
    own_directory.ldapmodify(f"dn: {dn('erin')}\nchangetype: modify\ndelete: employeeType\n")
    headers = make.headers("admin")
    assert client.patch(f"/api/v1/users/{erin.id}", json={"active": True}, headers=headers).status_code == 200
    _sync(app)  # finds erin active and enabled: what the directory did is over
    assert client.patch(f"/api/v1/users/{erin.id}", json={"active": False}, headers=headers).status_code == 200
    assert "reactivated erin" not in _sync(app)
    assert not _users(db)["erin@example.org"].active


def test_dry_run_changes_nothing_and_says_what_would_change(app, db, own_directory, mapped):
    before = db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1))
    output = _sync(app, "--dry-run")
    assert "created alice@example.org" in output and "dry run, nothing changed: created 3" in output
    assert _users(db) == {}
    assert db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1)) == before
    assert db.session.scalars(select(DirectorySyncRun)).all() == []


def test_sync_with_the_directory_down_fails_and_changes_nothing(app, db, own_directory, mapped):
    _sync(app)
    own_directory.stop()
    result = app.test_cli_runner().invoke(args=["directory", "sync"])
    assert result.exit_code == 1 and "directory unavailable" in result.output
    assert all(u.active for u in _users(db).values())


def test_a_listing_cut_short_by_a_size_limit_deactivates_nobody(app, db, directory, own_directory, mapped, tmp_path):
    _sync(app)
    limited = start_slapd(tmp_path / "limited", service_size_limit=2)
    try:
        directory(**limited.settings())
        result = app.test_cli_runner().invoke(args=["directory", "sync"])
    finally:
        limited.stop()
    assert result.exit_code == 1 and "size limit" in result.output
    assert all(u.active for u in _users(db).values()) and len(_users(db)) == 3


def test_the_periodic_job_syncs_when_configured(app, db, directory, own_directory, mapped):
    from cairn.directory.tasks import sync_directory
    from cairn.jobs.schedule import PERIODIC_JOBS

    assert "cairn.directory.tasks.sync_directory" in dict(PERIODIC_JOBS)
    assert sync_directory()["created"] == 3
    directory(CAIRN_LDAP_URL=None)
    assert sync_directory() is None
