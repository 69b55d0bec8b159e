"""External ids and upsert by them (API.md, Sync)."""

import threading

from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.models import CIExternalId, ConfigurationItem

URL = "/api/v1/cis/external/servicenow/{}"


def _changes(db):
    return db.session.scalar(select(func.count()).select_from(ChangeLog))


def test_upsert_creates_updates_and_reports_unchanged(db, client, make):
    headers = make.headers("integration")
    body = {"name": "web-01", "ci_class": "server", "attributes": {"hostname": "web-01", "ip_addresses": ["10.0.0.1"]}}
    created = client.put(URL.format("a1b2c3"), headers=headers, json=body)
    assert created.status_code == 201 and created.headers["X-Cairn-Upsert"] == "created"
    assert created.json["external_ids"] == [{"source": "servicenow", "id": "a1b2c3"}]

    before = _changes(db)
    same = client.put(URL.format("a1b2c3"), headers=headers, json=body)
    assert same.status_code == 200 and same.headers["X-Cairn-Upsert"] == "unchanged"
    assert same.headers["ETag"] == created.headers["ETag"]
    assert _changes(db) == before, "an unchanged upsert writes nothing"

    updated = client.put(URL.format("a1b2c3"), headers=headers, json={"attributes": {"os": "Debian"}})
    assert updated.status_code == 200 and updated.headers["X-Cairn-Upsert"] == "updated"
    assert updated.json["attributes"] == {"hostname": "web-01", "ip_addresses": ["10.0.0.1"], "os": "Debian"}
    assert updated.json["id"] == created.json["id"]

    fetched = client.get(URL.format("a1b2c3"), headers=headers)
    assert fetched.status_code == 200 and fetched.json["id"] == created.json["id"]
    assert client.get(URL.format("nope"), headers=headers).status_code == 404


def test_upsert_needs_name_and_class_to_create(client, make):
    response = client.put(URL.format("new"), headers=make.headers("integration"), json={"criticality": "high"})
    assert response.status_code == 422 and set(response.json["errors"]) == {"name", "ci_class"}


def test_ids_with_slashes_and_bad_sources(client, make):
    headers = make.headers("integration")
    arn = "arn:aws:ec2:eu-central-1:123456789012:instance/i-0abc"
    created = client.put(
        f"/api/v1/cis/external/aws/{arn}", headers=headers, json={"name": "i-0abc", "ci_class": "cloud_service"}
    )
    assert created.status_code == 201 and created.json["external_ids"][0]["id"] == arn
    bad = client.put("/api/v1/cis/external/bad%20source/x", headers=headers, json={"name": "x", "ci_class": "server"})
    assert bad.status_code == 422


def test_several_sources_one_per_source_and_no_sharing(client, make):
    headers = make.headers("integration")
    ci = client.post(
        "/api/v1/cis",
        headers=headers,
        json={"name": "db-01", "ci_class": "database", "external_ids": [{"source": "glpi", "id": "77"}]},
    ).json
    client.put(URL.format("sn-77"), headers=headers, json={"external_ids": [{"source": "glpi", "id": "77"}]})
    assert client.get("/api/v1/cis/external/glpi/77", headers=headers).json["id"] == ci["id"]
    # servicenow:sn-77 did not exist and had no name: refused, so glpi:77 was not moved either
    taken = client.post(
        "/api/v1/cis",
        headers=headers,
        json={"name": "x", "ci_class": "server", "external_ids": [{"source": "glpi", "id": "77"}]},
    )
    assert taken.status_code == 409 and str(ci["id"]) in taken.json["detail"]
    twice = client.patch(
        f"/api/v1/cis/{ci['id']}",
        headers=headers,
        json={"external_ids": [{"source": "a", "id": "1"}, {"source": "a", "id": "2"}]},
    )
    assert twice.status_code == 422
    replaced = client.patch(
        f"/api/v1/cis/{ci['id']}", headers=headers, json={"external_ids": [{"source": "sccm", "id": "9"}]}
    )
    assert replaced.json["external_ids"] == [{"source": "sccm", "id": "9"}]
    history = client.get(f"/api/v1/cis/{ci['id']}/history", headers=headers).json
    assert any(h["object_type"] == "ci_external_id" and h["action"] == "delete" for h in history)


def test_parallel_upserts_of_one_id_make_one_ci(app, committed_client, committed_make):
    headers = committed_make.headers("integration")
    statuses, lock = [], threading.Lock()
    barrier = threading.Barrier(8)

    def put(index):
        client = app.test_client()
        barrier.wait()
        response = client.put(
            URL.format("race-1"),
            headers=headers,
            json={"name": "raced", "ci_class": "server", "description": f"writer {index % 2}"},
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 7 + [201]
    with app.app_context():
        from cairn.db import db

        holders = db.session.scalars(select(CIExternalId.ci_id).where(CIExternalId.external_id == "race-1")).all()
        named = db.session.scalar(
            select(func.count()).select_from(ConfigurationItem).where(ConfigurationItem.name == "raced")
        )
        db.session.remove()
    assert len(holders) == 1 and named == 1
