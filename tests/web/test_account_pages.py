"""My account: password change (and what it does to other sessions), preferences, API tokens."""

from __future__ import annotations

import re

from cairn.auth.services import authenticate, tokens_of, verify_password
from tests.web.pages import PASSWORD, post, sign_in


def test_changing_the_password_ends_other_sessions_but_not_this_one(app, client, make):
    user = make.user("agent")
    sign_in(client, user)
    other = app.test_client()
    sign_in(other, user)
    assert other.get("/desk").status_code == 200
    new = "a much longer secret 42"
    response = post(
        client, "/account/password", {"current_password": PASSWORD, "new_password": new, "confirm_password": new}
    )
    assert response.status_code == 302
    assert client.get("/desk").status_code == 200
    assert other.get("/desk").status_code == 302  # signed out: the stamp in its cookie is stale
    make.db.session.refresh(user)
    assert verify_password(user, new) and not verify_password(user, PASSWORD)


def test_a_wrong_current_password_or_a_short_one_changes_nothing(client, make):
    user = make.user("agent")
    sign_in(client, user)
    wrong = post(
        client, "/account/password", {"current_password": "x", "new_password": "y" * 20, "confirm_password": "y" * 20}
    )
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.get_data(as_text=True)
    short = post(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
    )
    assert short.status_code == 422 and "at least 12 characters" in short.get_data(as_text=True)
    same_as_email = user.email
    response = post(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": same_as_email, "confirm_password": same_as_email},
    )
    assert response.status_code == 422
    make.db.session.refresh(user)
    assert verify_password(user, PASSWORD)


def test_preferences_change_how_dates_are_shown(client, make):
    user = make.user("agent")
    sign_in(client, user)
    assert post(client, "/account/preferences", {"locale": "en", "timezone": "Asia/Tokyo"}).status_code == 302
    make.db.session.refresh(user)
    assert user.timezone == "Asia/Tokyo"
    bad = post(client, "/account/preferences", {"locale": "xx", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "Choose a time zone" in page and "Choose one of" in page
    make.db.session.refresh(user)
    assert user.timezone == "Asia/Tokyo" and user.locale == "en"


def test_a_token_is_shown_once_works_on_the_api_and_can_be_revoked(client, make):
    user = make.user("agent")
    sign_in(client, user)
    created = post(client, "/account/tokens", {"name": "laptop script", "expires_in_days": "30"})
    assert created.status_code == 201
    secret = re.search(r'id="new-token">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in client.get("/account").get_data(as_text=True)
    (token,) = tokens_of(user)
    assert post(client, f"/account/tokens/{token.id}/revoke").status_code == 302
    assert authenticate(secret) is None
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_token_of_someone_else_cannot_be_revoked(client, make):
    owner = make.user("agent")
    make.token(owner)
    (token,) = tokens_of(owner)
    sign_in(client, make.user("agent"))
    assert post(client, f"/account/tokens/{token.id}/revoke").status_code == 404
    make.db.session.refresh(token)
    assert token.revoked_at is None


def test_token_input_is_checked(client, make):
    user = make.user("agent")
    sign_in(client, user)
    for data in ({"name": ""}, {"name": "x", "expires_in_days": "0"}, {"name": "x", "expires_in_days": "9999"},
                 {"name": "x", "expires_in_days": "abc"}):  # fmt: skip
        assert post(client, "/account/tokens", data).status_code == 422, data
    assert tokens_of(user) == []


def test_requesters_have_no_tokens(client, make):
    sign_in(client, make.user("requester"))
    assert "API tokens" not in client.get("/account").get_data(as_text=True)
    assert post(client, "/account/tokens", {"name": "x"}).status_code == 403


def test_set_password_command(app, make):
    user = make.user("agent")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", user.email], input="another secret 123\nanother secret 123\n")
    assert result.exit_code == 0, result.output
    assert "password set" in result.output
    make.db.session.refresh(user)
    assert verify_password(user, "another secret 123")
    short = runner.invoke(args=["users", "set-password", user.email, "--password", "short"])
    assert short.exit_code == 1 and "at least 12" in short.output
    missing = runner.invoke(args=["users", "set-password", "nobody@example.com", "--password", "x" * 20])
    assert missing.exit_code == 1


def test_a_token_limited_to_scopes_from_the_account_page(client, make):
    user = make.user("agent")
    sign_in(client, user)
    created = post(client, "/account/tokens", {"name": "reader", "expires_in_days": "30", "scope_read": "1"})
    assert created.status_code == 201
    secret = re.search(r'id="new-token">([^<]+)<', created.get_data(as_text=True)).group(1)
    (token,) = tokens_of(user)
    assert token.scopes == ["read"] and "read" in created.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/cis", headers=headers).status_code == 200
    assert client.post("/api/v1/cis", headers=headers, json={"name": "x", "ci_class": "server"}).status_code == 403
