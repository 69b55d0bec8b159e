"""Every endpoint declares its roles; tokens are hashed, expire and can be revoked."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from cairn.auth.guard import PUBLIC, SESSION_ATTR, declared_roles
from cairn.auth.models import ApiToken
from cairn.auth.roles import ALL_ROLES
from cairn.db import utcnow

PUBLIC_PATHS = {
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/redoc",
    "/api/v1/docs/static/<path:filename>",
    "/api/v1/docs/static/redoc/<path:filename>",
    "/static/<path:filename>",  # the web desk's stylesheets, scripts and vendored assets
}


def _concrete(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)


def _routes(app, pages=False):
    """The API's routes (or, with ``pages``, the web desk's: tests/web/test_access.py walks those)."""
    for rule in app.url_map.iter_rules():
        if bool(getattr(app.view_functions[rule.endpoint], SESSION_ATTR, False)) != pages:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_declares_its_roles(app):
    with app.test_request_context():
        undeclared = [
            f"{method} {rule.rule}" for rule, method in _routes(app) if declared_roles(rule.endpoint, method) is None
        ]
    assert undeclared == []


def test_no_route_is_reachable_without_a_token_except_health_and_docs(app, client):
    open_routes = set()
    for rule, method in _routes(app):
        path = _concrete(rule)
        response = client.open(path, method=method, json={} if method in {"POST", "PUT", "PATCH"} else None)
        if response.status_code != 401:
            open_routes.add(rule.rule)
        else:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert open_routes == PUBLIC_PATHS
    with app.test_request_context():
        public = {rule.rule for rule, method in _routes(app) if declared_roles(rule.endpoint, method) == PUBLIC}
    assert public == PUBLIC_PATHS


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer cairn_" + "x" * 43, "Basic abc", "Bearer", ""])
def test_bad_credentials_are_401(client, header):
    assert client.get("/api/v1/me", headers={"Authorization": header}).status_code == 401


def test_known_token_without_the_role_is_403(client, make):
    auditor = make.headers("auditor")
    assert client.get("/api/v1/cis", headers=auditor).status_code == 200
    response = client.post("/api/v1/cis", headers=auditor, json={"name": "x", "ci_class": "server"})
    assert response.status_code == 403
    assert response.json["detail"] == "The role 'auditor' may not do this."
    assert client.post("/api/v1/users", headers=make.headers("agent"), json={}).status_code == 403


def test_tokens_are_stored_hashed_and_never_logged(db, make):
    user = make.user("agent")
    secret = make.token(user)
    stored = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert stored.token_hash != secret and len(stored.token_hash) == 64
    from cairn.audit.models import ChangeLog

    for row in db.session.scalars(select(ChangeLog)):
        assert secret not in str(row.changes) and stored.token_hash not in str(row.changes)


def test_expired_revoked_and_inactive_are_401(db, client, make):
    user = make.user("agent")
    secret = make.token(user, expires_in_days=1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    other = make.user("agent")
    other_secret = make.token(other)
    other.active = False
    db.session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other_secret}"}).status_code == 401


def test_token_api_shows_the_secret_once_and_revokes(client, make):
    user = make.user("agent")
    headers = make.headers(user=user)
    created = client.post("/api/v1/tokens", headers=headers, json={"name": "laptop script"})
    assert created.status_code == 201
    secret = created.json["token"]
    assert secret.startswith("cairn_")
    new_headers = {"Authorization": f"Bearer {secret}"}
    listed = client.get("/api/v1/tokens", headers=new_headers).json
    assert {t["name"] for t in listed} >= {"laptop script"}
    assert all("token" not in t and "token_hash" not in t for t in listed)

    # Somebody else's token is invisible (404), the owner's own is revoked (204) and stops working.
    outsider = make.headers("agent")
    assert client.delete(f"/api/v1/tokens/{created.json['id']}", headers=outsider).status_code == 404
    assert client.delete(f"/api/v1/tokens/{created.json['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=new_headers).status_code == 401


def test_token_expiry_in_the_past_is_422(client, make):
    response = client.post("/api/v1/tokens", headers=make.headers("agent"), json={"expires_at": "2001-01-01T00:00:00Z"})
    assert response.status_code == 422


def test_admin_manages_users_and_teams(client, admin, make):
    created = client.post(
        "/api/v1/users", headers=admin, json={"email": "New.Person@Example.com", "role": "agent", "name": "New"}
    )
    assert created.status_code == 201 and created.json["email"] == "new.person@example.com"
    assert (
        client.post(
            "/api/v1/users", headers=admin, json={"email": "new.person@example.com", "role": "agent"}
        ).status_code
        == 409
    )
    assert (
        client.post("/api/v1/users", headers=admin, json={"email": "x@example.com", "role": "emperor"}).status_code
        == 422
    )

    team = client.post("/api/v1/teams", headers=admin, json={"name": "Network", "member_ids": [created.json["id"]]})
    assert team.status_code == 201
    assert [m["email"] for m in team.json["members"]] == ["new.person@example.com"]
    assert client.post("/api/v1/teams", headers=admin, json={"name": "Network"}).status_code == 409
    bad_member = client.patch(f"/api/v1/teams/{team.json['id']}", headers=admin, json={"member_ids": [999999]})
    assert bad_member.status_code == 422
    me = client.get(f"/api/v1/users/{created.json['id']}", headers=admin).json
    assert me["teams"] == [{"id": team.json["id"], "name": "Network"}]


def test_admin_cannot_lock_itself_out(client, make):
    admin_user = make.user("admin")
    headers = make.headers(user=admin_user)
    response = client.patch(f"/api/v1/users/{admin_user.id}", headers=headers, json={"role": "agent"})
    assert response.status_code == 409


def test_every_role_can_read_me(client, make):
    for role in ALL_ROLES:
        assert client.get("/api/v1/me", headers=make.headers(role)).json["role"] == role


def test_passwords_use_argon2(db, make):
    from cairn.auth.services import set_password, verify_password

    user = make.user("agent")
    set_password(user, "correct horse battery staple")
    assert user.password_hash.startswith("$argon2")
    assert verify_password(user, "correct horse battery staple")
    assert not verify_password(user, "wrong")


@pytest.fixture
def hash_profile(app):
    """Set CAIRN_PASSWORD_HASH_PROFILE for one test (the suite runs with CHEAPEST)."""
    from cairn.auth.services import PASSWORD_HASH_PROFILE_SETTING

    before = app.config.get(PASSWORD_HASH_PROFILE_SETTING)

    def use(profile):
        app.config[PASSWORD_HASH_PROFILE_SETTING] = profile

    yield use
    app.config[PASSWORD_HASH_PROFILE_SETTING] = before


def test_passwords_are_hashed_with_rfc_9106_low_memory_argon2id_by_default(db, make, hash_profile):
    from cairn.auth.services import set_password, verify_password

    hash_profile(None)
    user = make.user("agent")
    set_password(user, "correct horse battery staple")
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(user, "correct horse battery staple")


def test_a_hash_of_another_profile_is_hashed_again_at_the_next_sign_in(db, make, hash_profile):
    from cairn.auth.services import set_password, verify_password

    hash_profile("CHEAPEST")
    user = make.user("agent")
    set_password(user, "correct horse battery staple")
    cheap = user.password_hash
    assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    hash_profile("RFC_9106_LOW_MEMORY")
    assert not verify_password(user, "not the password")
    assert user.password_hash == cheap, "a wrong password changes nothing"
    assert verify_password(user, "correct horse battery staple")
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(user, "correct horse battery staple")


def test_an_unknown_hash_profile_stops_the_app_at_start(database_url, instance_dir):
    from cairn.app import create_app
    from cairn.config import Config

    config = Config(SQLALCHEMY_DATABASE_URI=database_url, INSTANCE_PATH=instance_dir, LOG_LEVEL="WARNING")
    config.CAIRN_PASSWORD_HASH_PROFILE = "FASTEST"
    with pytest.raises(ValueError, match="CAIRN_PASSWORD_HASH_PROFILE='FASTEST'.*RFC_9106_LOW_MEMORY"):
        create_app(config)


def test_cli_creates_users_and_tokens_and_revokes(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "cli-user@example.com", "--role", "integration"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["tokens", "create", "cli-user@example.com"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json["role"] == "integration"
    token_id = re.search(r"token (\d+)", result.output).group(1)
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert runner.invoke(args=["users", "create", "cli-user@example.com", "--role", "agent"]).exit_code == 1
    assert runner.invoke(args=["tokens", "create", "nobody@example.com"]).exit_code == 1


def test_a_process_remembers_tokens_briefly_and_forgets_on_revocation(app, db, client, make):
    from cairn.auth.services import forget_tokens

    user = make.user("agent")
    secret = make.token(user)
    headers = {"Authorization": f"Bearer {secret}"}
    app.config["CAIRN_TOKEN_REMEMBER_SECONDS"] = 60
    try:
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        # Another process deactivates the user: this one notices within the window, not before.
        user.active = False
        db.session.commit()
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        forget_tokens()
        assert client.get("/api/v1/me", headers=headers).status_code == 401
        # A revocation through this process applies at once.
        user.active = True
        db.session.commit()
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        token_id = client.get("/api/v1/tokens", headers=headers).json[0]["id"]
        assert client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204
        assert client.get("/api/v1/me", headers=headers).status_code == 401
    finally:
        app.config["CAIRN_TOKEN_REMEMBER_SECONDS"] = 0
        forget_tokens()


def test_a_remembered_token_survives_what_its_first_request_did(app, db, client, make):
    """The token a process remembers belongs to no session: the first request's touch commits and
    expires what it loaded, a later failed request rolls back; the next requests still read the
    remembered token and its user (and its limits) without asking the database for them."""
    from sqlalchemy import event

    from cairn.auth.services import create_token, forget_tokens

    user = make.user("agent", name="Remy")
    _, secret = create_token(user, "remembered", scopes=["read"])
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    app.config["CAIRN_TOKEN_REMEMBER_SECONDS"] = 60
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    try:
        assert client.get("/api/v1/me", headers=headers).json["name"] == "Remy"  # touches: commit, expire
        assert client.get("/api/v1/cis", headers=headers, query_string={"status": "nope"}).status_code == 422
        engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            me = client.get("/api/v1/me", headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert me.status_code == 200 and me.json["name"] == "Remy" and me.json["token_scopes"] == ["read"]
        assert not any("api_token" in s for s in statements), "the remembered token is not read again"
        assert client.post("/api/v1/cis", headers=headers, json={"name": "x", "ci_class": "server"}).status_code == 403
    finally:
        app.config["CAIRN_TOKEN_REMEMBER_SECONDS"] = 0
        forget_tokens()
