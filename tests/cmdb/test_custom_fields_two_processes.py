"""Two real server processes on one database: a custom field defined through one is enforced by
the next request through the other, and its deletion too, without a restart."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import gunicorn_servers


@pytest.fixture
def two_servers(app, committed_db, tmp_path):
    """Two gunicorn processes (one worker each) on the test database."""
    with gunicorn_servers(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as urls:
        yield urls


def _admin_headers(db) -> dict:
    from cairn.auth.services import create_token, create_user

    user = create_user("custom-fields@example.com", "admin", "Admin")
    _, token = create_token(user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_definition_made_through_one_process_is_enforced_by_the_other(committed_db, two_servers):
    headers = _admin_headers(committed_db)
    first, second = (httpx.Client(base_url=url, headers=headers, timeout=10) for url in two_servers)
    # both processes have read the (empty) definitions
    for client in (first, second):
        response = client.post("/api/v1/cis", json={"name": "warm", "ci_class": "server"})
        assert response.status_code == 201 and response.json()["custom_fields"] == {}

    field = first.post(
        "/api/v1/custom-fields",
        json={"name": "pci_scope", "label": "PCI scope", "type": "boolean", "applies_to": {"ci_classes": ["server"]}},
    )
    assert field.status_code == 201, field.json()
    first.post(
        "/api/v1/custom-fields",
        json={"name": "rack_unit", "label": "Rack unit", "type": "integer", "applies_to": {"ci_classes": ["server"]}},
    )
    wrong = second.post("/api/v1/cis", json={"name": "s", "ci_class": "server", "custom_fields": {"pci_scope": "yes"}})
    assert wrong.status_code == 422 and "pci_scope" in wrong.json()["errors"]["custom_fields"]
    for name, scope, unit in (("db-1", True, 4), ("db-2", False, 2), ("db-3", True, 1)):
        created = second.post(
            "/api/v1/cis",
            json={"name": name, "ci_class": "server", "custom_fields": {"pci_scope": scope, "rack_unit": unit}},
        )
        assert created.status_code == 201, created.json()
    found = second.get("/api/v1/cis", params={"cf_pci_scope": "true", "sort": "cf_rack_unit"})
    assert [ci["name"] for ci in found.json()] == ["db-3", "db-1"]

    assert second.delete(f"/api/v1/custom-fields/{field.json()['id']}", params={"force": "true"}).status_code == 204
    gone = first.post("/api/v1/cis", json={"name": "t", "ci_class": "server", "custom_fields": {"pci_scope": True}})
    assert gone.status_code == 422 and gone.json()["errors"]["custom_fields"] == {
        "pci_scope": ["Unknown field for class server."]
    }
    assert first.get("/api/v1/cis", params={"cf_pci_scope": "true"}).status_code == 422
