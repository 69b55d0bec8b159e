"""Scoped tokens (API.md): a token may be limited to scopes and networks; a call outside them is 403
(problem+json naming the scope), whatever the user's role would allow; every API operation needs a
known scope; a limited token never mints a broader one; /me shows the limits."""

from __future__ import annotations

import pytest

from cairn.auth.guard import PATH_TOKEN, PUBLIC, declared_roles, needed_scope
from cairn.auth.scopes import SCOPES

INBOUND = (
    b"From: someone@example.com\r\nTo: desk@example.com\r\nSubject: printer\r\nMessage-ID: <s1@x>\r\n\r\nbroken\r\n"
)


def _headers(make, role="admin", **limits):
    user = make.user(role)
    from cairn.auth.services import create_token
    from cairn.db import db

    _, secret = create_token(user, "scoped", **limits)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_a_read_token_reads_and_asks_what_if_but_writes_nothing(client, make):
    headers = _headers(make, scopes=["read"])
    ci = make.ci("server")
    assert client.get("/api/v1/cis", headers=headers).status_code == 200
    assert client.post("/api/v1/impact", headers=headers, json={"ci_ids": [ci.id]}).status_code == 200
    refused = client.post("/api/v1/cis", headers=headers, json={"name": "x", "ci_class": "server"})
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert "cmdb:write" in refused.json["detail"] and "read" in refused.json["detail"]
    assert client.patch(f"/api/v1/cis/{ci.id}", headers=headers, json={"name": "y"}).status_code == 403


def test_each_write_needs_its_scope(client, make):
    cmdb = _headers(make, scopes=["read", "cmdb:write"])
    assert client.post("/api/v1/cis", headers=cmdb, json={"name": "x", "ci_class": "server"}).status_code == 201
    body = {"kind": "incident", "title": "t", "description": "d", "impact": 3, "urgency": 3}
    assert client.post("/api/v1/tickets", headers=cmdb, json=body).status_code == 403
    bulk = [{"name": "b", "ci_class": "server", "external_id": {"source": "s", "id": "1"}}]
    assert client.post("/api/v1/cis/bulk", headers=cmdb, json=bulk).status_code == 403
    tickets = _headers(make, scopes=["tickets:write"])
    assert client.post("/api/v1/tickets", headers=tickets, json=body).status_code == 201
    assert client.get("/api/v1/tickets", headers=tickets).status_code == 403, "no read scope: no reading"
    assert (
        client.post("/api/v1/users", headers=cmdb, json={"email": "n@example.com", "role": "agent"}).status_code == 403
    )


def test_a_mail_token_hands_over_mail_and_nothing_else(client, make):
    headers = _headers(make, "integration", scopes=["mail:inbound"])
    posted = client.post("/api/v1/inbound-email", headers={**headers, "Content-Type": "message/rfc822"}, data=INBOUND)
    assert posted.status_code == 202, posted.json
    assert client.get("/api/v1/cis", headers=headers).status_code == 403


def test_scopes_never_widen_what_the_role_allows(client, make):
    headers = _headers(make, "requester", scopes=list(SCOPES))
    assert client.post("/api/v1/cis", headers=headers, json={"name": "x", "ci_class": "server"}).status_code == 403


def test_networks(client, make):
    elsewhere = _headers(make, allowed_networks=["10.0.0.0/8"])
    refused = client.get("/api/v1/me", headers=elsewhere)
    assert refused.status_code == 403 and "address" in refused.json["detail"]
    here = _headers(make, allowed_networks=["127.0.0.0/8", "::1/128"])
    me = client.get("/api/v1/me", headers=here)
    assert me.status_code == 200 and me.json["token_allowed_networks"] == ["127.0.0.0/8", "::1/128"]


def test_me_shows_the_limits_and_a_limited_token_mints_no_broader_one(client, make):
    headers = _headers(make, scopes=["read", "admin"])
    me = client.get("/api/v1/me", headers=headers).json
    assert me["token_scopes"] == ["admin", "read"] and me["token_allowed_networks"] is None
    broader = client.post("/api/v1/tokens", headers=headers, json={"name": "wider", "scopes": ["read", "cmdb:write"]})
    assert broader.status_code == 403
    inherited = client.post("/api/v1/tokens", headers=headers, json={"name": "same"})
    assert inherited.status_code == 201 and inherited.json["scopes"] == ["admin", "read"]
    narrower = client.post("/api/v1/tokens", headers=headers, json={"name": "narrow", "scopes": ["read"]})
    assert narrower.status_code == 201 and narrower.json["scopes"] == ["read"]
    fresh = {"Authorization": f"Bearer {narrower.json['token']}"}
    assert client.get("/api/v1/me", headers=fresh).json["token_scopes"] == ["read"]
    unlimited = make.headers("admin")
    assert client.get("/api/v1/me", headers=unlimited).json["token_scopes"] is None
    boxed = _headers(make, scopes=["admin", "read"], allowed_networks=["127.0.0.0/8"])
    wide = client.post("/api/v1/tokens", headers=boxed, json={"name": "w", "allowed_networks": ["0.0.0.0/0"]})
    assert wide.status_code == 403


@pytest.mark.parametrize(
    "body", [{"scopes": ["root"]}, {"scopes": []}, {"allowed_networks": ["not-a-net"]}, {"allowed_networks": []}]
)
def test_bad_limits_are_422(client, make, body):
    response = client.post("/api/v1/tokens", headers=make.headers("admin"), json={"name": "x", **body})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


def test_every_api_operation_needs_a_known_scope(app):
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api/v1") or "openapi" in rule.rule:
                continue
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if declared_roles(rule.endpoint, method) in (PUBLIC, PATH_TOKEN, None):
                    continue
                assert needed_scope(app, rule.endpoint, method) in SCOPES, f"{method} {rule.rule}"


def test_the_cli_makes_a_scoped_token(app, db, make):
    user = make.user("integration")
    result = app.test_cli_runner().invoke(
        args=["tokens", "create", user.email, "--scope", "read", "--scope", "sync", "--allow-network", "10.1.0.0/16"]
    )
    assert result.exit_code == 0, result.output
    assert "scopes read, sync" in result.output and "from 10.1.0.0/16" in result.output
    bad = app.test_cli_runner().invoke(args=["tokens", "create", user.email, "--scope", "root"])
    assert bad.exit_code != 0
