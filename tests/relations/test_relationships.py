"""POST/GET/DELETE /relationships and /relationship-types."""

from __future__ import annotations


def _post(client, headers, source, type_, target, **extra):
    return client.post(
        "/api/v1/relationships",
        json={"source_id": source, "type": type_, "target_id": target, **extra},
        headers=headers,
    )


def test_relationship_types_are_data_with_direction_and_classes(client, make):
    r = client.get("/api/v1/relationship-types", headers=make.headers("requester"))
    assert r.status_code == 200
    types = {t["name"]: t for t in r.json}
    for name in ("depends_on", "runs_on", "hosted_on", "uses", "connected_to"):
        assert types[name]["impact"] == "source_depends_on_target"
    assert types["installed_on"]["impact"] == "none"  # recorded and shown, never propagated
    assert types["contains"]["impact"] == "target_depends_on_source"
    assert types["member_of"]["impact"] == "target_depends_on_source"
    assert types["runs_on"]["label"] == "Runs on" and types["runs_on"]["reverse_label"] == "Runs"
    assert types["member_of"]["target_classes"] == ["cluster"]
    assert types["depends_on"]["source_classes"] == []


def test_create_get_list_and_delete_keeps_history(client, admin, make):
    vm, host = make.ci("virtual_machine", name="vm-a"), make.ci("server", name="esx-a")
    r = _post(client, admin, vm.id, "runs_on", host.id, note="placed by DRS")
    assert r.status_code == 201, r.json
    rel = r.json
    assert rel["source"] == {"id": vm.id, "name": "vm-a", "ci_class": "virtual_machine"}
    assert rel["target"]["id"] == host.id and rel["type"] == "runs_on" and rel["valid_to"] is None
    assert r.headers["ETag"]

    assert client.get(f"/api/v1/relationships/{rel['id']}", headers=admin).json["note"] == "placed by DRS"
    listed = client.get(f"/api/v1/relationships?ci_id={host.id}", headers=admin)
    assert [x["id"] for x in listed.json] == [rel["id"]]
    assert "X-Pagination" in listed.headers

    r = client.delete(f"/api/v1/relationships/{rel['id']}", headers=admin)
    assert r.status_code == 204
    gone = client.get(f"/api/v1/relationships/{rel['id']}", headers=admin).json
    assert gone["valid_to"] is not None
    assert client.get(f"/api/v1/relationships?ci_id={host.id}", headers=admin).json == []
    closed = client.get(f"/api/v1/relationships?ci_id={host.id}&include_closed=true", headers=admin).json
    assert [x["id"] for x in closed] == [rel["id"]]
    assert client.delete(f"/api/v1/relationships/{rel['id']}", headers=admin).status_code == 409

    # Both CIs' histories show the relationship being added and removed.
    for ci in (vm, host):
        history = client.get(f"/api/v1/cis/{ci.id}/history", headers=admin).json
        rel_entries = [(h["kind"], h["action"]) for h in history if h["object_type"] == "relationship"]
        assert rel_entries == [("relationship", "delete"), ("relationship", "create")]
        assert "vm-a runs_on esx-a" in history[0]["summary"]

    # Re-creating after removal is allowed (only open duplicates clash).
    assert _post(client, admin, vm.id, "runs_on", host.id).status_code == 201


def test_duplicate_is_409_self_loop_and_bad_references_422(client, admin, make):
    a, b = make.ci("server"), make.ci("server")
    assert _post(client, admin, a.id, "depends_on", b.id).status_code == 201
    dup = _post(client, admin, a.id, "depends_on", b.id)
    assert dup.status_code == 409
    assert dup.json["conflicting_id"]
    # Another type between the same CIs, and the reverse direction (a cycle), are fine.
    assert _post(client, admin, a.id, "uses", b.id).status_code == 201
    assert _post(client, admin, b.id, "depends_on", a.id).status_code == 201

    loop = _post(client, admin, a.id, "depends_on", a.id)
    assert loop.status_code == 422 and "target_id" in loop.json["errors"]
    unknown = _post(client, admin, a.id, "depends_on", 999_999)
    assert unknown.status_code == 422 and "target_id" in unknown.json["errors"]
    bad_type = _post(client, admin, a.id, "loves", b.id)
    assert bad_type.status_code == 422 and "type" in bad_type.json["errors"]
    huge = _post(client, admin, 2**40, "depends_on", b.id)
    assert huge.status_code == 422
    extra = _post(client, admin, a.id, "depends_on", b.id, colour="red")
    assert extra.status_code == 422


def test_classes_not_allowed_by_the_type_are_422(client, admin, make):
    laptop, rack, cluster, vm = make.ci("laptop"), make.ci("rack"), make.ci("cluster"), make.ci("virtual_machine")
    r = _post(client, admin, laptop.id, "contains", rack.id)
    assert r.status_code == 422
    assert set(r.json["errors"]) == {"source_id", "target_id"}
    assert _post(client, admin, rack.id, "contains", make.ci("server").id).status_code == 201
    r = _post(client, admin, vm.id, "member_of", laptop.id)
    assert r.status_code == 422 and "target_id" in r.json["errors"]
    assert _post(client, admin, vm.id, "member_of", cluster.id).status_code == 201


def test_a_ci_with_relationships_cannot_be_deleted(client, admin, make):
    a, b = make.ci("server"), make.ci("server")
    rel = _post(client, admin, a.id, "depends_on", b.id).json
    r = client.delete(f"/api/v1/cis/{a.id}", headers=admin)
    assert r.status_code == 409
    assert "retire" in r.json["detail"]
    # Even once removed, the relationship is history and keeps the CI.
    client.delete(f"/api/v1/relationships/{rel['id']}", headers=admin)
    assert client.delete(f"/api/v1/cis/{a.id}", headers=admin).status_code == 409
    assert client.get(f"/api/v1/cis/{a.id}", headers=admin).status_code == 200
    lone = make.ci("server")
    assert client.delete(f"/api/v1/cis/{lone.id}", headers=admin).status_code == 204


def test_roles(client, make):
    a, b = make.ci("server"), make.ci("server")
    for role in ("requester", "auditor", "change_manager"):
        assert _post(client, make.headers(role), a.id, "depends_on", b.id).status_code == 403
    assert client.get("/api/v1/relationships", headers=make.headers("requester")).status_code == 403
    assert client.get("/api/v1/relationships", headers=make.headers("auditor")).status_code == 200
    assert _post(client, make.headers("integration"), a.id, "depends_on", b.id).status_code == 201
    assert client.get("/api/v1/relationships").status_code == 401


def test_unknown_relationship_is_404(client, admin):
    assert client.get("/api/v1/relationships/424242", headers=admin).status_code == 404
    assert client.delete("/api/v1/relationships/424242", headers=admin).status_code == 404
    assert client.get(f"/api/v1/relationships/{2**40}", headers=admin).status_code == 404


def test_as_of_listing(client, admin, make, db):
    from datetime import timedelta

    from cairn.db import utcnow

    a, b = make.ci("server"), make.ci("server")
    before = utcnow() - timedelta(seconds=1)
    rel = _post(client, admin, a.id, "depends_on", b.id).json
    old = client.get("/api/v1/relationships", query_string={"ci_id": a.id, "as_of": before.isoformat()}, headers=admin)
    assert old.status_code == 200 and old.json == []
    now = utcnow().isoformat()
    listed = client.get("/api/v1/relationships", query_string={"ci_id": a.id, "as_of": now}, headers=admin).json
    assert [x["id"] for x in listed] == [rel["id"]]
