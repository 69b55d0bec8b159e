"""Two-factor sign-in for local accounts, through the pages with Flask's test client: enrolment
(QR code and key, confirmed by a first code, recovery codes shown once), the second sign-in step
(codes from pyotp, the real algorithm; time steps moved with time-machine), replays and wrong codes
refused and audited, recovery codes usable once, the pending state that opens nothing and expires,
the policy that sends admins to enrolment (tokens unaffected), and an admin's reset."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cairn.auth.models import AuthEvent, RecoveryCode, TwoFactor
from tests.web.pages import PASSWORD, csrf_token, sign_in

START = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)


@pytest.fixture
def clock():
    """Time stands still (a code stays the same) until the test moves it on."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _fresh_limits(app):
    from web.shell import limiter

    limiter.reset()


def _code(secret: str, steps: int = 0) -> str:
    """The code the app shows ``steps`` steps of 30 s from now (pyotp: the real algorithm)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def _post(client, path, data=None, page="/account/two-factor"):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})


def _enrol(client, user, clock):
    """Sign ``user`` in, enrol them, sign them out; the secret and the recovery codes."""
    sign_in(client, user)
    assert _post(client, "/account/two-factor/start").status_code == 302
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    confirmed = _post(client, "/account/two-factor/confirm", {"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)[:300]
    codes = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>", confirmed.text)
    _post(client, "/logout")
    clock.shift(30)  # the confirming code is spent: the next sign-in needs the next one
    return secret, codes


def _password_step(client, user):
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/login/code"
    return response


def _code_step(client, code):
    return client.post("/login/code", data={"code": code, "csrf_token": csrf_token(client, "/login/code")})


def _events(db, kind):
    db.session.expire_all()
    return list(db.session.scalars(select(AuthEvent).where(AuthEvent.kind == kind).order_by(AuthEvent.id)))


def test_enrolment_shows_a_qr_code_and_the_key_and_starts_only_with_a_right_code(client, make, db, clock):
    user = make.user("agent")
    sign_in(client, user)
    assert "Off: your password alone signs you in." in client.get("/account").text
    assert _post(client, "/account/two-factor/start").status_code == 302
    page = client.get("/account/two-factor").text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert re.search(r'<div class="qr-code" id="qr-code"><svg [^>]*class="segno"><title>', page)
    stored = db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id))
    assert stored.confirmed_at is None and secret not in stored.secret_encrypted  # encrypted at rest

    wrong = _post(client, "/account/two-factor/confirm", {"code": _code(secret, -5)})
    assert wrong.status_code == 422 and "That code is not valid." in wrong.text
    assert [e.reason for e in _events(db, "two_factor_failed")] == ["wrong code"]
    db.session.refresh(stored)
    assert stored.confirmed_at is None

    right = _post(client, "/account/two-factor/confirm", {"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", right.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    db.session.refresh(stored)
    assert stored.confirmed_at is not None
    hashes = list(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(hashes) == 10 and not any(code.replace("-", "") in hashes for code in codes)  # only hashes kept
    assert [e.user_id for e in _events(db, "two_factor_enrolled")] == [user.id]
    later = client.get("/account/two-factor").text
    assert "Recovery codes left" in later and codes[0] not in later and 'id="totp-secret"' not in later  # once
    assert "On: signing in asks for a code from your app." in client.get("/account").text
    headers = {"Authorization": f"Bearer {make.token(user)}"}
    assert client.get("/api/v1/me", headers=headers).json["two_factor"] is True
    assert client.get("/api/v1/me", headers=make.headers("agent")).json["two_factor"] is False


def test_sign_in_asks_for_the_code_and_refuses_wrong_and_replayed_ones(app, client, make, db, clock):
    user = make.user("agent")
    secret, _codes = _enrol(client, user, clock)
    _password_step(client, user)
    wrong = _code_step(client, _code(secret, -10))
    assert wrong.status_code == 401 and "That code is not valid" in wrong.text
    assert client.get("/desk").status_code == 302
    code = pyotp.TOTP(secret).now()
    signed = _code_step(client, code)
    assert signed.status_code == 302 and signed.headers["Location"] == "/desk"
    assert client.get("/desk").status_code == 200
    assert _events(db, "sign_in")[-1].reason == "with a code"

    other = app.test_client()  # someone who saw that code, with the password, in the same 30 s
    _password_step(other, user)
    replayed = _code_step(other, code)
    assert replayed.status_code == 401 and other.get("/desk").status_code == 302
    assert [e.reason for e in _events(db, "two_factor_failed")] == ["wrong code", "replayed code"]
    clock.shift(30)
    assert _code_step(other, pyotp.TOTP(secret).now()).status_code == 302
    assert other.get("/desk").status_code == 200


def test_a_code_of_the_previous_or_next_step_is_accepted_for_clock_drift(app, client, make, db, clock):
    user = make.user("agent")
    secret, _codes = _enrol(client, user, clock)
    clock.shift(60)
    _password_step(client, user)
    assert _code_step(client, _code(secret, -1)).status_code == 302  # a phone 30 s behind
    other = app.test_client()
    _password_step(other, user)
    assert _code_step(other, _code(secret, 2)).status_code == 401  # a minute ahead: too far
    assert _code_step(other, _code(secret, -2)).status_code == 401  # a minute behind: too far
    assert [e.reason for e in _events(db, "two_factor_failed")] == ["wrong code", "wrong code"]
    assert _code_step(other, _code(secret, 1)).status_code == 302  # a phone 30 s ahead


def test_a_recovery_code_signs_in_once(app, client, make, db, clock):
    user = make.user("agent")
    _secret, codes = _enrol(client, user, clock)
    _password_step(client, user)
    assert _code_step(client, codes[3].upper().replace("-", " ")).status_code == 302  # typed loosely
    assert client.get("/desk").status_code == 200
    assert _events(db, "sign_in")[-1].reason == "with a recovery code"
    assert [e.reason for e in _events(db, "two_factor_recovery_used")] == ["9 left"]
    again = app.test_client()
    _password_step(again, user)
    assert _code_step(again, codes[3]).status_code == 401
    assert _events(db, "two_factor_failed")[-1].reason == "wrong recovery code"
    assert _code_step(again, codes[4]).status_code == 302


def test_the_pending_state_opens_no_page_and_no_api(client, make, clock):
    user = make.user("admin")
    _secret, _codes = _enrol(client, user, clock)
    _password_step(client, user)
    for path in ("/desk", "/account", "/account/two-factor", "/admin/users", "/"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
    start = client.post("/account/two-factor/start", data={"csrf_token": csrf_token(client, "/login/code")})
    assert start.status_code == 302 and start.headers["Location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401
    # the first step again without a password is no way around the second
    assert client.get("/login").status_code == 200
    assert client.get("/desk").status_code == 302


def test_the_pending_state_expires_after_five_minutes(client, make, db, clock):
    user = make.user("agent")
    secret, _codes = _enrol(client, user, clock)
    _password_step(client, user)
    assert client.get("/login/code").status_code == 200
    token = csrf_token(client, "/login/code")
    clock.shift(301)
    late = client.post("/login/code", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert client.get("/desk").status_code == 302
    assert "Your sign-in has expired" in client.get("/login").text
    assert _events(db, "sign_in") and _events(db, "sign_in")[-1].reason == ""  # only the enrolment's


def test_wrong_codes_are_throttled_per_account(client, make, db, clock):
    user = make.user("agent")
    secret, _codes = _enrol(client, user, clock)
    _password_step(client, user)
    wrong = _code(secret, -20)
    statuses = [_code_step(client, wrong).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert _code_step(client, pyotp.TOTP(secret).now()).status_code == 429  # even the right one, for now
    assert _events(db, "sign_in_throttled")[-1].reason == "too many wrong codes"
    assert _events(db, "sign_in_throttled")[-1].email == user.email


def test_renewing_recovery_codes_needs_a_current_code_and_voids_the_old_ones(app, client, make, clock):
    user = make.user("agent")
    secret, old = _enrol(client, user, clock)
    sign_in_with_code = app.test_client()
    _password_step(sign_in_with_code, user)
    assert _code_step(sign_in_with_code, pyotp.TOTP(secret).now()).status_code == 302
    clock.shift(30)
    refused = _post(sign_in_with_code, "/account/two-factor/recovery-codes", {"code": old[0]})
    assert refused.status_code == 422
    renewed = _post(sign_in_with_code, "/account/two-factor/recovery-codes", {"code": pyotp.TOTP(secret).now()})
    new = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", renewed.text)
    assert renewed.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    fresh = app.test_client()
    _password_step(fresh, user)
    assert _code_step(fresh, old[1]).status_code == 401
    assert _code_step(fresh, new[1]).status_code == 302


def test_turning_off_needs_a_code_then_the_password_alone_signs_in(app, client, make, db, clock):
    user = make.user("agent")
    secret, codes = _enrol(client, user, clock)
    _password_step(client, user)
    assert _code_step(client, pyotp.TOTP(secret).now()).status_code == 302
    assert _post(client, "/account/two-factor/disable", {"code": "123456"}).status_code == 422
    assert _post(client, "/account/two-factor/disable", {"code": codes[0]}).status_code == 302
    assert db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id)) is None
    assert db.session.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id)) is None
    assert [e.user_id for e in _events(db, "two_factor_disabled")] == [user.id]
    _post(client, "/logout")
    sign_in(client, user)  # one step again
    assert client.get("/desk").status_code == 200


def test_the_policy_sends_admins_to_enrolment_but_tokens_still_work(app, client, make, clock, monkeypatch):
    monkeypatch.setitem(app.config, "CAIRN_REQUIRE_2FA_FOR", "admin, auditor")
    admin = make.user("admin")
    token = make.token(admin)
    sign_in(client, admin)
    for path in ("/desk", "/admin/users", "/account", "/tickets"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/account/two-factor", path
    htmx = client.get("/desk", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/account/two-factor"
    forced = client.get("/account/two-factor")
    assert forced.status_code == 200 and "Your role must sign in with two factors" in forced.text
    token_creation = client.post(
        "/account/tokens", data={"name": "x", "csrf_token": csrf_token(client, "/account/two-factor")}
    )
    assert token_creation.status_code == 302  # to enrolment, nothing made
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["two_factor"] is False
    assert client.get("/api/v1/cis", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    agent = app.test_client()
    sign_in(agent, make.user("agent"))
    assert agent.get("/desk").status_code == 200  # not a role the policy names

    assert _post(client, "/account/two-factor/start").status_code == 302
    secret = (
        re.search(r'id="totp-secret">([A-Z2-7 ]+)<', client.get("/account/two-factor").text).group(1).replace(" ", "")
    )
    assert _post(client, "/account/two-factor/confirm", {"code": pyotp.TOTP(secret).now()}).status_code == 200
    assert client.get("/desk").status_code == 200


def test_the_policy_refuses_to_turn_it_off(app, client, make, db, clock, monkeypatch):
    user = make.user("admin")
    secret, codes = _enrol(client, user, clock)
    monkeypatch.setitem(app.config, "CAIRN_REQUIRE_2FA_FOR", "admin")
    _password_step(client, user)
    assert _code_step(client, pyotp.TOTP(secret).now()).status_code == 302
    page = client.get("/account/two-factor").text
    assert "it cannot be turned off" in page and "/account/two-factor/disable" not in page
    refused = _post(client, "/account/two-factor/disable", {"code": codes[0]})
    assert refused.status_code == 403 and "cannot be turned off" in refused.text
    assert db.session.scalar(select(TwoFactor.confirmed_at).where(TwoFactor.user_id == user.id)) is not None
    assert db.session.scalar(select(RecoveryCode.used_at).where(RecoveryCode.user_id == user.id).limit(1)) is None


def test_an_admin_resets_a_users_two_factor_and_it_is_audited(app, client, make, db, clock):
    user = make.user("agent")
    _enrol(client, user, clock)
    admin = make.user("admin")
    sign_in(client, admin)
    page = client.get(f"/admin/users/{user.id}").text
    assert 'id="two-factor-state">On<' in page
    reset = _post(client, f"/admin/users/{user.id}/two-factor/reset", page=f"/admin/users/{user.id}")
    assert reset.status_code == 302
    assert db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id)) is None
    (event,) = _events(db, "two_factor_reset")
    assert event.user_id == user.id and event.reason == f"by {admin.email}"
    removal = db.session.scalar(
        select(ChangeLog).where(ChangeLog.object_type == "two_factor", ChangeLog.action == "delete")
    )
    assert removal is not None and removal.actor == admin.email
    assert 'id="two-factor-state">Off<' in client.get(f"/admin/users/{user.id}").text
    agent_client = app.test_client()
    sign_in(agent_client, user)  # the password alone again
    assert agent_client.get("/desk").status_code == 200
    outsider = app.test_client()
    sign_in(outsider, make.user("agent"))
    forbidden = outsider.post(
        f"/admin/users/{user.id}/two-factor/reset", data={"csrf_token": csrf_token(outsider, "/account")}
    )
    assert forbidden.status_code == 403


def test_the_cli_resets_two_factor(app, client, make, db, clock):
    user = make.user("agent")
    _enrol(client, user, clock)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "reset-2fa", user.email])
    assert result.exit_code == 0 and "reset" in result.output, result.output
    assert db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id)) is None
    assert _events(db, "two_factor_reset")[-1].reason == "by the command line"
    again = runner.invoke(args=["users", "reset-2fa", user.email])
    assert again.exit_code == 0 and "has no two-factor" in again.output
    assert runner.invoke(args=["users", "reset-2fa", "nobody@example.com"]).exit_code == 1


def test_a_changed_key_refuses_codes_instead_of_failing(app, client, make, db, clock, monkeypatch):
    user = make.user("agent")
    secret, codes = _enrol(client, user, clock)
    monkeypatch.setitem(app.config, "CAIRN_TWO_FACTOR_KEY", "another key altogether")
    _password_step(client, user)
    response = _code_step(client, pyotp.TOTP(secret).now())
    assert response.status_code == 401
    assert _events(db, "two_factor_failed")[-1].reason == "secret unreadable"
    assert _code_step(client, codes[0]).status_code == 302  # recovery codes don't need the key


def test_a_password_reset_between_the_steps_voids_the_pending_sign_in(client, make, db, clock):
    from cairn.auth.services import reset_password

    user = make.user("agent")
    secret, _codes = _enrol(client, user, clock)
    _password_step(client, user)
    token = csrf_token(client, "/login/code")
    reset_password(user, "an entirely new password 7")  # by an admin, meanwhile
    db.session.commit()
    response = client.post("/login/code", data={"code": _code(secret), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/desk").status_code == 302


def test_directory_accounts_are_outside_two_factor(app, make, db, monkeypatch):
    from cairn.auth import two_factor
    from cairn.errors import Forbidden

    monkeypatch.setitem(app.config, "CAIRN_REQUIRE_2FA_FOR", "admin")
    admin = make.user("admin")
    assert two_factor.must_enrol(admin)
    admin.source = "ldap"  # signs in through the directory, whose second factor applies
    assert not two_factor.applies_to(admin) and not two_factor.must_enrol(admin)
    with pytest.raises(Forbidden):
        two_factor.begin_enrolment(admin)
