"""POST /cis/bulk and /relationships/bulk: per-item results, one bad item failing alone, dry runs."""

from sqlalchemy import func, select

import cmdb.services as cmdb_services
from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem

CIS = "/api/v1/cis/bulk"
RELS = "/api/v1/relationships/bulk"


def _item(ext, **fields):
    return {"external_id": {"source": "sn", "id": ext}, "name": ext, "ci_class": "server", **fields}


def _count(db, model=ConfigurationItem):
    return db.session.scalar(select(func.count()).select_from(model))


def test_create_update_unchanged_and_bad_items_fail_alone(db, client, make):
    headers = make.headers("integration")
    make.ci("server", name="tagged", asset_tag="AT-1")
    first = client.post(CIS, headers=headers, json=[_item("a"), _item("b", attributes={"os": "Debian"})])
    assert first.status_code == 200
    assert [r["status"] for r in first.json] == ["created", "created"]
    ids = [r["id"] for r in first.json]
    before = _count(db, ChangeLog)
    items = [
        _item("a"),  # unchanged
        _item("b", attributes={"os": "Ubuntu"}),  # updated
        _item("c", ci_class="no_such_class"),  # schema error
        {"name": "x", "ci_class": "server"},  # no external id
        _item("d", asset_tag="AT-1"),  # the tag is taken
        _item("e", attributes={"cpu_cores": "many"}),  # attribute error
        _item("f", criticality="critical", asset_tag="AT-2"),  # created
        _item("g", asset_tag="AT-2"),  # the tag was claimed by the item before
        "not an object",
    ]
    response = client.post(CIS, headers=headers, json=items)
    assert response.status_code == 200, response.json
    results = response.json
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "unchanged", "updated", "error", "error", "error", "error", "created", "error", "error",
    ]  # fmt: skip
    assert results[0]["id"] == ids[0] and results[1]["id"] == ids[1]
    assert "ci_class" in results[2]["errors"] and "external_id" in results[3]["errors"]
    assert "AT-1" in results[4]["errors"]["_item"][0] and "cpu_cores" in results[5]["errors"]["attributes"]
    assert results[2]["id"] is None
    # one change row for the update, one per new CI and one per new external id; nothing for the rest
    new_rows = list(db.session.scalars(select(ChangeLog).where(ChangeLog.id > 0).order_by(ChangeLog.id)))[before:]
    assert sorted((r.object_type, r.action) for r in new_rows) == [
        ("ci", "create"), ("ci", "update"), ("ci_external_id", "create"),
    ]  # fmt: skip
    created = client.get("/api/v1/cis/external/sn/f", headers=headers).json
    assert created["criticality"] == "critical" and created["external_ids"] == [{"source": "sn", "id": "f"}]
    history = client.get(f"/api/v1/cis/{created['id']}/history", headers=headers).json
    assert {h["object_type"] for h in history} == {"ci", "ci_external_id"}


def test_dry_run_reports_and_writes_nothing(db, client, make):
    headers = make.headers("integration")
    client.post(CIS, headers=headers, json=[_item("a")])
    cis, changes = _count(db), _count(db, ChangeLog)
    response = client.post(
        CIS, headers=headers, query_string={"dry_run": "true"}, json=[_item("a", description="new"), _item("z")]
    )
    assert [(r["status"], r["id"] is None) for r in response.json] == [("updated", False), ("created", True)]
    assert _count(db) == cis and _count(db, ChangeLog) == changes
    assert client.get("/api/v1/cis/external/sn/a", headers=headers).json["description"] == ""


def test_the_slow_path_gives_the_same_answers(db, client, make, monkeypatch):
    headers = make.headers("integration")
    monkeypatch.setattr(cmdb_services, "_bulk_fast", lambda items: None)
    make.ci("server", name="tagged", asset_tag="AT-9")
    response = client.post(CIS, headers=headers, json=[_item("p"), _item("q", asset_tag="AT-9"), _item("p")])
    assert [r["status"] for r in response.json] == ["created", "error", "unchanged"]


def test_the_same_id_twice_in_one_request_is_one_ci(db, client, make):
    headers = make.headers("integration")
    response = client.post(CIS, headers=headers, json=[_item("twice"), _item("twice", description="second")])
    assert [r["status"] for r in response.json] == ["created", "updated"]
    assert response.json[0]["id"] == response.json[1]["id"]


def test_bad_bodies(client, make):
    headers = make.headers("integration")
    assert client.post(CIS, headers=headers, json={"name": "x"}).status_code == 422
    assert client.post(CIS, headers=headers, json=[]).status_code == 422
    assert client.post(CIS, headers=headers, json=[_item(str(i)) for i in range(1001)]).status_code == 422
    assert client.post(CIS, headers=make.headers("auditor"), json=[_item("a")]).status_code == 403


def test_relationships_by_id_and_external_id(db, client, make):
    headers = make.headers("integration")
    app_ci = make.ci("application", name="payroll", external_ids=[{"source": "sn", "external_id": "app-1"}])
    server = make.ci("server", name="srv")
    items = [
        {"source": {"source": "sn", "id": "app-1"}, "type": "runs_on", "target_id": server.id},
        {"source_id": app_ci.id, "type": "runs_on", "target_id": server.id},  # the same again
        {"source": {"source": "sn", "id": "nope"}, "type": "depends_on", "target_id": server.id},
        {"source_id": server.id, "type": "depends_on", "target_id": server.id},
        {"source_id": server.id, "type": "installed_on", "target_id": app_ci.id},  # classes not allowed
        {"source_id": server.id, "type": "bogus", "target_id": app_ci.id},
        {"source_id": server.id, "source": {"source": "sn", "id": "app-1"}, "type": "uses", "target_id": app_ci.id},
        {"source_id": 2**31 - 1, "type": "uses", "target_id": app_ci.id},
    ]
    dry = client.post(RELS, headers=headers, json=items, query_string={"dry_run": "1"}).json
    assert (
        dry[0]["status"] == "created"
        and client.get(f"/api/v1/relationships?ci_id={server.id}", headers=headers).json == []
    )
    results = client.post(RELS, headers=headers, json=items).json
    assert [r["status"] for r in results] == [
        "created",
        "unchanged",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
    ]
    assert results[0]["id"] is not None
    assert "source" in results[2]["errors"] and "target_id" in results[3]["errors"] and "type" in results[5]["errors"]
    again = client.post(RELS, headers=headers, json=items[:1]).json
    assert again[0] == {"index": 0, "status": "unchanged", "id": results[0]["id"], "errors": None}
