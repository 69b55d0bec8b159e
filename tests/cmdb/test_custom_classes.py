"""Custom CI classes (issue 18): an admin adds a class at run time; CIs of it validate as its parent's,
list by class and category, relate by its rules; bad input changes nothing; other processes see it."""

import httpx
import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb import custom_classes
from cmdb.models import CustomCIClass
from tests.servers import gunicorn_servers

PUMP = {"name": "infusion_pump", "label": "Infusion pump", "parent": "printer", "icon": "syringe"}


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _add(client, admin, **fields):
    response = client.post("/api/v1/ci-classes", headers=admin, json={**PUMP, **fields})
    assert response.status_code == 201, response.json
    return response.json


def test_an_admin_adds_a_class_and_uses_it_at_once(client, admin, db):
    pump = _add(client, admin)
    assert pump["builtin"] is False and pump["parent"] == "printer" and pump["category"] == "hardware"
    assert pump["relationship_types"] is None and pump["lifecycle"] == "default" and pump["icon"] == "syringe"
    classes = {c["name"]: c for c in client.get("/api/v1/ci-classes", headers=admin).json}
    assert classes["infusion_pump"] == pump and classes["server"]["builtin"] is True
    assert pump["attributes"] == classes["printer"]["attributes"]  # exactly its parent's attributes

    made = client.post(
        "/api/v1/cis",
        headers=admin,
        json={"name": "pump-7", "ci_class": "infusion_pump", "attributes": {"hostname": "pump-7", "duplex": False}},
    )
    assert made.status_code == 201, made.json
    assert made.json["ci_class"] == "infusion_pump" and made.json["category"] == "hardware"
    bad = client.post(
        "/api/v1/cis", headers=admin, json={"name": "pump-8", "ci_class": "infusion_pump", "attributes": {"rpm": 5}}
    )
    assert bad.status_code == 422 and "attributes" in bad.json["errors"]
    client.post("/api/v1/cis", headers=admin, json={"name": "printer-1", "ci_class": "printer"})

    by_class = client.get("/api/v1/cis", headers=admin, query_string={"ci_class": "infusion_pump"}).json
    assert [c["name"] for c in by_class] == ["pump-7"]
    by_category = client.get("/api/v1/cis", headers=admin, query_string={"category": "hardware"}).json
    assert {"pump-7", "printer-1"} <= {c["name"] for c in by_category}
    assert "pump-7" not in {c["name"] for c in client.get("/api/v1/cis?category=network", headers=admin).json}

    log = db.session.scalars(select(ChangeLog).where(ChangeLog.object_type == "ci_class")).all()
    assert [(e.action, e.changes["name"][1]) for e in log] == [("create", "infusion_pump")]


def test_a_subclass_of_a_custom_class_and_changes_to_it(client, admin, db):
    _add(client, admin, name="medical_device", label="Medical device")
    pump = _add(client, admin, parent="medical_device", category="mobile")
    assert pump["category"] == "mobile" and pump["attributes"]["properties"].keys() >= {"hostname", "duplex"}
    changed = client.patch(
        "/api/v1/ci-classes/infusion_pump", headers=admin, json={"label": "Infusion pump (IV)", "category": "hardware"}
    )
    assert changed.status_code == 200 and changed.json["label"] == "Infusion pump (IV)"
    assert client.get("/api/v1/ci-classes/infusion_pump", headers=admin).json == changed.json
    entry = db.session.scalars(
        select(ChangeLog).where(ChangeLog.object_type == "ci_class", ChangeLog.action == "update")
    ).one()
    assert entry.changes["label"] == ["Infusion pump", "Infusion pump (IV)"]

    assert client.delete("/api/v1/ci-classes/infusion_pump", headers=admin).status_code == 204
    assert client.get("/api/v1/ci-classes/infusion_pump", headers=admin).status_code == 404
    gone = client.post("/api/v1/cis", headers=admin, json={"name": "p", "ci_class": "infusion_pump"})
    assert gone.status_code == 422 and "ci_class" in gone.json["errors"]
    actions = db.session.scalars(select(ChangeLog.action).where(ChangeLog.object_type == "ci_class")).all()
    assert sorted(actions) == ["create", "create", "delete", "update"]


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"parent": "toaster"}, 422, "parent"),
        ({"name": "server"}, 409, "name"),
        ({"name": "Infusion Pump"}, 422, "name"),
        ({"name": "9pump"}, 422, "name"),
        ({"name": "p" * 41}, 422, "name"),
        ({"relationship_types": ["depends_on", "powers_up"]}, 422, "relationship_types"),
        ({"category": "medical"}, 422, "category"),
        ({"lifecycle": "fast"}, 422, "lifecycle"),
        ({"icon": "<b>"}, 422, "icon"),
        ({"label": ""}, 422, "label"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_classes_write_nothing(client, admin, db, fields, status, field):
    before = (_count(db, CustomCIClass), _count(db, ChangeLog))
    response = client.post("/api/v1/ci-classes", headers=admin, json={**PUMP, **fields})
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert field in response.json["errors"]
    assert (_count(db, CustomCIClass), _count(db, ChangeLog)) == before


def test_a_name_in_use_a_cycle_and_the_cap(client, admin, db, monkeypatch):
    _add(client, admin, name="medical_device", label="Medical device")
    _add(client, admin, parent="medical_device")
    assert client.post("/api/v1/ci-classes", headers=admin, json=PUMP).status_code == 409
    for parent in ("infusion_pump", "medical_device"):
        cycle = client.patch("/api/v1/ci-classes/medical_device", headers=admin, json={"parent": parent})
        assert cycle.status_code == 422 and "cycle" in cycle.json["errors"]["parent"][0]
    assert client.get("/api/v1/ci-classes/medical_device", headers=admin).json["parent"] == "printer"

    monkeypatch.setattr(custom_classes, "MAX_CUSTOM_CLASSES", 2)
    before = _count(db, CustomCIClass)
    capped = client.post("/api/v1/ci-classes", headers=admin, json={**PUMP, "name": "ventilator"})
    assert capped.status_code == 409 and "At most 2" in capped.json["detail"]
    assert _count(db, CustomCIClass) == before


def test_deleting_or_changing_what_is_in_use(client, admin, make, db):
    _add(client, admin, name="medical_device", label="Medical device")
    _add(client, admin, parent="medical_device")
    make.ci("infusion_pump")
    make.ci("infusion_pump")
    used = client.delete("/api/v1/ci-classes/infusion_pump", headers=admin)
    assert used.status_code == 409 and "2 CIs" in used.json["detail"]
    parent = client.delete("/api/v1/ci-classes/medical_device", headers=admin)
    assert parent.status_code == 409 and "1 classes" in parent.json["detail"]
    # Another parent with other attributes would change how the two CIs validate.
    moved = client.patch("/api/v1/ci-classes/infusion_pump", headers=admin, json={"parent": "server"})
    assert moved.status_code == 409 and "2 CIs" in moved.json["detail"]
    for call in (client.delete, lambda *a, **k: client.patch(*a, json={"label": "Box"}, **k)):
        builtin = call("/api/v1/ci-classes/server", headers=admin)
        assert builtin.status_code == 409 and "built-in" in builtin.json["detail"]
    assert client.get("/api/v1/ci-classes/server", headers=admin).json["label"] == "Server"
    assert {c["name"] for c in client.get("/api/v1/ci-classes", headers=admin).json} >= {
        "infusion_pump",
        "medical_device",
    }


def test_only_admins_write_classes(client, make, admin):
    agent = make.headers("agent")
    assert client.post("/api/v1/ci-classes", headers=agent, json=PUMP).status_code == 403
    assert client.get("/api/v1/ci-classes", headers=make.headers("requester")).status_code == 200
    _add(client, admin)
    assert client.delete("/api/v1/ci-classes/infusion_pump", headers=agent).status_code == 403
    user = make.user("admin")
    scoped = {"Authorization": f"Bearer {make.token(user, scopes=['read', 'cmdb:write'])}"}
    assert client.patch("/api/v1/ci-classes/infusion_pump", headers=scoped, json={"label": "x"}).status_code == 403


def test_relationship_rules_of_a_custom_class(client, admin, make):
    # Default: the parent's rules (a cluster may be the target of member_of, nothing else may).
    _add(client, admin, name="hpc_cluster", label="HPC cluster", parent="cluster")
    node, cluster, pump_ci = make.ci("server"), make.ci("hpc_cluster"), None
    joined = client.post(
        "/api/v1/relationships",
        headers=admin,
        json={"source_id": node.id, "type": "member_of", "target_id": cluster.id},
    )
    assert joined.status_code == 201, joined.json
    # A listed set: those types and no others.
    _add(client, admin, relationship_types=["connected_to"])
    pump_ci = make.ci("infusion_pump")
    switch = make.ci("network_switch")
    ok = client.post(
        "/api/v1/relationships",
        headers=admin,
        json={"source_id": pump_ci.id, "type": "connected_to", "target_id": switch.id},
    )
    assert ok.status_code == 201, ok.json
    refused = client.post(
        "/api/v1/relationships", headers=admin, json={"source_id": pump_ci.id, "type": "runs_on", "target_id": node.id}
    )
    assert refused.status_code == 422 and "source_id" in refused.json["errors"]


def test_bulk_upsert_csv_import_and_discovery_take_a_custom_class(client, admin, db):
    _add(client, admin)
    item = {"external_id": {"source": "biomed", "id": "1"}, "name": "pump-b1", "ci_class": "infusion_pump"}
    assert [r["status"] for r in client.post("/api/v1/cis/bulk", headers=admin, json=[item]).json] == ["created"]
    csv = "name,ci_class,attributes.hostname\r\npump-c1,infusion_pump,pump-c1\r\npump-c2,toaster,\r\n"
    imported = client.post("/api/v1/imports/cis", headers={**admin, "Content-Type": "text/csv"}, data=csv)
    assert imported.status_code == 202, imported.json
    job = client.get(f"/api/v1/imports/{imported.json['id']}", headers=admin).json
    assert job["status"] == "done" and job["counts"]["created"] == 1 and [r["row"] for r in job["results"]] == [3]
    run = client.post(
        "/api/v1/discovery/runs",
        headers=admin,
        json={"source": "biomed-scan", "items": [{"ci_class": "infusion_pump", "hostname": "pump-d1"}]},
    )
    assert run.status_code in (201, 202), run.json
    names = {c["name"] for c in client.get("/api/v1/cis?ci_class=infusion_pump", headers=admin).json}
    assert names == {"pump-b1", "pump-c1", "pump-d1"}


@pytest.fixture
def two_servers(app, committed_db, tmp_path):
    """Two gunicorn processes (one worker each) on the test database."""
    with gunicorn_servers(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as urls:
        yield urls


def test_a_class_added_through_one_process_is_accepted_by_the_other(committed_make, two_servers):
    headers = committed_make.headers("admin")
    first, second = (httpx.Client(base_url=url, headers=headers, timeout=10) for url in two_servers)
    # Both processes have loaded their registry (and would keep a stale one without the version check).
    for server in (first, second):
        assert server.post("/api/v1/cis", json={"name": "early", "ci_class": "infusion_pump"}).status_code == 422
    assert first.post("/api/v1/ci-classes", json=PUMP).status_code == 201
    made = second.post("/api/v1/cis", json={"name": "pump-1", "ci_class": "infusion_pump"})
    assert made.status_code == 201, made.json()["errors"]
    assert [c["name"] for c in second.get("/api/v1/cis", params={"ci_class": "infusion_pump"}).json()] == ["pump-1"]
    assert "infusion_pump" in {c["name"] for c in second.get("/api/v1/ci-classes").json()}
    assert second.patch("/api/v1/ci-classes/infusion_pump", json={"category": "mobile"}).status_code == 200
    assert first.get("/api/v1/cis", params={"category": "mobile"}).json()[0]["name"] == "pump-1"
    assert first.delete(f"/api/v1/cis/{made.json()['id']}").status_code == 204
    assert second.delete("/api/v1/ci-classes/infusion_pump").status_code == 204
    assert first.post("/api/v1/cis", json={"name": "late", "ci_class": "infusion_pump"}).status_code == 422


def test_the_cli_adds_lists_and_deletes_a_class(app, db):
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=["ci-classes", "add", "infusion_pump", "--parent", "printer", "--label", "Infusion pump"]
    )
    assert added.exit_code == 0, added.output
    assert "infusion_pump added (parent printer, category hardware)" in added.output
    listed = runner.invoke(args=["ci-classes", "list"]).output
    assert (
        "infusion_pump\thardware\tprinter\tcustom\tInfusion pump" in listed
        and "server\thardware\t-\tbuilt-in" in listed
    )
    for args, words in (
        (["add", "server", "--parent", "printer", "--label", "S"], "built-in"),
        (["add", "Bad Name", "--parent", "printer", "--label", "S"], "name"),
        (["add", "ventilator", "--parent", "toaster", "--label", "V"], "parent"),
    ):
        refused = runner.invoke(args=["ci-classes", *args])
        assert refused.exit_code == 1 and words in refused.output, refused.output
    assert runner.invoke(args=["ci-classes", "delete", "infusion_pump"]).exit_code == 0
    assert "infusion_pump" not in runner.invoke(args=["ci-classes", "list"]).output
    actors = db.session.scalars(select(ChangeLog.actor).where(ChangeLog.object_type == "ci_class")).all()
    assert actors == ["cli:ci-classes", "cli:ci-classes"]


def test_a_class_with_custom_fields_is_not_deleted(client, admin):
    _add(client, admin)
    field = client.post(
        "/api/v1/custom-fields",
        headers=admin,
        json={
            "name": "flow_limit",
            "label": "Flow limit",
            "type": "integer",
            "applies_to": {"ci_classes": ["infusion_pump"]},
        },
    )
    assert field.status_code == 201, field.json
    refused = client.delete("/api/v1/ci-classes/infusion_pump", headers=admin)
    assert refused.status_code == 409 and "1 custom fields" in refused.json["detail"]
    made = client.post(
        "/api/v1/cis",
        headers=admin,
        json={"name": "p", "ci_class": "infusion_pump", "custom_fields": {"flow_limit": 5}},
    )
    assert made.status_code == 201 and made.json["custom_fields"] == {"flow_limit": 5}
