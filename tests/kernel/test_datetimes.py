"""Dates and times a client sends are kept in UTC: one that has no UTC equivalent (the last minutes
of the year 9999 west of Greenwich) is a 422 naming the field, on every path, never a 500."""

from __future__ import annotations

import pytest

PAST_9999 = "9999-12-31T23:59:59-23:59"


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("get", f"/api/v1/auth-events?since={PAST_9999}", None, "since"),
        ("get", f"/api/v1/changelog?until={PAST_9999}", None, "until"),
        ("post", "/api/v1/tickets", {"kind": "change", "title": "t", "planned_end": PAST_9999}, "planned_end"),
        ("get", f"/api/v1/tickets?kind=change&window_from={PAST_9999}", None, "window_from"),
    ],
)
def test_a_time_past_the_year_9999_in_utc_is_422(client, admin, db, method, path, body, field):
    response = getattr(client, method)(path, json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][field] == ["Out of range once in UTC."]


def test_wipe_times_and_custom_datetime_fields_too(client, admin, make, db):
    retired = make.ci("server", name="old-box", status="retired")
    wipe = {"method": "overwrite", "performed_by": "Ops", "performed_at": PAST_9999}
    response = client.post(f"/api/v1/cis/{retired.id}/wipe", json=wipe, headers=admin)
    assert response.status_code == 422 and "performed_at" in response.get_json()["errors"], response.get_json()

    defined = client.post(
        "/api/v1/custom-fields",
        headers=admin,
        json={"name": "racked_at", "label": "Racked at", "type": "datetime", "applies_to": {"ci_classes": ["server"]}},
    )
    assert defined.status_code == 201, defined.get_json()
    server = make.ci("server", name="new-box")
    response = client.patch(f"/api/v1/cis/{server.id}", json={"custom_fields": {"racked_at": PAST_9999}}, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert "Out of range once in UTC." in str(response.get_json()["errors"])
    later = {"custom_fields": {"racked_at": "2030-01-01T09:00:00+01:00"}}
    accepted = client.patch(f"/api/v1/cis/{server.id}", json=later, headers=admin)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["custom_fields"]["racked_at"] == "2030-01-01T08:00:00Z"
