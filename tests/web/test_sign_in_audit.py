"""The sign-in audit: each sign-in, failed sign-in (with its reason, never the password),
throttled attempt and sign-out is recorded with the address, failures although their answer is an
error; a token's use is recorded when its last use is touched; GET /api/v1/auth-events serves it to
admins and auditors only."""

from __future__ import annotations

from sqlalchemy import select

from cairn.auth.models import AuthEvent
from tests.web.pages import PASSWORD, csrf_token, post, sign_in


def _events(db, kind=None):
    db.session.expire_all()
    stmt = select(AuthEvent).order_by(AuthEvent.id)
    if kind:
        stmt = stmt.where(AuthEvent.kind == kind)
    return list(db.session.scalars(stmt))


def _attempt(client, email, password):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def test_sign_ins_failures_and_sign_outs_are_recorded(client, make, db):
    user = make.user("agent")
    make.user("integration", email="robot@example.com")
    sign_in(client, user)  # sets the password, then signs in
    assert post(client, "/logout").status_code == 302
    assert _attempt(client, user.email, "not the password").status_code == 401
    assert _attempt(client, "nobody@example.com", "whatever").status_code == 401
    kinds = [(e.kind, e.reason, e.email) for e in _events(db)]
    assert kinds == [
        ("sign_in", "", user.email),
        ("sign_out", "", user.email),
        ("sign_in_failed", "wrong password", user.email),
        ("sign_in_failed", "unknown e-mail", "nobody@example.com"),
    ]
    event = _events(db)[2]
    assert event.user_id == user.id and event.ip == "127.0.0.1"
    assert not any("not the password" in (e.reason + e.email + e.user_agent) for e in _events(db))


def test_throttled_attempts_are_recorded(client, make, db):
    user = make.user("agent")
    for _ in range(6):
        last = _attempt(client, user.email, "wrong")
    assert last.status_code == 429
    throttled = _events(db, "sign_in_throttled")
    assert throttled and throttled[0].email == user.email and throttled[0].reason == "too many failures"


def test_the_audit_is_served_to_admins_and_auditors_only(client, make, db):
    user = make.user("agent")
    _attempt(client, user.email, "wrong")
    for role in ("admin", "auditor"):
        answer = client.get("/api/v1/auth-events", headers=make.headers(role), query_string={"kind": "sign_in_failed"})
        assert answer.status_code == 200, answer.json
        assert [(e["kind"], e["reason"], e["user_id"]) for e in answer.json] == [
            ("sign_in_failed", "wrong password", user.id)
        ]
    assert client.get("/api/v1/auth-events", headers=make.headers("agent")).status_code == 403
    assert (
        client.get("/api/v1/auth-events", headers=make.headers("admin"), query_string={"kind": "x"}).status_code == 422
    )


def test_token_use_is_recorded_with_its_address_when_touched(client, make, db):
    headers = make.headers("agent")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    used = _events(db, "token_used")
    assert len(used) == 1 and used[0].ip == "127.0.0.1" and used[0].token_prefix
    client.get("/api/v1/me", headers=headers)
    assert len(_events(db, "token_used")) == 1, "not once per call: once per touch of the last use"


def test_the_password_form_field_is_never_stored(client, make, db):
    user = make.user("agent")
    _attempt(client, user.email, PASSWORD + "-typo")
    stored = " ".join(f"{e.email} {e.reason} {e.user_agent}" for e in _events(db))
    assert PASSWORD not in stored


def test_the_daily_job_keeps_the_audit_for_its_retention(app, make, db):
    from datetime import timedelta

    from cairn.auth.tasks import BATCH, prune_auth_events
    from cairn.db import utcnow

    user = make.user("agent")
    now = utcnow()
    ages = {"old": 401, "older": 900, "kept": 399, "today": 0}
    for reason, days in ages.items():
        db.session.add(
            AuthEvent(kind="sign_in", user_id=user.id, email=user.email, reason=reason, at=now - timedelta(days=days))
        )
    db.session.add_all(
        AuthEvent(kind="token_used", user_id=user.id, reason="bulk", at=now - timedelta(days=500))
        for _ in range(BATCH + 3)
    )
    db.session.flush()
    assert prune_auth_events() == BATCH + 3 + 2, "older than 400 days, over more than one batch"
    assert sorted(e.reason for e in _events(db)) == ["kept", "today"]

    app.config["CAIRN_AUTH_EVENT_RETENTION_DAYS"] = "0"
    try:
        db.session.add(AuthEvent(kind="sign_in", user_id=user.id, reason="ancient", at=now - timedelta(days=5000)))
        db.session.flush()
        assert prune_auth_events() == 0 and len(_events(db)) == 3, "0 keeps everything"
    finally:
        app.config.pop("CAIRN_AUTH_EVENT_RETENTION_DAYS")
