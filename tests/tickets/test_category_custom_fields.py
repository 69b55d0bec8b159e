"""Custom fields per ticket category: a field applies to tickets of a category and of its
subcategories, checked on create, PATCH, a move to another category and bulk edit; shown in the
JSON Schema, the definition and the CLI; a category a field names is not deleted."""

from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from tickets.models import Ticket

FIELDS = "/api/v1/custom-fields"
CATEGORIES = "/api/v1/ticket-categories"


def _category(client, admin, **body):
    response = client.post(CATEGORIES, headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _define(client, admin, **body):
    body.setdefault("label", body["name"])
    response = client.post(FIELDS, headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _tree(client, admin):
    hardware = _category(client, admin, name="hardware", label="Hardware", kind="incident")
    laptop = _category(client, admin, name="laptop", label="Laptop", kind="incident", parent_id=hardware)
    network = _category(client, admin, name="network", label="Network", kind="incident")
    return hardware, laptop, network


def test_a_category_field_applies_to_the_category_and_its_subcategories(client, make, db):
    admin, agent = make.headers("admin"), make.headers("agent")
    hardware, laptop, network = _tree(client, admin)
    field = _define(
        client, admin, name="asset_tag_seen", type="text", required=True, applies_to={"ticket_categories": [hardware]}
    )
    assert field["applies_to"] == {"ci_classes": [], "ticket_kinds": [], "ticket_categories": [hardware]}
    _define(
        client,
        admin,
        name="dock_model",
        type="choice",
        choices=["usb-c", "tb4"],
        applies_to={"ticket_categories": [laptop]},
    )
    before = db.session.scalar(select(func.count()).select_from(Ticket))
    for category_id in (hardware, laptop):
        missing = client.post(
            "/api/v1/tickets", headers=agent, json={"kind": "incident", "title": "x", "category_id": category_id}
        )
        assert missing.status_code == 422, missing.json
        assert missing.json["errors"]["custom_fields"] == {"asset_tag_seen": ["Missing data for required field."]}
    wrong = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={
            "kind": "incident",
            "title": "x",
            "category_id": hardware,
            "custom_fields": {"asset_tag_seen": "A1", "dock_model": "tb4"},
        },
    )
    assert wrong.json["errors"]["custom_fields"] == {
        "dock_model": [f"Unknown field for incident tickets of category {hardware}."]
    }
    bad_choice = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={
            "kind": "incident",
            "title": "x",
            "category_id": laptop,
            "custom_fields": {"asset_tag_seen": "A1", "dock_model": "vga"},
        },
    )
    assert bad_choice.json["errors"]["custom_fields"] == {"dock_model": ["Must be one of: usb-c, tb4."]}
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == before
    # Outside the category (another category, or none), the field is unknown and not required.
    plain = client.post(
        "/api/v1/tickets", headers=agent, json={"kind": "incident", "title": "p", "category_id": network}
    )
    assert plain.status_code == 201 and plain.json["custom_fields"] == {}
    stray = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "p", "custom_fields": {"asset_tag_seen": "A"}},
    )
    assert stray.json["errors"]["custom_fields"] == {"asset_tag_seen": ["Unknown field for incident tickets."]}
    made = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={
            "kind": "incident",
            "title": "x",
            "category_id": laptop,
            "custom_fields": {"asset_tag_seen": "A1", "dock_model": "tb4"},
        },
    )
    assert made.status_code == 201, made.json
    assert made.json["custom_fields"] == {"asset_tag_seen": "A1", "dock_model": "tb4"}
    ticket_id = made.json["id"]
    # PATCH: a required one can't be removed; moving to another category with its values is refused
    # until they are sent as null.
    removed = client.patch(
        f"/api/v1/tickets/{ticket_id}", headers=agent, json={"custom_fields": {"asset_tag_seen": None}}
    )
    assert removed.status_code == 422
    moved = client.patch(f"/api/v1/tickets/{ticket_id}", headers=agent, json={"category_id": network})
    assert moved.status_code == 422
    assert "send it as null" in moved.json["errors"]["custom_fields"]["asset_tag_seen"][0]
    moved = client.patch(
        f"/api/v1/tickets/{ticket_id}",
        headers=agent,
        json={"category_id": network, "custom_fields": {"asset_tag_seen": None, "dock_model": None}},
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["custom_fields"] == {}
    # Moving into a category with a required field without a value is refused; a default fills it.
    back = client.patch(f"/api/v1/tickets/{ticket_id}", headers=agent, json={"category_id": hardware})
    assert back.status_code == 422
    assert back.json["errors"]["custom_fields"] == {"asset_tag_seen": ["Missing data for required field."]}
    changed = client.patch(f"{FIELDS}/{field['id']}", headers=admin, json={"default": "unknown"})
    assert changed.status_code == 200, changed.json
    back = client.patch(f"/api/v1/tickets/{ticket_id}", headers=agent, json={"category_id": hardware})
    assert back.status_code == 200 and back.json["custom_fields"] == {"asset_tag_seen": "unknown"}


def test_bulk_edit_checks_each_ticket_by_its_category(client, make, db):
    admin, agent = make.headers("admin"), make.headers("agent")
    hardware, laptop, network = _tree(client, admin)
    _define(
        client,
        admin,
        name="bay",
        type="integer",
        validation={"min": 1, "max": 40},
        applies_to={"ticket_categories": [hardware]},
    )
    ids = [
        client.post(
            "/api/v1/tickets", headers=agent, json={"kind": "incident", "title": f"t{c}", "category_id": c}
        ).json["id"]
        for c in (hardware, laptop, network)
    ]
    entries = db.session.scalar(select(func.count()).select_from(ChangeLog))
    results = client.patch(
        "/api/v1/tickets", headers=agent, json={"ids": ids, "set": {"custom_fields": {"bay": 7}}}
    ).json
    assert [r["status"] for r in results] == ["updated", "updated", "error"]
    assert "bay" in results[2]["errors"]["custom_fields"]
    assert db.session.scalar(select(func.count()).select_from(ChangeLog)) - entries == 2
    assert db.session.get(Ticket, ids[1]).custom_fields == {"bay": 7}
    out_of_range = client.patch(
        "/api/v1/tickets", headers=agent, json={"ids": ids[:1], "set": {"custom_fields": {"bay": 99}}}
    ).json
    assert out_of_range[0]["errors"]["custom_fields"] == {"bay": ["Must be at most 40."]}
    # The list filters by it, as any ticket field.
    listed = client.get("/api/v1/tickets", headers=agent, query_string={"cf_bay": "7"})
    assert listed.status_code == 200 and sorted(t["id"] for t in listed.json) == sorted(ids[:2])


def test_definition_checks_and_json_schema(client, make):
    admin = make.headers("admin")
    hardware, laptop, network = _tree(client, admin)
    unknown = client.post(
        FIELDS,
        headers=admin,
        json={"name": "x", "label": "X", "type": "text", "applies_to": {"ticket_categories": [999_999]}},
    )
    assert unknown.status_code == 422
    assert "No ticket category 999999" in unknown.json["errors"]["applies_to"][0]
    builtin = client.post(
        FIELDS,
        headers=admin,
        json={"name": "title", "label": "T", "type": "text", "applies_to": {"ticket_categories": [hardware]}},
    )
    assert builtin.status_code == 422 and "built-in field of tickets" in builtin.json["errors"]["name"][0]
    not_ints = client.post(
        FIELDS,
        headers=admin,
        json={"name": "y", "label": "Y", "type": "text", "applies_to": {"ticket_categories": ["hardware"]}},
    )
    assert not_ints.status_code == 422
    _define(client, admin, name="kind_wide", type="boolean", applies_to={"ticket_kinds": ["incident"]})
    _define(client, admin, name="on_hardware", type="text", applies_to={"ticket_categories": [hardware]})
    _define(client, admin, name="on_laptop", type="text", applies_to={"ticket_categories": [laptop]})
    schema = client.get(f"{FIELDS}/json-schema", headers=admin, query_string={"ticket_category_id": laptop})
    assert schema.status_code == 200, schema.json
    assert set(schema.json["properties"]) == {"kind_wide", "on_hardware", "on_laptop"}
    assert schema.json["title"] == f"Custom fields of incident tickets of category {laptop}"
    top = client.get(
        f"{FIELDS}/json-schema", headers=admin, query_string={"ticket_kind": "incident", "ticket_category_id": hardware}
    )
    assert set(top.json["properties"]) == {"kind_wide", "on_hardware"}
    kind_only = client.get(f"{FIELDS}/json-schema", headers=admin, query_string={"ticket_kind": "incident"})
    assert set(kind_only.json["properties"]) == {"kind_wide"}
    other_kind = client.get(
        f"{FIELDS}/json-schema", headers=admin, query_string={"ticket_kind": "change", "ticket_category_id": laptop}
    )
    assert other_kind.status_code == 422 and "ticket_category_id" in other_kind.json["errors"]
    missing = client.get(f"{FIELDS}/json-schema", headers=admin, query_string={"ticket_category_id": 999_999})
    assert missing.status_code == 422
    spec = client.get("/api/v1/openapi.json").json
    applies = spec["components"]["schemas"]["AppliesTo"]["properties"]
    assert applies["ticket_categories"]["items"]["type"] == "integer"


def test_changing_a_category_field_is_safe_for_values(client, make, db):
    admin, agent = make.headers("admin"), make.headers("agent")
    hardware, laptop, network = _tree(client, admin)
    field = _define(client, admin, name="bay", type="integer", applies_to={"ticket_categories": [hardware]})
    ticket = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "t", "category_id": laptop, "custom_fields": {"bay": 3}},
    ).json
    # Taking the category out of applies_to would drop the value: 409 unless force.
    narrowed = client.patch(
        f"{FIELDS}/{field['id']}", headers=admin, json={"applies_to": {"ticket_categories": [network]}}
    )
    assert narrowed.status_code == 409 and narrowed.json["holding"] == 1
    assert f"category {hardware}" in narrowed.json["detail"]
    # Still reached through the kind: nothing is lost.
    widened = client.patch(
        f"{FIELDS}/{field['id']}",
        headers=admin,
        json={"applies_to": {"ticket_kinds": ["incident"], "ticket_categories": []}},
    )
    assert widened.status_code == 200, widened.json
    assert db.session.get(Ticket, ticket["id"]).custom_fields == {"bay": 3}
    back = client.patch(
        f"{FIELDS}/{field['id']}", headers=admin, json={"applies_to": {"ticket_categories": [hardware]}}
    )
    assert back.status_code == 200
    # A category a field names is not deleted; deleting the field needs force while a ticket holds a value.
    empty = _category(client, admin, name="empty", label="Empty", kind="incident")
    client.patch(
        f"{FIELDS}/{field['id']}", headers=admin, json={"applies_to": {"ticket_categories": [hardware, empty]}}
    )
    refused = client.delete(f"{CATEGORIES}/{empty}", headers=admin)
    assert refused.status_code == 409 and "bay" in refused.json["detail"]
    assert client.delete(f"{FIELDS}/{field['id']}", headers=admin).status_code == 409
    assert client.delete(f"{FIELDS}/{field['id']}", headers=admin, query_string={"force": "true"}).status_code == 204
    db.session.expire_all()
    assert db.session.get(Ticket, ticket["id"]).custom_fields == {}
    assert client.delete(f"{CATEGORIES}/{empty}", headers=admin).status_code == 204


def test_required_category_field_fills_its_default_on_existing_tickets(client, make, db):
    admin, agent = make.headers("admin"), make.headers("agent")
    hardware, laptop, network = _tree(client, admin)
    ids = [
        client.post(
            "/api/v1/tickets", headers=agent, json={"kind": "incident", "title": f"t{c}", "category_id": c}
        ).json["id"]
        for c in (laptop, network)
    ]
    refused = client.post(
        FIELDS,
        headers=admin,
        json={
            "name": "bay",
            "label": "Bay",
            "type": "integer",
            "required": True,
            "applies_to": {"ticket_categories": [hardware]},
        },
    )
    assert refused.status_code == 422 and f"ticket {ids[0]}" in refused.json["errors"]["required"][0]
    _define(
        client,
        admin,
        name="bay",
        type="integer",
        required=True,
        default=1,
        applies_to={"ticket_categories": [hardware]},
    )
    db.session.expire_all()
    assert db.session.get(Ticket, ids[0]).custom_fields == {"bay": 1}
    assert db.session.get(Ticket, ids[1]).custom_fields == {}


def test_cli_defines_and_lists_a_category_field(app, client, make, db):
    admin = make.headers("admin")
    hardware, _laptop, _network = _tree(client, admin)
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "custom-fields",
            "create",
            "bay",
            "--label",
            "Bay",
            "--type",
            "integer",
            "--ticket-category",
            str(hardware),
        ]
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(args=["custom-fields", "list"])
    assert f"ticket category {hardware}" in listed.output
    bad = runner.invoke(
        args=["custom-fields", "create", "bay2", "--label", "B", "--type", "text", "--ticket-category", "999999"]
    )
    assert bad.exit_code == 1 and "No ticket category 999999" in bad.output
