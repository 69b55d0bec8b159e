"""Retired and disposed CIs take no part in impact; relationship types with impact ``none``
(installed_on) are recorded and shown, never propagated."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from cairn.db import utcnow
from relations import services
from relations.graph import LiveGraph, live_graph
from tests.relations.conftest import states


def _dispose(ci_id):
    from cmdb.assets.services import record_wipe
    from cmdb.services import get_ci, update_ci

    ci = get_ci(ci_id)
    update_ci(ci, {"status": "retired"})
    record_wipe(ci, {"method": "crypto_erase", "performed_by": "IT"})
    update_ci(ci, {"status": "disposed"})


def _set_status(db, ci_id, status):
    from cmdb.services import get_ci, update_ci

    update_ci(get_ci(ci_id), {"status": status})
    db.session.commit()


def _snapshot(graph: LiveGraph):
    return (
        {(u, v): dict(d) for u, v, d in graph.G.edges(data=True)},
        {(u, v): dict(d) for u, v, d in graph.passive.edges(data=True)},
        {n: dict(d) for n, d in graph.G.nodes(data=True)},
        set(graph.member_targets),
        set(graph.inactive),
    )


# ---------------------------------------------------------------------------------------------
# Inactive CIs


def test_a_disposed_laptop_is_not_down_in_its_access_points_impact(client, admin, estate, db, make):
    holder = make.user("requester", name="Edsger Dijkstra")
    ap = estate.ci("access_point", name="ap-1", status="deployed")
    laptop = estate.ci("laptop", name="LT-1", status="deployed", assigned_to_id=holder.id)
    other = estate.ci("laptop", name="LT-2", status="deployed")
    estate.rel(laptop, "connected_to", ap)
    estate.rel(other, "connected_to", ap)
    assert states(services.impact([ap])) == {laptop: ("down", 1), other: ("down", 1)}  # the graph is warm now
    _dispose(laptop)
    db.session.commit()

    answer = client.get(f"/api/v1/cis/{ap}/impact", headers=admin).json
    assert [i["ci"]["id"] for i in answer["impacted"]] == [other]
    assert answer["count"] == 1 and "inactive" not in answer
    shown = client.get(f"/api/v1/cis/{ap}/impact?include_inactive=true", headers=admin).json
    assert [i["ci"]["id"] for i in shown["impacted"]] == [other]
    assert shown["inactive"] == [
        {
            "ci": {"id": laptop, "name": "LT-1", "ci_class": "laptop", "criticality": "medium", "status": "disposed"},
            "depth": 1,
            "path": [ap, laptop],
        }
    ]
    what_if = client.post("/api/v1/impact", headers=admin, json={"ci_ids": [ap], "include_inactive": True}).json
    assert [i["ci"]["id"] for i in what_if["inactive"]] == [laptop]
    # The incremental refresh and a rebuild agree.
    with live_graph() as graph:
        incremental = _snapshot(graph)
    fresh = LiveGraph()
    fresh.rebuild(db.session)
    assert incremental == _snapshot(fresh) and laptop in fresh.inactive


def test_the_walk_does_not_go_through_a_retired_ci_and_comes_back_with_it(estate, db):
    host = estate.ci("server", name="esx-1")
    vm = estate.ci("virtual_machine", name="vm-1")
    app = estate.ci("application", name="app-1")
    estate.rel(vm, "runs_on", host)
    estate.rel(app, "runs_on", vm)
    assert states(services.impact([host])) == {vm: ("down", 1), app: ("down", 2)}
    _set_status(db, vm, "retired")
    result = services.impact([host], include_inactive=True)
    assert result.impacted == []
    assert [(i["ci"]["id"], i["ci"]["status"]) for i in result.extras["inactive"]] == [(vm, "retired")]
    assert [i.ci_id for i in services.dependencies(app).impacted] == []
    # The failing CI itself is walked from whatever its status: the question is what its failure does.
    assert states(services.impact([vm])) == {app: ("down", 1)}
    _set_status(db, vm, "in_stock")
    assert states(services.impact([host])) == {vm: ("down", 1), app: ("down", 2)}


def test_a_retired_member_does_not_count_towards_a_cluster(estate, db):
    cluster = estate.cluster(2, name="web")
    members = [estate.ci("server", name=f"web-{i}", status="deployed") for i in range(3)]
    for member in members:
        estate.rel(member, "member_of", cluster)
    assert states(services.impact([members[0]]))[cluster] == ("degraded", 1)
    _set_status(db, members[2], "retired")
    # Two active members, two needed: losing one takes the cluster down.
    assert states(services.impact([members[0]]))[cluster] == ("down", 1)
    assert members[2] not in {i.ci_id for i in services.dependencies(cluster).impacted}


def test_as_of_uses_the_status_of_that_moment(estate, db):
    start = utcnow() - timedelta(hours=3)
    with time_machine.travel(start, tick=False):
        ap = estate.ci("access_point", status="deployed")
        laptop = estate.ci("laptop", status="deployed")
        estate.rel(laptop, "connected_to", ap)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        _set_status(db, laptop, "retired")
    before = services.impact([ap], as_of=start + timedelta(minutes=30))
    assert states(before) == {laptop: ("down", 1)}
    after = services.impact([ap], as_of=start + timedelta(hours=2), include_inactive=True)
    assert after.impacted == [] and [i["ci"]["id"] for i in after.extras["inactive"]] == [laptop]
    assert services.impact([ap]).impacted == []


# ---------------------------------------------------------------------------------------------
# Relationship types whose impact is none


def test_a_broken_laptop_does_not_take_its_software_down(client, admin, estate, db):
    ap = estate.ci("access_point", name="ap-1")
    laptop = estate.ci("laptop", name="LT-1")
    office = estate.ci("software", name="Microsoft Office")
    estate.rel(laptop, "connected_to", ap)
    with live_graph():
        pass  # warm: the installation below arrives as an increment
    install = estate.rel(office, "installed_on", laptop)
    app, server = estate.ci("application", name="payroll"), estate.ci("server", name="srv-1")
    estate.rel(app, "runs_on", server)  # an instance that really runs on a host

    assert services.impact([laptop]).impacted == []
    assert states(services.impact([ap])) == {laptop: ("down", 1)}
    assert services.dependencies(office).impacted == []
    assert states(services.impact([server])) == {app: ("down", 1)}
    as_of = services.impact([laptop], as_of=utcnow())
    assert as_of.impacted == []
    body = client.get(f"/api/v1/cis/{laptop}/impact", headers=admin).json
    assert body["count"] == 0 and body["impacted"] == []

    # Recorded and shown: listed, in the CI's neighbourhood (as recorded: software -> laptop), in paths.
    listed = client.get(f"/api/v1/relationships?ci_id={laptop}&type=installed_on", headers=admin).json
    assert [r["id"] for r in listed] == [install.id]
    hood = client.get(f"/api/v1/cis/{laptop}/graph?format=json", headers=admin)
    assert hood.status_code == 200
    edges = {e["data"]["id"]: e["data"] for e in hood.json["elements"]["edges"]}
    shown = edges[f"r{install.id}"]
    assert (shown["source"], shown["target"], shown["type"]) == (str(office), str(laptop), "installed_on")
    assert str(office) in {n["data"]["id"] for n in hood.json["elements"]["nodes"]}
    assert client.get(f"/api/v1/graph/path?from={office}&to={laptop}", headers=admin).status_code == 404
    undirected = client.get(f"/api/v1/graph/path?from={office}&to={ap}&directed=false", headers=admin)
    assert undirected.status_code == 200, undirected.json
    assert undirected.json["path"] == [office, laptop, ap] and undirected.json["relationships"][0] == install.id

    with live_graph() as graph:
        incremental = _snapshot(graph)
    fresh = LiveGraph()
    fresh.rebuild(db.session)
    assert incremental == _snapshot(fresh)
    assert (office, laptop) in fresh.passive.edges and not fresh.G.has_edge(office, laptop)
    estate.unlink(install)
    with live_graph() as graph:
        assert graph.passive.number_of_edges() == 0 and office not in graph.G


def test_relationship_types_show_their_impact(client, make):
    types = {t["name"]: t for t in client.get("/api/v1/relationship-types", headers=make.headers("agent")).json}
    assert types["installed_on"]["impact"] == "none"
    assert types["runs_on"]["impact"] == "source_depends_on_target"
    spec = client.get("/api/v1/openapi.json").json
    schema = spec["components"]["schemas"]["RelationshipType"]["properties"]["impact"]
    assert "none" in schema["enum"]
