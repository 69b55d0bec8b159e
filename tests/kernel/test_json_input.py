"""JSON bodies are read once, in the kernel, with limits: what Python's parser or the database driver
cannot take is a 400 problem on every JSON endpoint for every role, never a 500. Ids past the
database range are 404 in the path and query (422 as a reference in a body); a required body must be
sent; an id is a whole number: 3 or 3.0 (the same JSON number), not "3" nor 3.5."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cairn.db import MAX_ID
from cairn.errors import PROBLEM_JSON

DEEP_LIST = b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b', "ci_class": "server"}'
DEEP_DICT = b'{"name": "x", "attributes": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}"
LONE_SURROGATE = b'{"name": "t\\udfff", "ci_class": "server"}'
SURROGATE_KEY = b'{"name": "x", "ci_class": "server", "attributes": {"k\\ud800": 1}}'
HUGE_INT = b'{"name": "x", "ci_class": "server", "owner_team_id": ' + b"1" * 4301 + b"}"
HOSTILE = {
    "deep list": (DEEP_LIST, "deeper than"),
    "deep object": (DEEP_DICT, "deeper than"),
    "lone surrogate": (LONE_SURROGATE, "surrogate"),
    "surrogate in a key": (SURROGATE_KEY, "surrogate"),
    "4,301 digits": (HUGE_INT, "digits"),
}


def _problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == PROBLEM_JSON
    body = response.json
    assert body["status"] == status and body["detail"]
    return body


def _last_change(db):
    return db.session.scalar(select(func.max(ChangeLog.id)))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_json_is_400_naming_the_problem(client, admin, db, name):
    raw, words = HOSTILE[name]
    before = _last_change(db)
    body = _problem(client.post("/api/v1/cis", headers=admin, data=raw, content_type="application/json"), 400)
    assert words in body["detail"]
    assert _last_change(db) == before


def _json_write_routes(client):
    spec = client.get("/api/v1/openapi.json").json
    routes = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get(
                "content", {}
            ):
                routes.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return routes


def test_every_json_endpoint_refuses_hostile_json_for_every_role(client, make, db):
    make.ci(name="the-one")  # paths use id 1: whether it exists or not, the body is refused first
    routes = _json_write_routes(client)
    assert ("POST", "/api/v1/cis") in routes and ("POST", "/api/v1/tickets") in routes and len(routes) > 30
    roles = {role: make.headers(role) for role in ("admin", "agent", "requester", "integration")}
    before = _last_change(db)
    seen = set()
    for method, url in routes:
        for role, headers in roles.items():
            for name, (raw, _) in HOSTILE.items():
                response = client.open(url, method=method, headers=headers, data=raw, content_type="application/json")
                where = (method, url, role, name)
                assert response.status_code < 500, (where, response.get_data(as_text=True)[:300])
                assert response.mimetype == PROBLEM_JSON, where
                seen.add(response.status_code)
    assert _last_change(db) == before
    # Roles that may write get as far as the body (400); the others are stopped before it (403).
    assert 400 in seen and seen <= {400, 403, 404, 422}


def test_ids_past_the_database_range(client, admin, make, db):
    """In the path or a query parameter an id past the range is 404, like any id of nothing; in a
    body it refers to another object, and a reference to nothing is 422 naming the field (as for an
    unknown id in range), with a message that says why."""
    team = make.team()
    ci = make.ci()
    before = _last_change(db)
    for big in (MAX_ID + 1, 99999999999, 10**20):
        _problem(client.get(f"/api/v1/cis/{big}", headers=admin), 404)
        body = _problem(client.get(f"/api/v1/cis?owner_team_id={big}", headers=admin), 404)
        assert "owner_team_id" in body["detail"] and str(big) in body["detail"]
        _problem(client.get(f"/api/v1/tickets?team_id={big}&ci_id=1", headers=admin), 404)

        created = client.post(
            "/api/v1/cis", headers=admin, json={"name": "far", "ci_class": "server", "owner_team_id": big}
        )
        assert _problem(created, 422)["errors"] == {"owner_team_id": [f"Nothing has id {big}: ids go up to {MAX_ID}."]}
        patched = client.patch(f"/api/v1/cis/{ci.id}", headers=admin, json={"location_id": big})
        assert "location_id" in _problem(patched, 422)["errors"]
        ticket = {"kind": "incident", "title": "t", "ci_ids": [ci.id, big]}
        assert _problem(client.post("/api/v1/tickets", headers=admin, json=ticket), 422)["errors"] == {
            "ci_ids": {"1": [f"Nothing has id {big}: ids go up to {MAX_ID}."]}
        }
    assert _last_change(db) == before
    # A query with another parameter wrong too is 422 naming both.
    mixed = client.get("/api/v1/cis?owner_team_id=99999999999&status=lost", headers=admin)
    assert set(_problem(mixed, 422)["errors"]) == {"owner_team_id", "status"}
    assert client.get(f"/api/v1/cis?owner_team_id={team.id}", headers=admin).status_code == 200


def test_a_required_body_must_be_sent(client, admin, make, db):
    ci, team = make.ci(name="keep-me"), make.team()
    before = _last_change(db)
    tokens_before = len(client.get("/api/v1/tokens", headers=admin).json)
    for method, url in (
        ("PATCH", f"/api/v1/cis/{ci.id}"),
        ("POST", "/api/v1/cis"),
        ("POST", "/api/v1/tokens"),
        ("PATCH", f"/api/v1/teams/{team.id}"),
    ):
        body = _problem(client.open(url, method=method, headers=admin), 422)
        assert "needs a JSON body" in body["detail"], (method, url)
        # Whitespace is no body either.
        _problem(client.open(url, method=method, headers=admin, data=" \r\n", content_type="application/json"), 422)
    assert _last_change(db) == before
    assert len(client.get("/api/v1/tokens", headers=admin).json) == tokens_before
    # An empty object is a body: a PATCH that changes nothing.
    assert client.patch(f"/api/v1/cis/{ci.id}", headers=admin, json={}).status_code == 200


def test_an_id_is_a_whole_number_not_text_nor_a_fraction(client, admin, make, db):
    """JSON has one number type and the document's ``type: integer`` is JSON Schema's: 3.0 is the
    integer 3. Text ("3") and fractions (3.5, never truncated) are not ids."""
    team = make.team()
    before = _last_change(db)
    for body in (
        {"name": "f", "ci_class": "server", "owner_team_id": str(team.id)},
        {"name": "f", "ci_class": "server", "owner_team_id": team.id + 0.5},
        {"name": "f", "ci_class": "server", "owner_team_id": True},
    ):
        problem = _problem(client.post("/api/v1/cis", headers=admin, json=body), 422)
        (message,) = problem["errors"]["owner_team_id"]
        assert "whole number" in message and '"3"' in message
    items = _problem(
        client.post("/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "t", "ci_ids": ["1"]}), 422
    )
    assert "whole number" in items["errors"]["ci_ids"]["0"][0]
    assert _last_change(db) == before
    for owner in (team.id, float(team.id)):
        created = client.post(
            "/api/v1/cis", headers=admin, json={"name": "f", "ci_class": "server", "owner_team_id": owner}
        )
        assert created.status_code == 201 and created.json["owner_team_id"] == team.id


def test_json_in_a_csv_cell_is_read_with_the_same_limits(client, make, db):
    """A typed attribute cell of an import is JSON too: one hostile cell fails its row alone, not
    the whole import job."""
    from cmdb.models import ConfigurationItem

    headers = make.headers("integration")
    deep = "[" * 3000 + "]" * 3000
    text = (
        "name,ci_class,attributes.ip_addresses\r\n"
        'json-ok-1,server,"[""10.0.0.1""]"\r\n'
        f'json-deep,server,"{deep}"\r\n'
        'json-surrogate,server,"[""\\udfff""]"\r\n'
        f"json-digits,server,[{'1' * 4301}]\r\n"
        "json-ok-2,server,\r\n"
    )
    response = client.post("/api/v1/imports/cis", headers={**headers, "Content-Type": "text/csv"}, data=text)
    assert response.status_code == 202, response.json
    job = client.get(f"/api/v1/imports/{response.json['id']}", headers=headers).json
    assert job["status"] == "done", job["error"]
    assert job["counts"]["created"] == 2 and [r["row"] for r in job["results"]] == [3, 4, 5]
    names = db.session.scalars(select(ConfigurationItem.name).where(ConfigurationItem.name.like("json-%"))).all()
    assert sorted(names) == ["json-ok-1", "json-ok-2"]
