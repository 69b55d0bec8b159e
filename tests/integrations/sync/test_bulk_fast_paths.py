"""The bulk API's shortcuts answer and store exactly what the general paths do: the raw-item and
result schemas against marshmallow's own load and dump, rows COPYed on PostgreSQL against a CI
created through POST /cis, the change-log diff, and the collector paused only for one page."""

import gc
from datetime import date
from decimal import Decimal

import marshmallow as ma
import pytest

from cairn.audit.mixin import jsonable
from cmdb import services as cmdb_services
from integrations.sync import services
from integrations.sync.schemas import BulkResultSchema, RawItemSchema

FULL = {
    "ci_class": "server",
    "status": "deployed",
    "criticality": "high",
    "vendor": "  Dell ",
    "serial_number": "SN-FULL-1",
    "model": "R750",
    "description": "a line\twith a tab, a \\ backslash and\na newline",
    "purchase_date": "2024-03-01",
    "purchase_cost": "12000.50",
    "currency": "EUR",
    "warranty_expires": "2027-03-01",
    "attributes": {"hostname": "full-1", "ip_addresses": ["10.0.0.1", "::1"], "cpu_cores": 32},
}
OWN = ("id", "name", "serial_number", "external_ids", "created_at", "updated_at")  # differ between the two CIs


def test_raw_items_load_as_marshmallow_does():
    items = [{"a": 1, "b": {"c": [1, 2]}}, "text", 3, None, [1], {}]
    fast = RawItemSchema(many=True).load(items)
    general = RawItemSchema(many=True).load(items, unknown=ma.INCLUDE)  # marshmallow's own walk
    assert fast == general
    assert fast[0] is not items[0]  # a copy, as marshmallow's
    with pytest.raises(ma.ValidationError):
        RawItemSchema(many=True).load({"not": "a list"})


def test_results_dump_as_marshmallow_does():
    results = [
        services.ItemResult(0, "created", 12).as_dict(),
        services.ItemResult(1, "error", errors={"name": ["Missing data for required field."]}).as_dict(),
        services.ItemResult(2, "unchanged", 7).as_dict(),
    ]
    schema = BulkResultSchema(many=True)
    assert schema.dump(results) == ma.Schema.dump(schema, results)
    assert list(schema.dump(results)[0]) == ["index", "status", "id", "errors"]


def test_created_diff_is_the_jsonable_diff():
    row = {"name": "x", "ci_class": "server", "purchase_cost": Decimal("1.50"), "purchase_date": date(2024, 1, 2),
           "attributes": {"a": [1, "b"]}, "asset_tag": None, "version": 1, "created_at": 0, "id": 5}  # fmt: skip
    skipped = ("created_at", "updated_at", "version")
    expected = {key: [None, jsonable(value)] for key, value in row.items() if value is not None and key not in skipped}
    assert cmdb_services._created_diff(row) == expected


def test_bulk_created_ci_is_stored_as_a_single_create_stores_it(client, make):
    headers = make.headers("admin")
    single = client.post("/api/v1/cis", headers=headers, json={"name": "full-single", **FULL, "serial_number": "S-1"})
    assert single.status_code == 201, single.json
    bulk = client.post(
        "/api/v1/cis/bulk",
        headers=headers,
        json=[{"external_id": {"source": "fast", "id": "full"}, "name": "full-bulk", **FULL, "serial_number": "S-2"}],
    )
    assert bulk.status_code == 200 and bulk.json[0]["status"] == "created", bulk.json
    stored = client.get(f"/api/v1/cis/{bulk.json[0]['id']}", headers=headers).json
    expected = client.get(f"/api/v1/cis/{single.json['id']}", headers=headers).json
    assert stored.keys() == expected.keys()
    assert {k: v for k, v in stored.items() if k not in OWN} == {k: v for k, v in expected.items() if k not in OWN}
    assert stored["created_at"] == stored["updated_at"] and stored["created_at"].endswith(("Z", "+00:00"))
    history = client.get(f"/api/v1/cis/{stored['id']}/history", headers=headers).json
    created = next(h for h in history if h["object_type"] == "ci")
    assert created["changes"]["attributes"] == [None, stored["attributes"]]


def test_the_collector_is_paused_for_one_page_only():
    assert gc.isenabled()
    with services._collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), services._collector_paused():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with services._collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_bulk_lookups_find_what_exists(client, make):
    """The page's lookups (by external id, asset tag, vendor and serial: index probes on PostgreSQL)."""
    headers = make.headers("admin")
    make.ci("server", name="held", vendor="Dell", serial_number="SER-1", asset_tag="TAG-1")
    first = client.post("/api/v1/cis/bulk", headers=headers, json=[_item("probe-a"), _item("probe-b")])
    assert [r["status"] for r in first.json] == ["created", "created"]
    items = [
        _item("probe-a"),  # unchanged: found by its external id
        _item("probe-b", description="changed"),  # updated
        _item("probe-c", vendor="Dell", serial_number="SER-1"),  # the serial is taken for this vendor
        _item("probe-d", vendor="HPE", serial_number="SER-1"),  # another vendor's serial: free
        _item("probe-e", asset_tag="TAG-1"),  # the tag is taken
    ]
    results = client.post("/api/v1/cis/bulk", headers=headers, json=items).json
    assert [r["status"] for r in results] == ["unchanged", "updated", "error", "created", "error"], results
    assert results[0]["id"] == first.json[0]["id"] and results[1]["id"] == first.json[1]["id"]
    assert "SER-1" in results[2]["errors"]["_item"][0] and "TAG-1" in results[4]["errors"]["_item"][0]


def _item(ext, **fields):
    return {"external_id": {"source": "probe", "id": ext}, "name": ext, "ci_class": "server", **fields}
