"""Account origin and what follows from it: users say where they come from; a directory user has no
local password to set (API, desk, CLI); deactivating anyone revokes their tokens and ends their
sessions at once; the group mappings are data admins manage through the API and the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cairn.auth.models import ApiToken, User
from cairn.directory.models import DirectoryGroupMapping
from tests.web.pages import post, sign_in


@pytest.fixture
def ldap_user(db, make):
    user = make.user("agent", email="dir@example.org", name="Dir User")
    user.source, user.external_id = "ldap", "6c2c9e1e-5b7e-4c0e-9a57-1f1b6d1d0a01"
    db.session.commit()
    return user


def test_users_and_me_say_where_the_account_comes_from(client, make, ldap_user):
    admin = make.headers("admin")
    listed = {u["email"]: u for u in client.get("/api/v1/users", headers=admin).json}
    assert listed["dir@example.org"]["source"] == "ldap"
    assert listed["dir@example.org"]["external_id"] == ldap_user.external_id
    local = next(u for e, u in listed.items() if e != "dir@example.org")
    assert (local["source"], local["external_id"], local["directory"]) == ("local", None, None)
    only = client.get("/api/v1/users", query_string={"source": "ldap"}, headers=admin).json
    assert [u["email"] for u in only] == ["dir@example.org"]
    assert client.get("/api/v1/users", query_string={"source": "x"}, headers=admin).status_code == 422
    me = client.get("/api/v1/me", headers=make.headers(user=ldap_user)).json
    assert (me["source"], me["external_id"]) == ("ldap", ldap_user.external_id)


def test_a_directory_user_cannot_be_given_a_local_password(app, client, db, make, ldap_user):
    answer = client.patch(
        f"/api/v1/users/{ldap_user.id}", json={"password": "a long enough password"}, headers=make.headers("admin")
    )
    assert answer.status_code == 409 and "directory" in answer.json["detail"]
    db.session.expire_all()
    assert db.session.get(User, ldap_user.id).password_hash is None
    result = app.test_cli_runner().invoke(args=["users", "set-password", ldap_user.email, "--password", "x" * 14])
    assert result.exit_code == 1 and "directory" in result.output
    # the admin page refuses a reset, and shows why instead of the form
    admin = make.user("admin", email="page-admin@example.com")
    sign_in(client, admin)
    page = client.get(f"/admin/users/{ldap_user.id}").get_data(as_text=True)
    assert "signs in through the directory" in page and 'name="how" value="generate"' not in page
    assert post(client, f"/admin/users/{ldap_user.id}/password", {"how": "generate"}).status_code == 409
    db.session.expire_all()
    assert db.session.get(User, ldap_user.id).password_hash is None


def test_a_directory_user_cannot_set_one_on_the_account_page(app, client, db, ldap_user):
    from flask import session as signed_session
    from flask_login import login_user

    # the session a directory sign-in gives (signing in by bind: test_directory_sign_in.py)
    with app.test_request_context():
        login_user(ldap_user)
        cookie = dict(signed_session)
    with client.session_transaction() as session:
        session.update(cookie)
    page = client.get("/account").get_data(as_text=True)
    assert "change your password there" in page and 'name="current_password"' not in page
    answer = post(
        client,
        "/account/password",
        {"current_password": "x", "new_password": "y" * 14, "confirm_password": "y" * 14},
    )
    assert answer.status_code == 409
    db.session.expire_all()
    assert db.session.get(User, ldap_user.id).password_hash is None


@pytest.mark.parametrize("how", ["api", "admin page"])
def test_deactivation_revokes_tokens_and_ends_sessions_at_once(app, client, db, make, how):
    user = make.user("agent")
    secret = make.token(user)
    bearer = {"Authorization": f"Bearer {secret}"}
    user_client = app.test_client()
    sign_in(user_client, user)
    assert user_client.get("/account").status_code == 200
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    if how == "api":
        answer = client.patch(f"/api/v1/users/{user.id}", json={"active": False}, headers=make.headers("admin"))
        assert answer.status_code == 200, answer.json
    else:
        sign_in(client, make.user("admin"))
        assert post(client, f"/admin/users/{user.id}/active", {"active": "0"}).status_code in (200, 302)
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    answer = user_client.get("/account")
    assert answer.status_code == 302 and "/login" in answer.location
    db.session.expire_all()
    token = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert token.revoked_at is not None, "revoked for good, not only refused while inactive"
    reactivated = client.patch(f"/api/v1/users/{user.id}", json={"active": True}, headers=make.headers("admin"))
    assert reactivated.status_code == 200
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert user_client.get("/account").status_code == 302, "the session of before stays ended"
    sign_in(user_client, user)
    assert user_client.get("/account").status_code == 200, "a new sign-in works"
    events = client.get("/api/v1/auth-events", query_string={"kind": "deactivated"}, headers=make.headers("admin"))
    assert [(e["user_id"], e["reason"]) for e in events.json] == [(user.id, "by an admin")]


def test_group_mappings_are_managed_by_admins(client, db, make):
    admin, desk = make.headers("admin"), make.team("Desk")
    url = "/api/v1/directory/group-mappings"
    created = client.post(
        url, json={"group_dn": "CN=Helpdesk, OU=Groups,DC=example,DC=org", "role": "agent"}, headers=admin
    )
    assert created.status_code == 201, created.json
    assert created.json["group_dn"] == "cn=helpdesk,ou=groups,dc=example,dc=org"
    both = {"group_dn": "cn=ops,dc=example,dc=org", "role": "agent", "team_id": desk.id}
    assert client.post(url, json=both, headers=admin).json["team"] == {"id": desk.id, "name": "Desk"}
    again = client.post(
        url, json={"group_dn": "cn=helpdesk,ou=groups,dc=example,dc=org", "role": "agent"}, headers=admin
    )
    assert again.status_code == 409
    for bad, field in (
        ({"group_dn": "cn=x,dc=example,dc=org"}, "role"),
        ({"group_dn": "cn=x,dc=example,dc=org", "team_id": 999999}, "team_id"),
        ({"group_dn": "helpdesk", "role": "agent"}, "group_dn"),
        ({"group_dn": "cn=x,dc=example,dc=org", "role": "wizard"}, "role"),
    ):
        answer = client.post(url, json=bad, headers=admin)
        assert answer.status_code == 422 and field in answer.json["errors"], (bad, answer.json)
    assert len(client.get(url, headers=make.headers("auditor")).json) == 2
    assert client.get(url, headers=make.headers("agent")).status_code == 403
    assert client.post(url, json=both, headers=make.headers("agent")).status_code == 403
    read_only = {"Authorization": f"Bearer {make.token(make.user('admin'), scopes=['read'])}"}
    assert client.post(url, json={**both, "role": "auditor"}, headers=read_only).status_code == 403
    mapping_id = created.json["id"]
    assert client.delete(f"{url}/{mapping_id}", headers=admin).status_code == 204
    assert client.delete(f"{url}/{mapping_id}", headers=admin).status_code == 404
    assert len(client.get(url, headers=admin).json) == 1


def test_the_cli_manages_group_mappings(app, db, make):
    make.team("Desk")
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=["directory", "mappings", "add", "cn=desk,dc=example,dc=org", "--role", "agent", "--team", "Desk"]
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(args=["directory", "mappings", "list"]).output
    assert "cn=desk,dc=example,dc=org\trole=agent\tteam=Desk" in listed
    assert (
        runner.invoke(args=["directory", "mappings", "add", "cn=x,dc=example,dc=org", "--team", "Nope"]).exit_code == 1
    )
    mapping_id = db.session.scalars(select(DirectoryGroupMapping.id)).one()
    assert runner.invoke(args=["directory", "mappings", "remove", str(mapping_id)]).exit_code == 0
    assert db.session.scalars(select(DirectoryGroupMapping)).all() == []
