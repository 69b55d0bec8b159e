"""Vendors, contracts and licences over HTTP: validation, roles, ETags and CI history."""

import pytest
from sqlalchemy import func, select

from cmdb.assets.models import Contract, Licence, Vendor


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_vendor_create_list_patch(client, manager, db):
    body = {
        "name": "Dell",
        "contact_name": "Ann",
        "contact_email": "ann@dell.example",
        "portal_url": "https://dell.example",
    }
    created = client.post("/api/v1/vendors", headers=manager, json=body)
    assert created.status_code == 201, created.json
    assert created.json["contact_email"] == "ann@dell.example" and created.headers["ETag"]
    assert client.post("/api/v1/vendors", headers=manager, json={"name": "Dell"}).status_code == 409
    listed = client.get("/api/v1/vendors?q=de", headers=manager)
    assert [v["name"] for v in listed.json] == ["Dell"]
    stale = client.patch(
        f"/api/v1/vendors/{created.json['id']}", headers={**manager, "If-Match": '"nope"'}, json={"notes": "x"}
    )
    assert stale.status_code == 412
    patched = client.patch(f"/api/v1/vendors/{created.json['id']}", headers=manager, json={"notes": "gold partner"})
    assert patched.status_code == 200 and patched.json["notes"] == "gold partner"
    assert client.get("/api/v1/vendors/999999", headers=manager).status_code == 404


def test_contract_covering_cis_shows_in_their_history(client, manager, assets):
    vendor = assets.vendor()
    laptop, server = assets.device("laptop"), assets.device("server")
    body = {
        "vendor_id": vendor.id,
        "type": "support",
        "name": "Gold support",
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
        "cost": "1000.00",
        "recurring_cost": "50.00",
        "recurring_period": "monthly",
        "auto_renew": True,
        "notice_days": 60,
        "ci_ids": [laptop.id, server.id],
    }
    response = client.post("/api/v1/contracts", headers=manager, json=body)
    assert response.status_code == 201, response.json
    contract = response.json
    assert contract["ci_ids"] == sorted([laptop.id, server.id])
    assert contract["notice_deadline"] == "2025-11-01"
    assert contract["vendor_name"] == vendor.name
    history = client.get(f"/api/v1/cis/{laptop.id}/history", headers=manager).json
    assert any("covered by contract" in h["summary"] for h in history)
    # Replace the covered CIs: the laptop leaves, its history says so.
    patched = client.patch(f"/api/v1/contracts/{contract['id']}", headers=manager, json={"ci_ids": [server.id]})
    assert patched.status_code == 200 and patched.json["ci_ids"] == [server.id]
    history = client.get(f"/api/v1/cis/{laptop.id}/history", headers=manager).json
    assert any("no longer covered" in h["summary"] for h in history)
    assert [c["id"] for c in client.get(f"/api/v1/contracts?ci_id={server.id}", headers=manager).json] == [
        contract["id"]
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": "2024-12-31"}, "end_date"),
        ({"cost": "-1.00"}, "cost"),
        ({"recurring_cost": "-5"}, "recurring_cost"),
        ({"notice_days": -1}, "notice_days"),
        ({"vendor_id": 987654}, "vendor_id"),
        ({"ci_ids": [987654]}, "ci_ids"),
        ({"type": "handshake"}, "type"),
        ({"recurring_cost": "10.00"}, "recurring_period"),
        ({"start_date": "not a date"}, "start_date"),
        ({"owner_team_id": 987654}, "owner_team_id"),
    ],
)
def test_bad_contracts_are_422_and_change_nothing(client, manager, assets, db, change, field):
    vendor = assets.vendor()
    body = {"vendor_id": vendor.id, "type": "lease", "start_date": "2025-01-01", **change}
    before = _count(db, Contract)
    response = client.post("/api/v1/contracts", headers=manager, json=body)
    assert response.status_code == 422, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert field in response.json["errors"]
    assert _count(db, Contract) == before


def test_patch_contract_end_before_existing_start_is_422(client, manager, assets):
    contract = assets.contract(end_date=None)
    response = client.patch(f"/api/v1/contracts/{contract.id}", headers=manager, json={"end_date": "2023-06-30"})
    assert response.status_code == 422 and "end_date" in response.json["errors"]
    assert client.get(f"/api/v1/contracts/{contract.id}", headers=manager).json["end_date"] is None


def test_roles(client, make, assets):
    vendor = assets.vendor()
    body = {"vendor_id": vendor.id, "type": "saas", "start_date": "2025-01-01"}
    assert client.post("/api/v1/contracts", headers=make.headers("auditor"), json=body).status_code == 403
    assert client.post("/api/v1/contracts", headers=make.headers("agent"), json=body).status_code == 403
    assert client.get("/api/v1/contracts", headers=make.headers("requester")).status_code == 403
    assert client.get("/api/v1/contracts", headers=make.headers("auditor")).status_code == 200
    assert client.get("/api/v1/contracts").status_code == 401
    assert client.post("/api/v1/contracts", headers=make.headers("asset_manager"), json=body).status_code == 201


def test_licence_rules(client, manager, assets, make, db):
    office = assets.software("Office", publisher="Microsoft", version="2021")
    laptop = assets.device("laptop")
    base = {"software_id": office.id, "model": "per_device", "quantity": 10, "start_date": "2025-01-01"}
    created = client.post("/api/v1/licences", headers=manager, json={**base, "cost": "990.00"})
    assert created.status_code == 201, created.json
    assert created.json["cost"] == "990.00"
    before = _count(db, Licence)
    for change, field in [
        ({"software_id": laptop.id}, "software_id"),
        ({"software_id": 987654}, "software_id"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"cost": "-3"}, "cost"),
        ({"end_date": "2024-01-01"}, "end_date"),
        ({"contract_id": 987654}, "contract_id"),
        ({"model": "per_galaxy"}, "model"),
    ]:
        response = client.post("/api/v1/licences", headers=manager, json={**base, **change})
        assert response.status_code == 422, (change, response.json)
        assert field in response.json["errors"], change
    assert _count(db, Licence) == before
    site = client.post("/api/v1/licences", headers=manager, json={**base, "model": "site", "quantity": None})
    assert site.status_code == 201 and site.json["quantity"] is None
    # The software CI's history shows its licences.
    history = client.get(f"/api/v1/cis/{office.id}/history", headers=manager).json
    assert sum("licence" in h["summary"] for h in history) == 2
    patched = client.patch(f"/api/v1/licences/{created.json['id']}", headers=manager, json={"end_date": "2024-12-31"})
    assert patched.status_code == 422
    listed = client.get(f"/api/v1/licences?software_id={office.id}&model=site", headers=manager)
    assert [item["id"] for item in listed.json] == [site.json["id"]]


def test_vendor_names_are_bounded(client, manager, db):
    before = _count(db, Vendor)
    assert client.post("/api/v1/vendors", headers=manager, json={"name": "x" * 201}).status_code == 422
    assert client.post("/api/v1/vendors", headers=manager, json={"name": "ok", "surprise": 1}).status_code == 422
    assert _count(db, Vendor) == before
