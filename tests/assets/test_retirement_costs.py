"""Retirement (request, approval, wipe, disposal), maintenance and costs."""

from datetime import date
from decimal import Decimal

import time_machine
from sqlalchemy import func, select

from cmdb.assets.models import DisposalRecord, MaintenanceRecord, WipeRecord

WIPE = {"method": "crypto_erase", "performed_by": "Blancco Ltd", "certificate": "CERT-0042"}


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_full_retirement_workflow_is_in_the_history(client, make, assets, db):
    agent, manager = make.headers("agent"), make.headers("asset_manager")
    laptop = assets.device("laptop", status="deployed")
    requested = client.post(f"/api/v1/cis/{laptop.id}/retirement", headers=agent, json={"reason": "broken hinge"})
    assert requested.status_code == 201 and requested.json["state"] == "requested"
    again = client.post(f"/api/v1/cis/{laptop.id}/retirement", headers=agent, json={"reason": "again"})
    assert again.status_code == 409
    decision_url = f"/api/v1/retirement-requests/{requested.json['id']}/decision"
    assert client.post(decision_url, headers=agent, json={"decision": "approve"}).status_code == 403
    approved = client.post(decision_url, headers=manager, json={"decision": "approve", "comment": "ok"})
    assert approved.status_code == 200 and approved.json["state"] == "approved"
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=agent).json["status"] == "retired"
    assert client.post(decision_url, headers=manager, json={"decision": "reject"}).status_code == 409

    wiped = client.post(f"/api/v1/cis/{laptop.id}/wipe", headers=agent, json=WIPE)
    assert wiped.status_code == 201 and wiped.json["certificate"] == "CERT-0042"
    disposed = client.post(
        f"/api/v1/cis/{laptop.id}/disposal", headers=manager, json={"method": "resell", "proceeds": "120.00"}
    )
    assert disposed.status_code == 201, disposed.json
    assert disposed.json["proceeds"] == "120.00"
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=agent).json["status"] == "disposed"
    assert client.get(f"/api/v1/cis/{laptop.id}/disposal", headers=agent).json["method"] == "resell"
    summaries = [h["summary"] for h in client.get(f"/api/v1/cis/{laptop.id}/history", headers=agent).json]
    text = "\n".join(summaries)
    for expected in ("retirement of CI", "approved", "data wipe", "disposed of (resell)"):
        assert expected in text, (expected, summaries)


def test_reject_keeps_the_ci(client, make, assets):
    manager = make.headers("asset_manager")
    server = assets.device("server", status="in_stock")
    req = client.post(f"/api/v1/cis/{server.id}/retirement", headers=manager, json={"reason": "old"}).json
    rejected = client.post(
        f"/api/v1/retirement-requests/{req['id']}/decision", headers=manager, json={"decision": "reject"}
    )
    assert rejected.json["state"] == "rejected"
    assert client.get(f"/api/v1/cis/{server.id}", headers=manager).json["status"] == "in_stock"
    pending = client.get("/api/v1/retirement-requests?state=rejected", headers=manager).json
    assert [p["id"] for p in pending] == [req["id"]]


def test_wipe_needs_a_retired_ci(client, manager, assets, db):
    laptop = assets.device("laptop", status="deployed")
    response = client.post(f"/api/v1/cis/{laptop.id}/wipe", headers=manager, json=WIPE)
    assert response.status_code == 409 and response.json["status_now"] == "deployed"
    assert _count(db, WipeRecord) == 0
    assert client.post("/api/v1/cis/987654/wipe", headers=manager, json=WIPE).status_code == 404
    bad = client.post(f"/api/v1/cis/{laptop.id}/wipe", headers=manager, json={**WIPE, "method": "magnet?"})
    assert bad.status_code == 422 and "method" in bad.json["errors"]


def test_disposal_before_wipe_is_409_by_any_route(client, manager, assets, db):
    laptop = assets.device("laptop", status="retired")
    response = client.post(f"/api/v1/cis/{laptop.id}/disposal", headers=manager, json={"method": "recycle"})
    assert response.status_code == 409 and response.json["missing"] == "wipe"
    # PATCH /cis/{id} status=disposed obeys the same rule.
    patched = client.patch(f"/api/v1/cis/{laptop.id}", headers=manager, json={"status": "disposed"})
    assert patched.status_code == 409 and "wipe" in patched.json["detail"]
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=manager).json["status"] == "retired"
    assert _count(db, DisposalRecord) == 0
    assert client.post(f"/api/v1/cis/{laptop.id}/wipe", headers=manager, json=WIPE).status_code == 201
    patched = client.patch(f"/api/v1/cis/{laptop.id}", headers=manager, json={"status": "disposed"})
    assert patched.status_code == 200 and patched.json["status"] == "disposed"


def test_disposal_of_a_deployed_ci_is_409(client, manager, assets):
    laptop = assets.device("laptop", status="deployed")
    response = client.post(f"/api/v1/cis/{laptop.id}/disposal", headers=manager, json={"method": "donate"})
    assert response.status_code == 409
    negative = client.post(
        f"/api/v1/cis/{laptop.id}/disposal", headers=manager, json={"method": "resell", "proceeds": "-1"}
    )
    assert negative.status_code == 422


def test_maintenance_history_and_validation(client, make, assets, db):
    agent = make.headers("agent")
    server = assets.device("server")
    vendor = assets.vendor()
    ticket = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "disk failed", "impact": 2, "urgency": 2, "ci_ids": [server.id]},
    )
    assert ticket.status_code == 201, ticket.json
    body = {"performed_at": "2025-03-01", "kind": "repair", "vendor_id": vendor.id, "cost": "250.50",
            "ticket_id": ticket.json["id"], "note": "replaced disk"}  # fmt: skip
    created = client.post(f"/api/v1/cis/{server.id}/maintenance", headers=agent, json=body)
    assert created.status_code == 201, created.json
    assert created.json["ticket_id"] == ticket.json["id"]
    client.post(
        f"/api/v1/cis/{server.id}/maintenance", headers=agent, json={"performed_at": "2025-04-01", "kind": "patch"}
    )
    listed = client.get(f"/api/v1/cis/{server.id}/maintenance", headers=agent).json
    assert [m["performed_at"] for m in listed] == ["2025-04-01", "2025-03-01"]
    before = _count(db, MaintenanceRecord)
    for change, field in [({"ticket_id": 987654}, "ticket_id"), ({"vendor_id": 987654}, "vendor_id"),
                          ({"cost": "-0.01"}, "cost"), ({"kind": "voodoo"}, "kind")]:  # fmt: skip
        response = client.post(f"/api/v1/cis/{server.id}/maintenance", headers=agent, json={**body, **change})
        assert response.status_code == 422 and field in response.json["errors"], change
    assert _count(db, MaintenanceRecord) == before
    history = [h["summary"] for h in client.get(f"/api/v1/cis/{server.id}/history", headers=agent).json]
    assert any(s.startswith("repair on CI") for s in history)
    assert client.post("/api/v1/cis/987654/maintenance", headers=agent, json=body).status_code == 404
    assert (
        client.post(f"/api/v1/cis/{server.id}/maintenance", headers=make.headers("auditor"), json=body).status_code
        == 403
    )


def test_costs_by_hand(client, manager, assets, make):
    # Laptop: 1,200 bought 2023-01-15, 3 years straight line -> 600.00 on 2024-07-20 (18 of 36 months).
    laptop = assets.device("laptop", purchase_cost=Decimal("1200.00"), purchase_date=date(2023, 1, 15), currency="EUR")
    other = assets.device("laptop")
    # Contract: 1,000 one-off + 100 a month from 2024-01-01, split over 2 CIs; by 2024-07-20, 7 months
    # have begun -> 1,700 / 2 = 850.
    assets.contract(
        cis=[laptop, other], cost=Decimal("1000"), recurring_cost=Decimal("100"), recurring_period="monthly"
    )
    client.post(
        f"/api/v1/cis/{laptop.id}/maintenance",
        headers=manager,
        json={"performed_at": "2024-03-01", "kind": "repair", "cost": "150.00"},
    )
    client.post(
        f"/api/v1/cis/{laptop.id}/maintenance",
        headers=manager,
        json={"performed_at": "2024-09-01", "kind": "upgrade", "cost": "80.00"},
    )
    with time_machine.travel("2024-07-20 12:00:00Z", tick=False):
        costs = client.get(f"/api/v1/cis/{laptop.id}/costs", headers=manager).json
    assert costs["as_of"] == "2024-07-20"
    assert costs["purchase_cost"] == "1200.00"
    assert costs["book_value"] == "600.00"
    assert costs["depreciation_to_date"] == "600.00"
    assert costs["maintenance_cost"] == "150.00"  # the September upgrade is still in the future
    assert costs["contract_cost"] == "850.00"
    assert costs["tco"] == "2200.00"
    assert costs["end_of_life"] == "2026-01-15"
    # Any date: ?as_of. 2023-01-15 -> 2024-10-01 is 20 whole months: 1200 - 20 * 1200 / 36 = 533.33.
    later = client.get(f"/api/v1/cis/{laptop.id}/costs?as_of=2024-10-01", headers=manager).json
    assert later["maintenance_cost"] == "230.00" and later["book_value"] == "533.33"
    # Reconfigure the class: 5 years double declining -> 1200 * 0.6 = 720.00 after one year.
    put = client.put("/api/v1/asset-classes/laptop", headers=manager,
                     json={"depreciation_method": "declining_balance", "useful_life_years": 5})  # fmt: skip
    assert put.status_code == 200 and put.json["configured"] is True
    again = client.get(f"/api/v1/cis/{laptop.id}/costs?as_of=2024-01-15", headers=manager).json
    assert again["book_value"] == "720.00" and again["depreciation_method"] == "declining_balance"
    assert client.put("/api/v1/asset-classes/laptop", headers=manager, json={"useful_life_years": 0}).status_code == 422
    assert (
        client.put("/api/v1/asset-classes/starship", headers=manager, json={"useful_life_years": 3}).status_code == 404
    )
    assert client.put("/api/v1/asset-classes/laptop", headers=make.headers("agent"), json={}).status_code == 403
    policies = {p["ci_class"]: p for p in client.get("/api/v1/asset-classes", headers=manager).json}
    assert policies["laptop"]["useful_life_years"] == 5 and policies["server"]["configured"] is False
    # Unknown cost data gives no book value rather than an error.
    bare = client.get(f"/api/v1/cis/{other.id}/costs", headers=manager).json
    assert bare["book_value"] is None and bare["purchase_cost"] is None
    assert client.get("/api/v1/cis/987654/costs", headers=manager).status_code == 404
    assert client.get(f"/api/v1/cis/{laptop.id}/costs?as_of=yesterday", headers=manager).status_code == 422
