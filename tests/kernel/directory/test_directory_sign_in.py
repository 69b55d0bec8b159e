"""Sign-in by bind against a real slapd, through the web desk's sign-in form: search-then-bind and
direct bind, StartTLS and LDAPS with a CA the test made, an untrusted certificate refused, the
first sign-in creating the user with the role and team its (nested) groups map to, and local
accounts signing in while the directory is down."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cairn.auth.models import AuthEvent, User
from cairn.directory.services import create_mapping
from tests.kernel.directory.conftest import web_sign_in
from tests.kernel.directory.slapd import PASSWORDS, PEOPLE, group, start_slapd
from tests.web.pages import PASSWORD, sign_in


def _events(db, kind: str) -> list[AuthEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuthEvent).where(AuthEvent.kind == kind).order_by(AuthEvent.id)))


def _user(db, email: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


@pytest.fixture
def mapped(db, make):
    """admins -> admin; helpdesk (bob is in it through l1-helpdesk) -> agent and team Service Desk."""
    desk = make.team("Service Desk")
    create_mapping(group("admins"), role="admin")
    create_mapping(group("helpdesk"), role="agent", team_id=desk.id)
    db.session.commit()
    return desk


def test_first_sign_in_creates_the_user_with_role_and_team_from_nested_groups(client, db, directory, mapped):
    answer = web_sign_in(client, "bob@example.org", PASSWORDS["bob"])
    assert answer.status_code == 302, answer.get_data(as_text=True)[:400]
    bob = _user(db, "bob@example.org")
    assert (bob.source, bob.role, bob.name) == ("ldap", "agent", "Bob Tech")
    assert [t.name for t in bob.teams] == ["Service Desk"], "helpdesk holds l1-helpdesk, which holds bob"
    assert bob.external_id and len(bob.external_id) == 36  # the entryUUID
    assert bob.password_hash is None, "the directory's password is never stored"
    assert bob.directory_profile.department == "Service desk"
    assert client.get("/").status_code in (200, 302) and client.get("/account").status_code == 200
    signed = _events(db, "sign_in")
    assert [(e.email, e.user_id) for e in signed] == [("bob@example.org", bob.id)]


def test_a_user_in_no_mapped_group_is_a_requester_and_the_second_sign_in_reuses_it(client, db, directory, mapped):
    assert web_sign_in(client, "erin@example.org", PASSWORDS["erin"]).status_code == 302
    erin = _user(db, "erin@example.org")
    assert (erin.role, erin.teams) == ("requester", [])
    client.post("/logout", data={"csrf_token": _csrf(client)})
    assert web_sign_in(client, "erin@example.org", PASSWORDS["erin"]).status_code == 302
    assert db.session.scalars(select(User).where(User.email == "erin@example.org")).all() == [erin]


def _csrf(client):
    from tests.web.pages import csrf_token

    return csrf_token(client, "/account")


def test_the_directory_says_no(client, db, directory, mapped):
    assert web_sign_in(client, "alice@example.org", "not her password").status_code == 401
    assert web_sign_in(client, "nobody@example.org", "whatever-password").status_code == 401
    assert web_sign_in(client, "alice@example.org", "").status_code == 401, "an empty password never binds"
    # carol has no e-mail: she is found by uid, her password is right, and she is still refused
    assert web_sign_in(client, "carol", PASSWORDS["carol"]).status_code == 401
    # dave's entry is disabled (CAIRN_LDAP_DISABLED_FILTER)
    assert web_sign_in(client, "dave@example.org", PASSWORDS["dave"]).status_code == 401
    reasons = [(e.email, e.reason) for e in _events(db, "sign_in_failed")]
    assert reasons == [
        ("alice@example.org", "wrong password"),
        ("nobody@example.org", "unknown e-mail"),
        ("alice@example.org", "wrong password"),
        ("carol", "no e-mail in directory"),
        ("dave@example.org", "disabled in directory"),
    ]
    assert db.session.scalars(select(User).where(User.source == "ldap")).all() == [], "nothing created"
    assert not any("not her password" in e.reason for e in _events(db, "sign_in_failed"))


def test_direct_bind_with_a_dn_template_over_ldaps(client, db, slapd, directory, mapped):
    directory(
        CAIRN_LDAP_URL=slapd.tls_url,
        CAIRN_LDAP_START_TLS="false",
        CAIRN_LDAP_BIND_DN=None,
        CAIRN_LDAP_BIND_PASSWORD=None,
        CAIRN_LDAP_USER_DN_TEMPLATE=f"uid={{username}},{PEOPLE}",
    )
    assert web_sign_in(client, "bob@example.org", "wrong password").status_code == 401
    assert web_sign_in(client, "alice@example.org", PASSWORDS["alice"]).status_code == 302
    alice = _user(db, "alice@example.org")
    assert (alice.source, alice.role, alice.name) == ("ldap", "admin", "Alice Admin")
    assert alice.directory_profile.phone == "+33 1 23 45 67 89"


def test_a_certificate_from_an_untrusted_ca_or_for_another_host_is_refused(client, db, slapd, directory, mapped):
    directory(CAIRN_LDAP_CA_FILE=str(slapd.certificates["other_ca"]))
    answer = web_sign_in(client, "bob@example.org", PASSWORDS["bob"])
    assert answer.status_code == 503
    assert "directory cannot be reached" in answer.get_data(as_text=True)
    directory(CAIRN_LDAP_URL=slapd.tls_url, CAIRN_LDAP_START_TLS="false", CAIRN_LDAP_CA_FILE=None)
    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 503, "system store: untrusted"
    # the right CA, but the certificate names another host (localhost, not 127.0.0.1)
    directory(
        CAIRN_LDAP_URL=slapd.tls_url.replace("localhost", "127.0.0.1"), CAIRN_LDAP_CA_FILE=str(slapd.certificates["ca"])
    )
    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 503, "host name checked"
    assert _user(db, "bob@example.org") is None
    assert [e.reason for e in _events(db, "sign_in_failed")] == ["directory unavailable"] * 3
    directory(CAIRN_LDAP_URL=slapd.tls_url)
    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 302, "and the right name works"


def test_local_admins_sign_in_while_the_directory_is_down(client, db, make, directory, mapped, tmp_path):
    own = start_slapd(tmp_path / "slapd")
    try:
        directory(**own.settings())
        assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 302
        client.post("/logout", data={"csrf_token": _csrf(client)})
    finally:
        own.stop()
    admin = make.user("admin", email="local-admin@example.com")
    sign_in(client, admin)  # local password, no directory needed
    client.post("/logout", data={"csrf_token": _csrf(client)})
    answer = web_sign_in(client, "bob@example.org", PASSWORDS["bob"])
    assert answer.status_code == 503
    assert "The directory cannot be reached" in answer.get_data(as_text=True)
    failed = _events(db, "sign_in_failed")
    assert [(e.email, e.reason) for e in failed] == [("bob@example.org", "directory unavailable")]
    assert failed[0].user_id == _user(db, "bob@example.org").id
    assert [e.email for e in _events(db, "sign_in")] == ["bob@example.org", admin.email]
    assert PASSWORD not in str([(e.reason, e.email) for e in failed])


def test_a_user_created_meanwhile_by_a_sync_is_found_not_doubled(client, db, directory, mapped, monkeypatch):
    """The race of a first sign-in with a sync creating the same user: the sign-in's lookup ran
    before the sync committed (simulated by a lookup that misses once), its insert then collides,
    and the sign-in applies the entry again, to the user the sync made."""
    from cairn.directory import services

    assert services.sync().counts["created"] == 3
    db.session.commit()
    real_find, misses = services._find, []

    def stale_once(entry, known):
        if not misses:
            misses.append(entry.email)
            return None
        return real_find(entry, known)

    monkeypatch.setattr(services, "_find", stale_once)
    assert web_sign_in(client, "bob@example.org", PASSWORDS["bob"]).status_code == 302
    assert misses == ["bob@example.org"]
    assert len(db.session.scalars(select(User).where(User.email == "bob@example.org")).all()) == 1
