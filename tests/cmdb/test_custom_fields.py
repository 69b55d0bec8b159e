"""Custom fields (cmdb/custom_fields): definitions, values on every CI and ticket write path, bad
input, and definition changes that keep stored values right."""

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.custom_fields.models import CustomField
from cmdb.custom_fields.registry import TICKET_KINDS
from cmdb.custom_fields.services import MAX_FIELDS_PER_CLASS
from cmdb.models import ConfigurationItem
from tickets.models import KINDS

FIELDS = "/api/v1/custom-fields"


def define(client, headers, **body):
    body.setdefault("label", body["name"].replace("_", " ").capitalize())
    body.setdefault("applies_to", {"ci_classes": ["server"]})
    response = client.post(FIELDS, headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def counts(db):
    return (
        db.session.scalar(select(func.count()).select_from(CustomField)),
        db.session.scalar(select(func.count()).select_from(ConfigurationItem)),
        db.session.scalar(select(func.count()).select_from(ChangeLog)),
    )


def test_ticket_kinds_agree_with_the_tickets_package():
    assert TICKET_KINDS == KINDS


def test_an_admin_adds_fields_to_servers_and_they_are_enforced_at_once(client, admin, make):
    pci = define(client, admin, name="pci_scope", type="boolean", default=False, group="Compliance")
    define(client, admin, name="rack_unit", type="integer", validation={"min": 1, "max": 60}, group="Placement")
    assert pci["applies_to"] == {"ci_classes": ["server"], "ticket_kinds": [], "ticket_categories": []}
    assert pci["default"] is False and pci["group"] == "Compliance" and pci["type"] == "boolean"

    created = client.post(
        "/api/v1/cis",
        headers=admin,
        json={"name": "db-01", "ci_class": "server", "custom_fields": {"pci_scope": True, "rack_unit": 12}},
    )
    assert created.status_code == 201, created.json
    assert created.json["custom_fields"] == {"pci_scope": True, "rack_unit": 12}
    ci_id = created.json["id"]
    # a server without values gets the defaults; a laptop has none of these fields
    plain = client.post("/api/v1/cis", headers=admin, json={"name": "web-01", "ci_class": "server"})
    assert plain.json["custom_fields"] == {"pci_scope": False}
    laptop = client.post("/api/v1/cis", headers=admin, json={"name": "lt-01", "ci_class": "laptop"})
    assert laptop.json["custom_fields"] == {}

    changed = client.patch(f"/api/v1/cis/{ci_id}", headers=admin, json={"custom_fields": {"rack_unit": None}})
    assert changed.status_code == 200 and changed.json["custom_fields"] == {"pci_scope": True}
    assert client.get(f"/api/v1/cis/{ci_id}", headers=admin).json["custom_fields"] == {"pci_scope": True}
    history = client.get(f"/api/v1/cis/{ci_id}/history", headers=admin).json
    assert history[0]["changes"]["custom_fields"] == [{"pci_scope": True, "rack_unit": 12}, {"pci_scope": True}]


def test_every_type_in_its_stored_form(client, admin, make):
    team, user, other = make.team(), make.user("agent"), make.ci("server")
    for name, kind, extra in (
        ("notes", "long_text", {}),
        ("code", "text", {"validation": {"regex": "[A-Z]{2}-[0-9]{4}", "max": 7}}),
        ("weight", "decimal", {}),
        ("bought", "date", {}),
        ("seen", "datetime", {}),
        ("tier", "choice", {"choices": ["gold", "silver"]}),
        ("tags", "multi_choice", {"choices": ["a", "b", "c"]}),
        ("docs", "url", {}),
        ("contact", "email", {}),
        ("mgmt", "ip_address", {}),
        ("twin", "ci", {}),
        ("keeper", "user", {}),
        ("crew", "team", {}),
    ):
        define(client, admin, name=name, type=kind, **extra)
    values = {
        "notes": "line\nline", "code": "AB-1234", "weight": 2.5, "bought": "2026-01-31",
        "seen": "2026-01-31T10:00:00+02:00", "tier": "gold", "tags": ["c", "a"], "docs": "https://example.com/x",
        "contact": "ops@example.com", "mgmt": "2001:DB8::1", "twin": other.id, "keeper": user.id, "crew": team.id,
    }  # fmt: skip
    response = client.post(
        "/api/v1/cis", headers=admin, json={"name": "t", "ci_class": "server", "custom_fields": values}
    )
    assert response.status_code == 201, response.json
    stored = response.json["custom_fields"]
    assert stored["seen"] == "2026-01-31T08:00:00Z" and stored["tags"] == ["a", "c"] and stored["mgmt"] == "2001:db8::1"
    assert {k: v for k, v in stored.items() if k not in ("seen", "tags", "mgmt")} == {
        k: v for k, v in values.items() if k not in ("seen", "tags", "mgmt")
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"colour": "red"}, "Unknown field for class server."),
        ({"rack_unit": "12"}, "Not a valid integer"),
        ({"rack_unit": 61}, "Must be at most 60."),
        ({"rack_unit": True}, "Not a valid integer"),
        ({"tier": "bronze"}, "Must be one of: gold, silver."),
        ({"twin": 999999}, "No CI with id 999999."),
        ({"code": "ab-12"}, "Does not match the pattern"),
        ({"laptop_only": "x"}, "Unknown field for class server."),
    ],
)
def test_bad_values_are_422_naming_the_field_and_write_nothing(client, admin, db, fields, message):
    define(client, admin, name="rack_unit", type="integer", validation={"min": 1, "max": 60})
    define(client, admin, name="tier", type="choice", choices=["gold", "silver"])
    define(client, admin, name="twin", type="ci")
    define(client, admin, name="code", type="text", validation={"regex": "[A-Z]{2}-[0-9]{4}"})
    define(client, admin, name="laptop_only", type="text", applies_to={"ci_classes": ["laptop"]})
    before = counts(db)
    response = client.post(
        "/api/v1/cis", headers=admin, json={"name": "x", "ci_class": "server", "custom_fields": fields}
    )
    assert response.status_code == 422, response.json
    (name,) = fields
    assert message in response.json["errors"]["custom_fields"][name][0]
    assert counts(db) == before


def test_required_without_default_is_needed_on_create(client, admin, make):
    define(client, admin, name="owner_code", type="text", required=True, applies_to={"ci_classes": ["router"]})
    missing = client.post("/api/v1/cis", headers=admin, json={"name": "r1", "ci_class": "router"})
    assert missing.status_code == 422
    assert missing.json["errors"]["custom_fields"] == {"owner_code": ["Missing data for required field."]}
    ok = client.post(
        "/api/v1/cis", headers=admin, json={"name": "r1", "ci_class": "router", "custom_fields": {"owner_code": "X"}}
    )
    assert ok.status_code == 201
    removing = client.patch(f"/api/v1/cis/{ok.json['id']}", headers=admin, json={"custom_fields": {"owner_code": None}})
    assert removing.status_code == 422


def test_changing_class_checks_the_new_classes_fields(client, admin, make):
    define(client, admin, name="pci_scope", type="boolean")
    define(client, admin, name="seat", type="text", applies_to={"ci_classes": ["laptop"]}, default="open space")
    ci = client.post(
        "/api/v1/cis", headers=admin, json={"name": "x", "ci_class": "server", "custom_fields": {"pci_scope": True}}
    ).json
    moved = client.patch(f"/api/v1/cis/{ci['id']}", headers=admin, json={"ci_class": "laptop"})
    assert moved.status_code == 422
    assert "Not a field of class laptop" in moved.json["errors"]["custom_fields"]["pci_scope"][0]
    moved = client.patch(
        f"/api/v1/cis/{ci['id']}", headers=admin, json={"ci_class": "laptop", "custom_fields": {"pci_scope": None}}
    )
    assert moved.status_code == 200 and moved.json["custom_fields"] == {"seat": "open space"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Colour", "type": "text"}, "name"),
        ({"name": "hostname", "type": "text"}, "name"),  # a built-in attribute of servers
        ({"name": "status", "type": "text"}, "name"),  # a built-in column
        ({"name": "c", "type": "colour"}, "type"),
        ({"name": "c", "type": "text", "applies_to": {"ci_classes": ["spaceship"]}}, "applies_to"),
        ({"name": "c", "type": "text", "applies_to": {}}, "applies_to"),
        ({"name": "c", "type": "text", "applies_to": {"ticket_kinds": ["bug"]}}, "applies_to"),
        ({"name": "c", "type": "choice"}, "choices"),
        ({"name": "c", "type": "text", "choices": ["a"]}, "choices"),
        ({"name": "c", "type": "choice", "choices": ["a", "a"]}, "choices"),
        ({"name": "c", "type": "choice", "choices": ["a"], "default": "b"}, "default"),
        ({"name": "c", "type": "integer", "default": "3"}, "default"),
        ({"name": "c", "type": "ci", "default": 999999}, "default"),
        ({"name": "c", "type": "text", "validation": {"regex": "("}}, "validation"),
        ({"name": "c", "type": "text", "validation": {"regex": "^(a+)+$"}}, "validation"),
        ({"name": "c", "type": "text", "validation": {"regex": "(a|aa)*b"}}, "validation"),
        ({"name": "c", "type": "text", "validation": {"regex": "(a)\\1"}}, "validation"),
        ({"name": "c", "type": "text", "validation": {"regex": "a" * 201}}, "validation"),
        ({"name": "c", "type": "boolean", "validation": {"min": 1}}, "validation"),
        ({"name": "c", "type": "integer", "validation": {"min": 5, "max": 1}}, "validation"),
        ({"name": "c", "type": "text", "validation": {"max": 2.5}}, "validation"),
    ],
)
def test_bad_definitions_are_422_and_write_nothing(client, admin, db, body, field):
    body = {"label": "C", "applies_to": {"ci_classes": ["server"]}, **body}
    before = counts(db)
    response = client.post(FIELDS, headers=admin, json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"], response.json
    assert counts(db) == before


def test_a_catastrophic_pattern_is_refused_and_a_bounded_one_is_fast(client, admin):
    refused = client.post(
        FIELDS,
        headers=admin,
        json={"name": "c", "label": "C", "type": "text", "applies_to": {"ci_classes": ["server"]},
              "validation": {"regex": "(x+x+)+y"}},
    )  # fmt: skip
    assert refused.status_code == 422 and "backtrack" in refused.json["errors"]["validation"][0]
    define(client, admin, name="ipv4ish", type="long_text", validation={"regex": "(?:[0-9]{1,3}\\.){3}[0-9]{1,3}"})
    ok = client.post(
        "/api/v1/cis", headers=admin, json={"name": "x", "ci_class": "server", "custom_fields": {"ipv4ish": "10.0.0.1"}}
    )
    assert ok.status_code == 201
    bad = client.post(
        "/api/v1/cis",
        headers=admin,
        json={"name": "y", "ci_class": "server", "custom_fields": {"ipv4ish": "1" * 20000}},
    )
    assert bad.status_code == 422


def test_names_are_unique_and_the_per_class_limit_holds(client, admin, db):
    define(client, admin, name="asset_owner", type="text")
    again = client.post(
        FIELDS,
        headers=admin,
        json={"name": "asset_owner", "label": "x", "type": "text", "applies_to": {"ticket_kinds": ["incident"]}},
    )
    assert again.status_code == 422 and "exists" in again.json["errors"]["name"][0]
    db.session.add_all(
        CustomField(name=f"f{i}", label=f"F{i}", type="text", ci_classes=["rack"], ticket_kinds=[])
        for i in range(MAX_FIELDS_PER_CLASS)
    )
    from cmdb.custom_fields.registry import bump_version

    bump_version()
    db.session.commit()
    over = client.post(
        FIELDS,
        headers=admin,
        json={"name": "one_more", "label": "x", "type": "text", "applies_to": {"ci_classes": ["rack"]}},
    )
    assert over.status_code == 422
    assert f"at most {MAX_FIELDS_PER_CLASS}" in over.json["errors"]["applies_to"][0]


def test_roles(client, admin, make):
    field = define(client, admin, name="pci_scope", type="boolean")
    agent = make.headers("agent")
    assert client.get(FIELDS, headers=agent).status_code == 200
    assert client.get(f"{FIELDS}/{field['id']}", headers=agent).status_code == 200
    body = {"name": "x", "label": "x", "type": "text", "applies_to": {"ci_classes": ["server"]}}
    assert client.post(FIELDS, headers=agent, json=body).status_code == 403
    assert client.patch(f"{FIELDS}/{field['id']}", headers=agent, json={"label": "y"}).status_code == 403
    assert client.delete(f"{FIELDS}/{field['id']}", headers=agent).status_code == 403
    assert client.get(FIELDS, headers=make.headers("requester")).status_code == 403


def test_the_list_filters_and_sorts_by_custom_fields(client, admin, make):
    define(client, admin, name="pci_scope", type="boolean", default=False)
    define(client, admin, name="rack_unit", type="integer")
    define(client, admin, name="tags", type="multi_choice", choices=["pci", "sox"])
    define(client, admin, name="site_code", type="text", applies_to={"ci_classes": ["server", "laptop"]})
    made = {}
    for name, values in (
        ("a", {"pci_scope": True, "rack_unit": 10, "tags": ["pci"]}),
        ("b", {"pci_scope": True, "rack_unit": 2, "tags": ["pci", "sox"]}),
        ("c", {"pci_scope": False, "rack_unit": 30}),
        ("d", {"pci_scope": True}),
    ):
        response = client.post(
            "/api/v1/cis", headers=admin, json={"name": name, "ci_class": "server", "custom_fields": values}
        )
        made[name] = response.json["id"]
    client.post(
        "/api/v1/cis", headers=admin, json={"name": "e", "ci_class": "laptop", "custom_fields": {"site_code": "X"}}
    )

    def names(query):
        response = client.get(f"/api/v1/cis?{query}", headers=admin)
        assert response.status_code == 200, response.json
        return [ci["name"] for ci in response.json]

    assert names("cf_pci_scope=true&sort=cf_rack_unit") == ["b", "a", "d"]
    assert names("cf_pci_scope=false") == ["c"]
    assert names("ci_class=server&sort=-cf_rack_unit") == ["c", "a", "b", "d"]
    assert names("cf_rack_unit=30") == ["c"]
    assert names("cf_tags=sox") == ["b"]
    assert names("cf_site_code=X") == ["e"]
    assert names("cf_pci_scope=true&cf_tags=pci&sort=-name") == ["b", "a"]
    for query, key in (
        ("cf_colour=red", "cf_colour"),
        ("cf_pci_scope=maybe", "cf_pci_scope"),
        ("cf_rack_unit=high", "cf_rack_unit"),
        ("cf_tags=gdpr", "cf_tags"),
        ("sort=cf_colour", "sort"),
        ("sort=colour", "sort"),
        ("bogus=1&cf_pci_scope=true", "bogus"),
    ):
        response = client.get(f"/api/v1/cis?{query}", headers=admin)
        assert response.status_code == 422 and key in response.json["errors"], (query, response.json)
    csv_rows = client.get("/api/v1/cis?format=csv&cf_pci_scope=true", headers=admin).get_data(as_text=True).splitlines()
    assert len(csv_rows) == 4


def test_saved_views_and_bulk_edit_take_custom_field_filters(client, admin, make):
    define(client, admin, name="pci_scope", type="boolean", default=False)
    inside = client.post(
        "/api/v1/cis", headers=admin, json={"name": "in", "ci_class": "server", "custom_fields": {"pci_scope": True}}
    ).json
    client.post("/api/v1/cis", headers=admin, json={"name": "out", "ci_class": "server"})
    view = client.post(
        "/api/v1/views", headers=admin, json={"name": "PCI", "resource": "cis", "filters": {"cf_pci_scope": "true"}}
    )
    assert view.status_code == 201, view.json
    wrong = client.post(
        "/api/v1/views", headers=admin, json={"name": "bad", "resource": "cis", "filters": {"cf_nope": "1"}}
    )
    assert wrong.status_code == 422
    edited = client.patch(
        "/api/v1/cis", headers=admin, json={"filter": {"cf_pci_scope": "true"}, "set": {"criticality": "high"}}
    ).json
    assert [r["id"] for r in edited] == [inside["id"]]


def test_the_json_schema_of_a_class_follows_the_definitions(client, admin):
    url = "/api/v1/custom-fields/json-schema"
    empty = client.get(url, headers=admin, query_string={"ci_class": "server"})
    assert empty.status_code == 200 and empty.json["properties"] == {} and empty.json["additionalProperties"] is False
    define(client, admin, name="rack_unit", type="integer", validation={"min": 1, "max": 60}, required=True, default=1)
    define(
        client, admin, name="tier", type="choice", choices=["gold", "silver"], help_text="support tier", group="Support"
    )
    define(client, admin, name="store", type="text", applies_to={"ticket_kinds": ["incident"]})
    schema = client.get(url, headers=admin, query_string={"ci_class": "server"}).json
    assert schema["properties"]["rack_unit"] == {
        "title": "Rack unit", "type": "integer", "minimum": 1, "maximum": 60, "default": 1,
    }  # fmt: skip
    assert schema["properties"]["tier"]["enum"] == ["gold", "silver"] and schema["required"] == ["rack_unit"]
    assert schema["properties"]["tier"]["x-cairn-group"] == "Support"
    tickets = client.get(url, headers=admin, query_string={"ticket_kind": "incident"}).json
    assert list(tickets["properties"]) == ["store"]
    assert client.get(url, headers=admin, query_string={"ci_class": "spaceship"}).status_code == 422
    assert client.get(url, headers=admin).status_code == 422
    document = client.get("/api/v1/openapi.json").json
    for name in ("CI", "Ticket"):
        assert document["components"]["schemas"][name]["properties"]["custom_fields"]["type"] == "object"
    assert "/api/v1/custom-fields/json-schema" in document["paths"]
