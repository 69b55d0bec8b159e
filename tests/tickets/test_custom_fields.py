"""Custom fields on tickets: the fields of the ticket's kind, checked on create, PATCH and bulk edit,
shown in the answer and the history."""

from sqlalchemy import func, select

from tickets.models import Ticket

FIELDS = "/api/v1/custom-fields"


def _define(client, headers, **body):
    body.setdefault("label", body["name"])
    response = client.post(FIELDS, headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _count(db):
    return db.session.scalar(select(func.count()).select_from(Ticket))


def test_ticket_values_by_kind(client, make, db):
    admin = make.headers("admin")
    agent = make.headers("agent")
    _define(
        client, admin, name="store", type="text", applies_to={"ticket_kinds": ["incident", "request"]}, required=True
    )
    _define(
        client, admin, name="rollback_tested", type="boolean", applies_to={"ticket_kinds": ["change"]}, default=False
    )
    _define(client, admin, name="affected_host", type="ci", applies_to={"ticket_kinds": ["incident"]})
    ci = make.ci("server")
    before = _count(db)
    missing = client.post("/api/v1/tickets", headers=agent, json={"kind": "incident", "title": "down"})
    assert missing.status_code == 422
    assert missing.json["errors"]["custom_fields"] == {"store": ["Missing data for required field."]}
    wrong_kind = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "down", "custom_fields": {"store": "S1", "rollback_tested": True}},
    )
    assert wrong_kind.json["errors"]["custom_fields"] == {"rollback_tested": ["Unknown field for incident tickets."]}
    no_ci = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "down", "custom_fields": {"store": "S1", "affected_host": 999_999}},
    )
    assert no_ci.json["errors"]["custom_fields"] == {"affected_host": ["No CI with id 999999."]}
    assert _count(db) == before
    created = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "down", "custom_fields": {"store": "S1", "affected_host": ci.id}},
    )
    assert created.status_code == 201, created.json
    assert created.json["custom_fields"] == {"store": "S1", "affected_host": ci.id}
    ticket_id = created.json["id"]
    patched = client.patch(f"/api/v1/tickets/{ticket_id}", headers=agent, json={"custom_fields": {"store": "S2"}})
    assert patched.status_code == 200 and patched.json["custom_fields"]["store"] == "S2"
    assert (
        client.patch(f"/api/v1/tickets/{ticket_id}", headers=agent, json={"custom_fields": {"store": None}}).status_code
        == 422
    )
    history = client.get(f"/api/v1/tickets/{ticket_id}/history", headers=agent).json
    assert any(
        entry["changes"].get("custom_fields", [None])[-1] == {"store": "S2", "affected_host": ci.id}
        for entry in history
    )
    change = client.post("/api/v1/tickets", headers=agent, json={"kind": "change", "title": "patch"})
    assert change.status_code == 201 and change.json["custom_fields"] == {"rollback_tested": False}
    results = client.patch(
        "/api/v1/tickets",
        headers=agent,
        json={"ids": [ticket_id, change.json["id"]], "set": {"custom_fields": {"store": "S3"}}},
    ).json
    assert [r["status"] for r in results] == ["updated", "error"]
    assert "store" in results[1]["errors"]["custom_fields"]


def test_the_ticket_list_filters_and_sorts_by_custom_fields(client, make):
    admin = make.headers("admin")
    _define(
        client,
        admin,
        name="store",
        type="choice",
        choices=["north", "south"],
        applies_to={"ticket_kinds": ["incident"]},
    )
    _define(client, admin, name="tills_down", type="integer", applies_to={"ticket_kinds": ["incident"]})
    for title, store, tills in (("one", "north", 3), ("two", "south", 1), ("three", "north", 7)):
        response = client.post(
            "/api/v1/tickets",
            headers=admin,
            json={"kind": "incident", "title": title, "custom_fields": {"store": store, "tills_down": tills}},
        )
        assert response.status_code == 201, response.json
    listed = client.get("/api/v1/tickets?cf_store=north&sort=-cf_tills_down", headers=admin)
    assert listed.status_code == 200 and [t["title"] for t in listed.json] == ["three", "one"]
    assert client.get("/api/v1/tickets?cf_store=east", headers=admin).status_code == 422
    assert client.get("/api/v1/tickets?cf_unknown=1", headers=admin).status_code == 422
