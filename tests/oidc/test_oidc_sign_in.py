"""OpenID Connect sign-in against a real provider of our own over HTTP (tests/oidc/servers.py),
through the web desk's routes: just-in-time creation with the role and team the groups claim maps
to, later sign-ins updating them, refusals (no creation allowed, deactivated, a local account's
e-mail), every tampered answer refused with a clear page, nobody created and nobody signed in, the
discovery document and JWKS cached and the JWKS fetched again on a rotated key, sign-out at the
provider too."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from cairn.auth.models import AuthEvent, User
from cairn.directory.services import MappingRules, create_mapping
from tests.oidc.conftest import authorize, callback, sign_in, start
from tests.web.pages import csrf_token, post


def _events(db, kind: str | None = None) -> list[AuthEvent]:
    db.session.expire_all()
    stmt = select(AuthEvent).order_by(AuthEvent.id)
    if kind:
        stmt = stmt.where(AuthEvent.kind == kind)
    return list(db.session.scalars(stmt))


def _users(db) -> list[User]:
    db.session.expire_all()
    return list(db.session.scalars(select(User).order_by(User.id)))


def _signed_in(client) -> bool:
    answer = client.get("/account")
    return answer.status_code == 200


@pytest.fixture
def mapped(db, make):
    """oidc groups: "IT Admins" -> admin; "helpdesk" -> agent and team Service Desk; an LDAP mapping too."""
    desk = make.team("Service Desk")
    create_mapping("IT Admins", role="admin", source="oidc")
    create_mapping("helpdesk", role="agent", team_id=desk.id, source="oidc")
    create_mapping("cn=helpdesk,ou=groups,dc=example,dc=org", role="auditor")
    db.session.commit()
    return desk


def test_first_sign_in_creates_the_user_with_role_and_team_from_the_groups_claim(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    crafted.account["groups"] = ["Helpdesk", "unmapped"]
    location = start(client)
    assert "code_challenge_method=S256" in location and "nonce=" in location and "state=" in location
    answer = callback(client, authorize(location))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:400]
    carol = db.session.scalar(select(User).where(User.email == "carol@example.net"))
    assert (carol.source, carol.external_id, carol.role, carol.name) == ("oidc", "crafted-1", "agent", "Carol Crafted")
    assert [t.name for t in carol.teams] == ["Service Desk"]
    assert carol.password_hash is None
    assert _signed_in(client)
    assert [(e.email, e.user_id, e.reason) for e in _events(db, "sign_in")] == [
        ("carol@example.net", carol.id, "with OpenID Connect")
    ]
    assert crafted.fetches["/token"] == 1


def test_a_later_sign_in_follows_the_groups_and_reuses_the_user(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    crafted.account["groups"] = ["helpdesk"]
    assert sign_in(client).status_code == 302
    post(client, "/logout")
    crafted.account.update(groups=["it admins"], name="Carol Admin", email="carol.admin@example.net")
    assert sign_in(client).status_code == 302
    users = [u for u in _users(db) if u.source == "oidc"]
    assert [(u.email, u.name, u.role, [t.name for t in u.teams]) for u in users] == [
        ("carol.admin@example.net", "Carol Admin", "admin", [])
    ]
    post(client, "/logout")
    # a token without the groups claim leaves role and teams as they are (an admin's choice)
    crafted.spoil = {"drop": ["groups"]}
    assert sign_in(client).status_code == 302
    assert [u.role for u in _users(db) if u.source == "oidc"] == ["admin"]
    assert crafted.fetches["/.well-known/openid-configuration"] == 1, "the discovery document is cached"
    assert crafted.fetches["/jwks"] == 1, "so are the keys"


def test_an_oidc_admin_is_not_asked_for_a_second_factor_and_has_no_local_password(client, db, crafted, mapped):
    from cairn.auth.services import set_password
    from cairn.errors import Conflict

    crafted.configure(CAIRN_OIDC_CREATE_USERS="true", CAIRN_REQUIRE_2FA_FOR="admin")
    crafted.account["groups"] = ["IT Admins"]
    answer = sign_in(client)
    assert answer.status_code == 302 and "/login/code" not in answer.headers["Location"]
    assert client.get("/").status_code in (200, 302)
    assert "two-factor" not in (client.get("/").headers.get("Location") or "")
    carol = db.session.scalar(select(User).where(User.source == "oidc"))
    assert carol.role == "admin"
    with pytest.raises(Conflict):
        set_password(carol, "a local password of twelve+")
    assert post(client, "/logout").status_code == 200  # to the provider's sign-out
    answer = client.post(
        "/login", data={"email": carol.email, "password": "anything at all", "csrf_token": csrf_token(client)}
    )
    assert answer.status_code == 401, "no password sign-in for an OIDC account"
    assert _events(db, "sign_in_failed")[-1].reason == "signs in with oidc"


def test_without_just_in_time_creation_nobody_is_created(client, db, crafted, mapped):
    before = len(_users(db))
    answer = sign_in(client)
    assert answer.status_code == 403
    assert "There is no Cairn account for you" in answer.get_data(as_text=True)
    assert len(_users(db)) == before and not _signed_in(client)
    failed = _events(db, "sign_in_failed")
    assert [(e.email, e.reason) for e in failed] == [("carol@example.net", "oidc: no such user (creation not allowed)")]


def test_a_deactivated_user_is_refused(client, db, crafted, mapped, make):
    from cairn.auth.services import update_user

    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    assert sign_in(client).status_code == 302
    post(client, "/logout")
    carol = db.session.scalar(select(User).where(User.source == "oidc"))
    update_user(carol, {"active": False})
    db.session.commit()
    answer = sign_in(client)
    assert answer.status_code == 403 and "Your account is deactivated." in answer.get_data(as_text=True)
    assert not _signed_in(client)
    assert _events(db, "sign_in_failed")[-1].reason == "oidc: deactivated"


def test_a_local_account_with_the_same_e_mail_is_not_taken_over(client, db, crafted, make):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    from cairn.auth.services import set_password

    local = make.user("admin", email="carol@example.net")
    set_password(local, "a local password, kept by Cairn")
    db.session.commit()
    answer = sign_in(client)
    assert answer.status_code == 403 and not _signed_in(client)
    db.session.expire_all()
    assert (local.source, local.external_id) == ("local", None)
    assert _events(db, "sign_in_failed")[-1].reason == "oidc: e-mail of a local account"


OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
UNKNOWN_KEY = RSAKey.generate_key(2048, parameters={"kid": "not-published", "use": "sig", "alg": "RS256"})

TAMPERED = {
    "expired": ({"claims": {"exp": 1_000_000_000, "iat": 999_999_000}}, "expired ID token"),
    "signed-with-another-key": ({"key": OTHER_KEY}, "bad ID token signature"),
    "signed-with-an-unknown-key": ({"key": UNKNOWN_KEY}, "unknown signing key"),
    "wrong-audience": ({"claims": {"aud": "another-client"}}, "wrong audience"),
    "wrong-issuer": ({"claims": {"iss": "http://127.0.0.1:1/evil"}}, "wrong issuer"),
    "missing-nonce": ({"drop": ["nonce"]}, "missing nonce"),
    "wrong-nonce": ({"claims": {"nonce": "not the one Cairn gave"}}, "wrong nonce"),
    "issued-in-the-future": ({"claims": {"iat": 4_000_000_000, "exp": 4_000_000_300}}, "ID token issued in the future"),
    "hmac-signed": ({"alg": "HS256", "key": None}, "ID token algorithm HS256 refused"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_id_token_is_refused_and_creates_nothing(client, db, crafted, mapped, case):
    from joserfc.jwk import OctKey

    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    crafted.account["groups"] = ["IT Admins"]
    spoil, reason = TAMPERED[case]
    if case == "hmac-signed":
        spoil = {"alg": "HS256", "key": OctKey.import_key("a client secret for the tests", {"kid": "key-1"})}
    crafted.spoil = spoil
    before = {u.id for u in _users(db)}
    answer = sign_in(client)
    assert answer.status_code == 401, answer.get_data(as_text=True)[:300]
    page = answer.get_data(as_text=True)
    assert "Sign-in refused" in page and "You are not signed in." in page
    assert {u.id for u in _users(db)} == before, "nobody created"
    assert not _signed_in(client)
    assert _events(db, "sign_in") == []
    assert [e.reason for e in _events(db, "sign_in_failed")] == [f"oidc: {reason}"]
    if case == "signed-with-an-unknown-key":
        assert crafted.fetches["/jwks"] == 2, "an unknown key id: the JWKS fetched once more, not more"


def test_wrong_state_and_replays_are_refused(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    back = authorize(start(client))
    forged = back.replace("state=", "state=x")
    answer = callback(client, forged)
    assert answer.status_code == 400 and "Start the sign-in again" in answer.get_data(as_text=True)
    assert callback(client, back).status_code == 400, "the state is used up by the first answer, right or wrong"
    assert not _signed_in(client) and [u for u in _users(db) if u.source == "oidc"] == []
    # a sign-in that worked: its answer replayed is refused
    back = authorize(start(client))
    assert callback(client, back).status_code == 302
    post(client, "/logout")
    assert callback(client, back).status_code == 400
    # the used code with a fresh state: the provider refuses to redeem it twice
    fresh = authorize(start(client))
    fresh_state = fresh.split("state=")[1]
    replayed = back.split("state=")[0] + "state=" + fresh_state
    answer = callback(client, replayed)
    assert answer.status_code == 400 and "refused the sign-in code" in answer.get_data(as_text=True)
    assert not _signed_in(client)
    reasons = [e.reason for e in _events(db, "sign_in_failed")]
    assert reasons == [
        "oidc: wrong state",
        "oidc: no sign-in in progress",
        "oidc: no sign-in in progress",
        "oidc: code refused: invalid_grant",
    ]
    assert len([u for u in _users(db) if u.source == "oidc"]) == 1


def test_a_provider_that_is_down_gives_a_clear_502(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    crafted.down = True
    answer = client.get("/login/oidc")
    assert answer.status_code == 502 and "Sign-in provider unavailable" in answer.get_data(as_text=True)
    crafted.down = False
    back = authorize(start(client))
    crafted.down = True  # down between the provider's answer and the code's redemption
    answer = callback(client, back)
    assert answer.status_code == 502 and not _signed_in(client)
    assert [u for u in _users(db) if u.source == "oidc"] == []
    assert [e.reason for e in _events(db, "sign_in_failed")] == ["oidc: provider unavailable"] * 2
    crafted.configure(CAIRN_OIDC_ISSUER="http://127.0.0.1:1")  # nothing listens there
    assert client.get("/login/oidc").status_code == 502


def test_a_rotated_key_is_fetched_once_and_accepted(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    assert sign_in(client).status_code == 302
    post(client, "/logout")
    crafted.rotate()
    assert sign_in(client).status_code == 302
    assert crafted.fetches["/jwks"] == 2
    post(client, "/logout")
    assert sign_in(client).status_code == 302
    assert crafted.fetches["/jwks"] == 2, "the new key is cached"


def test_sign_out_ends_the_session_at_the_provider_too(client, db, crafted, mapped):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    assert sign_in(client).status_code == 302
    answer = post(client, "/logout")
    assert answer.status_code == 200
    refresh = answer.headers["Refresh"]
    assert refresh.startswith(f"0; url={crafted.issuer}/logout?id_token_hint=ey")
    assert "post_logout_redirect_uri=http%3A%2F%2Flocalhost%2Flogin" in refresh and "client_id=cairn-test" in refresh
    assert "You are signed out of Cairn" in answer.get_data(as_text=True)
    assert not _signed_in(client)
    # a provider without an end_session_endpoint: back to Cairn's sign-in page
    crafted.with_end_session = False
    from cairn.directory import oidc

    oidc.forget()
    assert sign_in(client).status_code == 302
    answer = post(client, "/logout")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")


def test_the_sign_in_page_offers_the_provider_only_when_configured(client, crafted):
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Crafted SSO" in page and 'href="/login/oidc"' in page
    crafted.configure(CAIRN_OIDC_ISSUER=None)
    assert "Sign in with" not in client.get("/login").get_data(as_text=True)
    for path in ("/login/oidc", "/login/oidc/callback?code=x&state=y"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"] == "/login", path


def test_group_mappings_say_whose_groups_they_name(client, db, make):
    admin = make.headers("admin")
    url = "/api/v1/directory/group-mappings"
    made = client.post(url, json={"group_dn": "Helpdesk", "role": "agent", "source": "oidc"}, headers=admin)
    assert made.status_code == 201, made.json
    assert (made.json["group_dn"], made.json["source"]) == ("helpdesk", "oidc")
    assert client.post(url, json={"group_dn": "Helpdesk", "role": "agent"}, headers=admin).status_code == 422
    assert (
        client.post(url, json={"group_dn": "helpdesk", "role": "agent", "source": "oidc"}, headers=admin).status_code
        == 409
    )
    assert client.post(url, json={"group_dn": "x", "role": "agent", "source": "saml"}, headers=admin).status_code == 422
    ldap = client.post(url, json={"group_dn": "cn=helpdesk,dc=example,dc=org", "role": "auditor"}, headers=admin)
    assert ldap.status_code == 201 and ldap.json["source"] == "ldap"
    assert [m.group_dn for m in MappingRules.load().rules] == ["cn=helpdesk,dc=example,dc=org"]
    assert [m.group_dn for m in MappingRules.load("oidc").rules] == ["helpdesk"]


def test_a_subject_that_is_another_account_s_external_id_is_refused(client, db, crafted, make):
    crafted.configure(CAIRN_OIDC_CREATE_USERS="true")
    ldap_user = make.user("agent", email="dora@example.org")
    ldap_user.source, ldap_user.external_id = "ldap", "crafted-1"
    db.session.commit()
    answer = sign_in(client)
    assert answer.status_code == 403 and not _signed_in(client)
    assert db.session.scalar(select(User).where(User.email == "carol@example.net")) is None
    assert _events(db, "sign_in_failed")[-1].reason == "oidc: subject is the id of a ldap account"


def test_an_account_made_for_single_sign_on_is_taken_by_the_first_sign_in(client, db, crafted, mapped):
    from cairn.auth.services import create_user

    made = create_user("carol@example.net", "auditor", "Carol")  # no password: for single sign-on
    db.session.commit()
    crafted.account["groups"] = ["helpdesk"]
    # Only an address the provider vouches for claims the account: one it merely sends does not.
    assert sign_in(client).status_code != 302
    db.session.expire_all()
    assert made.source == "local" and _events(db, "sign_in_failed")[-1].reason == "oidc: e-mail of a local account"
    crafted.account["email_verified"] = True
    assert sign_in(client).status_code == 302, "no just-in-time creation needed"
    db.session.expire_all()
    assert (made.source, made.external_id, made.role) == ("oidc", "crafted-1", "agent")
    assert [u.email for u in _users(db) if u.source == "oidc"] == ["carol@example.net"]
