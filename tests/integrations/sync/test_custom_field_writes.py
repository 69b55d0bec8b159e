"""Custom field values on every CI write path besides POST/PATCH /cis (tests/cmdb): PUT by external
id, the bulk upsert (fast path and item by item), bulk edit, CSV import and export, and webhook
payloads; each checks values as POST /cis does."""

import csv
import io

import pytest
from sqlalchemy import func, select

from cmdb import services as cmdb_services
from cmdb.models import ConfigurationItem
from integrations.webhooks import services as webhook_services

FIELDS = "/api/v1/custom-fields"


@pytest.fixture
def fields(client, make):
    headers = make.headers("admin")
    for body in (
        {"name": "pci_scope", "label": "PCI scope", "type": "boolean", "default": False},
        {"name": "rack_unit", "label": "Rack unit", "type": "integer", "validation": {"min": 1, "max": 60}},
        {"name": "tags", "label": "Tags", "type": "multi_choice", "choices": ["pci", "sox"]},
    ):
        response = client.post(FIELDS, headers=headers, json={**body, "applies_to": {"ci_classes": ["server"]}})
        assert response.status_code == 201, response.json
    return headers


def _values(db, name):
    db.session.expire_all()
    return db.session.scalar(select(ConfigurationItem.custom_fields).where(ConfigurationItem.name == name))


def _count(db):
    return db.session.scalar(select(func.count()).select_from(ConfigurationItem))


def test_put_by_external_id_creates_and_merges(client, fields, db):
    url = "/api/v1/cis/external/erp/S-1"
    created = client.put(
        url, headers=fields, json={"name": "s1", "ci_class": "server", "custom_fields": {"rack_unit": 4}}
    )
    assert created.status_code == 201 and created.json["custom_fields"] == {"pci_scope": False, "rack_unit": 4}
    same = client.put(url, headers=fields, json={"custom_fields": {"rack_unit": 4}})
    assert same.headers["X-Cairn-Upsert"] == "unchanged"
    bad = client.put(url, headers=fields, json={"custom_fields": {"rack_unit": 0}})
    assert bad.status_code == 422 and "rack_unit" in bad.json["errors"]["custom_fields"]
    updated = client.put(url, headers=fields, json={"custom_fields": {"pci_scope": True}})
    assert updated.headers["X-Cairn-Upsert"] == "updated"
    assert updated.json["custom_fields"] == {"pci_scope": True, "rack_unit": 4}


@pytest.mark.parametrize("fast", [True, False])
def test_bulk_upsert_checks_each_item(client, fields, db, monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(cmdb_services, "_bulk_fast", lambda items: None)
    items = [
        {
            "external_id": {"source": "b", "id": "1"},
            "name": "b1",
            "ci_class": "server",
            "custom_fields": {"tags": ["sox", "pci"]},
        },
        {
            "external_id": {"source": "b", "id": "2"},
            "name": "b2",
            "ci_class": "server",
            "custom_fields": {"colour": "red"},
        },
        {
            "external_id": {"source": "b", "id": "3"},
            "name": "b3",
            "ci_class": "laptop",
            "custom_fields": {"rack_unit": 3},
        },
    ]
    before = _count(db)
    results = client.post("/api/v1/cis/bulk", headers=fields, json=items).json
    assert [r["status"] for r in results] == ["created", "error", "error"], results
    assert results[1]["errors"] == {"custom_fields": {"colour": ["Unknown field for class server."]}}
    assert results[2]["errors"] == {"custom_fields": {"rack_unit": ["Unknown field for class laptop."]}}
    assert _count(db) == before + 1 and _values(db, "b1") == {"pci_scope": False, "tags": ["pci", "sox"]}
    again = client.post(
        "/api/v1/cis/bulk", headers=fields, json=[{**items[0], "custom_fields": {"tags": ["pci", "sox"]}}]
    ).json
    assert again[0]["status"] == "unchanged"
    changed = client.post(
        "/api/v1/cis/bulk", headers=fields, json=[{**items[0], "custom_fields": {"rack_unit": 9}}]
    ).json
    assert changed[0]["status"] == "updated" and _values(db, "b1")["rack_unit"] == 9


def test_bulk_edit_sets_values_per_ci(client, fields, make, db):
    servers = [make.ci("server", name=f"be-{n}") for n in range(3)]
    laptop = make.ci("laptop", name="be-laptop")
    body = {"ids": [s.id for s in servers] + [laptop.id], "set": {"custom_fields": {"pci_scope": True}}}
    results = client.patch("/api/v1/cis", headers=fields, json=body).json
    assert [r["status"] for r in results] == ["updated"] * 3 + ["error"]
    assert "pci_scope" in results[3]["errors"]["custom_fields"]
    assert all(_values(db, f"be-{n}")["pci_scope"] is True for n in range(3))
    wrong = client.patch(
        "/api/v1/cis", headers=fields, json={"ids": [servers[0].id], "set": {"custom_fields": {"rack_unit": "x"}}}
    )
    assert wrong.json[0]["status"] == "error"


def test_csv_import_reads_cf_columns_and_export_writes_them(client, fields, db, app, tmp_path):
    text = (
        "name,ci_class,external_id,cf_pci_scope,cf_rack_unit,cf_tags\n"
        'c1,server,c1,true,7,"[""pci""]"\n'
        "c2,server,c2,maybe,,\n"
        "c3,server,c3,,61,\n"
    )
    path = tmp_path / "cis.csv"
    path.write_text(text, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", "cis", str(path), "--source", "csv"])
    assert "created 1" in result.output and "error 2" in result.output, result.output
    assert _values(db, "c1") == {"pci_scope": True, "rack_unit": 7, "tags": ["pci"]}
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("name,ci_class,cf_colour\nx,server,red\n", encoding="utf-8")
    refused = app.test_cli_runner().invoke(args=["import", "cis", str(unknown)])
    assert "cf_colour" in refused.output and _values(db, "x") is None
    exported = client.get("/api/v1/cis", headers=fields, query_string={"format": "csv", "ci_class": "server"})
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    row = next(r for r in rows if r["name"] == "c1")
    assert (row["cf_pci_scope"], row["cf_rack_unit"], row["cf_tags"]) == ("true", "7", '["pci"]')
    laptops = client.get("/api/v1/cis", headers=fields, query_string={"format": "csv", "ci_class": "laptop"})
    assert "cf_pci_scope" not in laptops.get_data(as_text=True).splitlines()[0]


def test_webhook_payloads_carry_the_values(committed_db, committed_client, committed_make, receiver, allow_private):
    admin = committed_make.headers("admin")
    committed_client.post(
        FIELDS,
        headers=admin,
        json={"name": "pci_scope", "label": "PCI", "type": "boolean", "applies_to": {"ci_classes": ["server"]}},
    )
    hook = committed_client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={
            "url": receiver.url,
            "events": ["ci.created"],
            "conditions": [{"field": "custom_fields.pci_scope", "op": "eq", "value": True}],
        },
    )
    assert hook.status_code == 201, hook.json
    receiver.secret = hook.json["secret"]
    committed_client.post(
        "/api/v1/cis", headers=admin, json={"name": "in", "ci_class": "server", "custom_fields": {"pci_scope": True}}
    )
    committed_client.post(
        "/api/v1/cis", headers=admin, json={"name": "out", "ci_class": "server", "custom_fields": {"pci_scope": False}}
    )
    assert webhook_services.sweep()["dispatched"] == 1
    body = receiver.requests[0]["json"]
    assert body["data"]["object"]["name"] == "in" and body["data"]["object"]["custom_fields"] == {"pci_scope": True}
    assert body["data"]["changes"]["custom_fields"] == [None, {"pci_scope": True}]


def test_discovery_creates_cis_with_the_defaults_and_is_refused_a_required_field(client, make, db):
    admin = make.headers("admin")
    integration = make.headers("integration")
    client.post(
        FIELDS,
        headers=admin,
        json={"name": "site_code", "label": "Site", "type": "text", "applies_to": {"ci_classes": ["server"]},
              "required": True, "default": "HQ"},
    )  # fmt: skip
    client.post(
        FIELDS,
        headers=admin,
        json={"name": "contract", "label": "Contract", "type": "text", "applies_to": {"ci_classes": ["router"]},
              "required": True},
    )  # fmt: skip
    run = client.post(
        "/api/v1/discovery/runs",
        headers=integration,
        json={
            "source": "agent",
            "items": [{"ci_class": "server", "hostname": "found-1"}, {"ci_class": "router", "hostname": "rt-1"}],
        },
    )
    assert run.status_code in (201, 202), run.json
    results = {r["index"]: r for r in run.json["results"]}
    assert results[0]["status"] == "created" and _values(db, "found-1") == {"site_code": "HQ"}
    assert results[1]["status"] == "error" and "contract" in str(results[1]["errors"])
