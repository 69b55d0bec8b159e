"""A CI leaving the estate is released by its holder; CIs are found by their holder and by warranty."""

from __future__ import annotations

from datetime import date

import pytest


def _retire_and_dispose(client, headers, ci_id):
    url = f"/api/v1/cis/{ci_id}"
    assert client.patch(url, headers=headers, json={"status": "retired"}).status_code == 200
    wiped = client.post(f"{url}/wipe", headers=headers, json={"method": "crypto_erase", "performed_by": "IT"})
    assert wiped.status_code == 201, wiped.json
    return client.patch(url, headers=headers, json={"status": "disposed"})


def test_retiring_releases_the_holder_and_closes_the_assignment(client, admin, make):
    holder = make.user("requester", name="Edsger Dijkstra")
    laptop = make.ci("laptop", status="deployed", assigned_to_id=holder.id)
    retired = client.patch(f"/api/v1/cis/{laptop.id}", headers=admin, json={"status": "retired"})
    assert retired.status_code == 200, retired.json
    assert retired.json["assigned_to_id"] is None and retired.json["assigned_to"] is None
    assignments = client.get(f"/api/v1/cis/{laptop.id}/assignments", headers=admin).json
    assert [a["user_id"] for a in assignments] == [holder.id]
    assert assignments[0]["assigned_until"] is not None and "retired" in assignments[0]["note"]
    history = client.get(f"/api/v1/cis/{laptop.id}/history", headers=admin).json
    changes = next(h["changes"] for h in history if h["object_type"] == "ci" and h["action"] == "update")
    assert changes["status"] == ["deployed", "retired"] and changes["assigned_to_id"] == [holder.id, None]
    # The requester no longer sees a laptop it does not hold.
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=make.headers(user=holder)).status_code == 404


def test_a_disposed_laptop_has_no_holder_and_no_open_assignment(client, admin, make):
    holder = make.user("requester")
    laptop = make.ci("laptop", status="deployed", assigned_to_id=holder.id)
    disposed = _retire_and_dispose(client, admin, laptop.id)
    assert disposed.status_code == 200, disposed.json
    assert disposed.json["status"] == "disposed" and disposed.json["assigned_to_id"] is None
    history = client.get(f"/api/v1/cis/{laptop.id}/assignments", headers=admin).json
    assert all(h["assigned_until"] is not None for h in history)


def test_the_retirement_workflow_releases_the_holder_too(client, admin, make):
    holder = make.user("requester")
    laptop = make.ci("laptop", status="deployed", assigned_to_id=holder.id)
    request = client.post(f"/api/v1/cis/{laptop.id}/retirement", headers=admin, json={"reason": "broken screen"})
    assert request.status_code == 201, request.json
    decided = client.post(
        f"/api/v1/retirement-requests/{request.json['id']}/decision", headers=admin, json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.json
    ci = client.get(f"/api/v1/cis/{laptop.id}", headers=admin).json
    assert ci["status"] == "retired" and ci["assigned_to_id"] is None


@pytest.mark.parametrize("status", ["retired", "disposed"])
def test_an_inactive_ci_cannot_be_assigned(client, admin, make, status):
    holder = make.user("requester")
    laptop = make.ci("laptop", status="deployed")
    if status == "retired":
        client.patch(f"/api/v1/cis/{laptop.id}", headers=admin, json={"status": "retired"})
    else:
        assert _retire_and_dispose(client, admin, laptop.id).status_code == 200
    assigned = client.patch(f"/api/v1/cis/{laptop.id}", headers=admin, json={"assigned_to_id": holder.id})
    assert assigned.status_code == 409 and assigned.mimetype == "application/problem+json"
    assert "held by no one" in assigned.json["detail"]
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=admin).json["assigned_to_id"] is None


def test_retiring_and_assigning_at_once_is_409_and_changes_nothing(client, admin, make):
    first, second = make.user("requester"), make.user("requester")
    laptop = make.ci("laptop", status="deployed", assigned_to_id=first.id)
    both = client.patch(
        f"/api/v1/cis/{laptop.id}", headers=admin, json={"status": "retired", "assigned_to_id": second.id}
    )
    assert both.status_code == 409
    ci = client.get(f"/api/v1/cis/{laptop.id}", headers=admin).json
    assert (ci["status"], ci["assigned_to_id"]) == ("deployed", first.id)
    created = client.post(
        "/api/v1/cis", headers=admin, json={"name": "old", "ci_class": "laptop", "status": "retired",
                                            "assigned_to_id": first.id},
    )  # fmt: skip
    assert created.status_code == 409


def test_bulk_items_obey_the_same_rule(client, admin, make):
    holder = make.user("requester")
    body = [
        {"external_id": {"source": "itam", "id": "a"}, "name": "a", "ci_class": "laptop", "status": "retired",
         "assigned_to_id": holder.id},
        {"external_id": {"source": "itam", "id": "b"}, "name": "b", "ci_class": "laptop", "status": "deployed",
         "assigned_to_id": holder.id},
    ]  # fmt: skip
    results = client.post("/api/v1/cis/bulk", headers=admin, json=body).json
    assert [r["status"] for r in results] == ["error", "created"]
    moved = client.post(
        "/api/v1/cis/bulk", headers=admin,
        json=[{"external_id": {"source": "itam", "id": "b"}, "status": "retired"}],
    ).json  # fmt: skip
    assert moved[0]["status"] == "updated"
    ci = client.get(f"/api/v1/cis/{moved[0]['id']}", headers=admin).json
    assert (ci["status"], ci["assigned_to_id"]) == ("retired", None)


def test_moves_between_active_statuses_keep_the_holder(client, admin, make):
    holder = make.user("requester")
    laptop = make.ci("laptop", status="deployed", assigned_to_id=holder.id)
    moved = client.patch(f"/api/v1/cis/{laptop.id}", headers=admin, json={"status": "in_maintenance"})
    assert moved.status_code == 200 and moved.json["assigned_to_id"] == holder.id


def test_q_finds_a_ci_by_its_holder_name_or_e_mail_in_any_case(client, admin, make):
    edsger = make.user("requester", email="E.Dijkstra@Example.com", name="Edsger Dijkstra")
    grace = make.user("requester", email="grace@example.com", name="Grace Hopper")
    laptop = make.ci("laptop", name="LT-0001", status="deployed", assigned_to_id=edsger.id)
    make.ci("laptop", name="LT-0002", status="deployed", assigned_to_id=grace.id)
    make.ci("laptop", name="LT-0003", status="deployed")

    def names(q):
        response = client.get("/api/v1/cis", headers=admin, query_string={"q": q})
        assert response.status_code == 200, response.json
        return [c["name"] for c in response.json]

    assert names("Dijkstra") == ["LT-0001"]
    assert names("dijkstra") == names("DIJKSTRA") == ["LT-0001"]
    assert names("e.dijkstra@example") == ["LT-0001"]
    assert names("edsger d") == ["LT-0001"]
    assert names("example.com") == ["LT-0001", "LT-0002"]
    assert names("lt-000") == ["LT-0001", "LT-0002", "LT-0003"]
    assert names("Dijk_tra") == []  # _ is a plain character, not a wildcard
    # One row per CI, and a requester still sees only its own.
    assert client.get("/api/v1/cis?q=Grace", headers=make.headers(user=edsger)).json == []
    assert [c["id"] for c in client.get("/api/v1/cis?q=edsger", headers=make.headers(user=edsger)).json] == [laptop.id]


def test_warranty_window_filters(client, admin, make):
    make.ci("laptop", name="early", warranty_expires=date(2025, 1, 31))
    make.ci("laptop", name="middle", warranty_expires=date(2025, 6, 30))
    make.ci("laptop", name="late", warranty_expires=date(2026, 3, 1))
    make.ci("laptop", name="unknown")

    def names(**query):
        response = client.get("/api/v1/cis", headers=admin, query_string=query)
        assert response.status_code == 200, response.json
        return [c["name"] for c in response.json]

    assert names(warranty_expires_after="2025-01-31") == ["late", "middle"]
    assert names(warranty_expires_before="2025-06-30") == ["early"]
    assert names(warranty_expires_after="2025-02-01", warranty_expires_before="2026-01-01") == ["middle"]
    bad = client.get("/api/v1/cis?warranty_expires_after=soon", headers=admin)
    assert bad.status_code == 422 and "warranty_expires_after" in bad.json["errors"]
