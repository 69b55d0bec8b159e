"""The impact and graph endpoints over HTTP: shapes, bad input, visibility."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from cairn.db import utcnow


@pytest.fixture
def small(estate, make):
    """switch <- server <- vm <- app <- service, plus a cluster of two hosts the vm also runs on."""
    team = make.team()
    switch = estate.ci("network_switch", name="sw-1", criticality="critical", owner_team_id=team.id)
    server = estate.ci("server", name="srv-1")
    estate.rel(server, "connected_to", switch)
    vm = estate.ci("virtual_machine", name="vm-1")
    estate.rel(vm, "runs_on", server)
    app = estate.ci("application", name="app-1")
    estate.rel(app, "runs_on", vm)
    service = estate.ci("business_service", name="svc-1")
    estate.rel(service, "uses", app)
    return {"switch": switch, "server": server, "vm": vm, "app": app, "service": service, "team": team.id}


def test_impact_answer_shape(client, admin, small):
    r = client.get(f"/api/v1/cis/{small['switch']}/impact", headers=admin)
    assert r.status_code == 200
    body = r.json
    assert body["root"] == small["switch"] and body["roots"] == [small["switch"]]
    assert body["count"] == 4 and body["down"] == 4 and body["degraded"] == 0
    first = body["impacted"][0]
    assert first == {
        "ci": {"id": small["server"], "name": "srv-1", "ci_class": "server", "criticality": "medium"},
        "depth": 1,
        "state": "down",
        "path": [small["switch"], small["server"]],
        "parent": small["switch"],
    }
    assert [i["depth"] for i in body["impacted"]] == [1, 2, 3, 4]
    assert body["business_services"] == [small["service"]]
    assert body["owner_team_ids"] == [small["team"]]
    assert isinstance(body["graph_version"], int)
    limited = client.get(f"/api/v1/cis/{small['switch']}/impact?max_depth=2", headers=admin).json
    assert limited["count"] == 2
    filtered = client.get(
        f"/api/v1/cis/{small['switch']}/impact?ci_classes=business_service,application", headers=admin
    ).json
    assert {i["ci"]["id"] for i in filtered["impacted"]} == {small["app"], small["service"]}
    typed = client.get(f"/api/v1/cis/{small['server']}/impact?relationship_types=runs_on", headers=admin).json
    assert {i["ci"]["id"] for i in typed["impacted"]} == {small["vm"], small["app"]}


def test_what_if_and_dependencies(client, admin, small, estate):
    other = estate.ci("database", name="db-1")
    estate.rel(small["app"], "uses", other)
    r = client.post("/api/v1/impact", json={"ci_ids": [other, small["vm"]]}, headers=admin)
    assert r.status_code == 200
    body = r.json
    assert body["roots"] == [other, small["vm"]] and "root" not in body
    assert {i["ci"]["id"]: i["depth"] for i in body["impacted"]} == {small["app"]: 1, small["service"]: 2}
    deps = client.get(f"/api/v1/cis/{small['service']}/dependencies", headers=admin).json
    assert {i["ci"]["id"] for i in deps["impacted"]} == {small[k] for k in ("app", "vm", "server", "switch")} | {other}
    also = client.post(
        "/api/v1/impact",
        json={"ci_ids": [small["service"]], "direction": "dependencies", "max_depth": 1},
        headers=admin,
    ).json
    assert {i["ci"]["id"] for i in also["impacted"]} == {small["app"]}


def test_as_of_over_http(client, admin, small):
    past = (utcnow() - timedelta(days=1)).isoformat()
    r = client.get(f"/api/v1/cis/{small['switch']}/impact", query_string={"as_of": past}, headers=admin)
    assert r.status_code == 200 and r.json["count"] == 0
    r = client.post("/api/v1/impact", json={"ci_ids": [small["switch"]], "as_of": utcnow().isoformat()}, headers=admin)
    assert r.status_code == 200 and r.json["count"] == 4


@pytest.mark.parametrize(
    "query, field",
    [
        ("max_depth=0", "max_depth"),
        ("max_depth=51", "max_depth"),
        ("max_depth=two", "max_depth"),
        ("as_of=yesterday", "as_of"),
        ("as_of=2024-13-45T00:00:00", "as_of"),
        ("ci_classes=spaceship", "ci_classes"),
        ("relationship_types=loves", "relationship_types"),
    ],
)
def test_bad_parameters_are_422(client, admin, small, query, field):
    r = client.get(f"/api/v1/cis/{small['switch']}/impact?{query}", headers=admin)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]


def test_future_as_of_is_422(client, admin, small):
    future = (utcnow() + timedelta(hours=1)).isoformat()
    r = client.get(f"/api/v1/cis/{small['switch']}/impact", query_string={"as_of": future}, headers=admin)
    assert r.status_code == 422 and "as_of" in r.json["errors"]
    r = client.post("/api/v1/impact", json={"ci_ids": [small["switch"]], "as_of": future}, headers=admin)
    assert r.status_code == 422


def test_unknown_ids(client, admin, small):
    for path in ("/api/v1/cis/999999/impact", "/api/v1/cis/999999/dependencies", "/api/v1/cis/999999/graph"):
        assert client.get(path, headers=admin).status_code == 404
    assert client.get(f"/api/v1/cis/{2**40}/impact", headers=admin).status_code == 404
    r = client.post("/api/v1/impact", json={"ci_ids": [small["switch"], 999999]}, headers=admin)
    assert r.status_code == 422 and "ci_ids" in r.json["errors"]
    assert client.post("/api/v1/impact", json={"ci_ids": []}, headers=admin).status_code == 422
    assert client.post("/api/v1/impact", json={"ci_ids": ["1"]}, headers=admin).status_code == 422
    assert client.post("/api/v1/impact", json={}, headers=admin).status_code == 422


def test_requesters_see_only_their_own_cis(client, make, small, estate):
    requester = make.user("requester")
    headers = make.headers(user=requester)
    laptop = estate.ci("laptop", assigned_to_id=requester.id)
    estate.rel(laptop, "connected_to", small["switch"])
    assert client.get(f"/api/v1/cis/{small['switch']}/impact", headers=headers).status_code == 404
    assert client.get(f"/api/v1/cis/{small['switch']}/graph", headers=headers).status_code == 404
    assert client.post("/api/v1/impact", json={"ci_ids": [small["switch"]]}, headers=headers).status_code == 404
    own = client.get(f"/api/v1/cis/{laptop}/dependencies", headers=headers)
    # The switch is not theirs: it is counted, never shown (cairn.auth.policy).
    assert own.status_code == 200 and [i["ci"] for i in own.json["impacted"]] == [{"id": None, "visible": False}]
    assert client.get(f"/api/v1/cis/{laptop}/graph", headers=headers).status_code == 200
    assert client.get("/api/v1/graph/cycles", headers=headers).status_code == 403


def test_each_step_of_a_directed_path_names_a_relationship_that_makes_it(client, admin, estate):
    vm = estate.ci("virtual_machine", name="vm-p")
    server = estate.ci("server", name="srv-p")
    rack = estate.ci("rack", name="rack-p")
    backwards = estate.rel(server, "depends_on", vm)  # the older one, the other way round
    forwards = estate.rel(vm, "runs_on", server)
    estate.rel(rack, "depends_on", server)  # the older one, the other way round
    reverse_typed = estate.rel(rack, "contains", server)  # the server depends on its rack
    r = client.get(f"/api/v1/graph/path?from={vm}&to={rack}", headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["path"] == [vm, server, rack]
    assert r.json["relationships"] == [forwards.id, reverse_typed.id]
    back = client.get(f"/api/v1/graph/path?from={server}&to={vm}", headers=admin)
    assert back.json["path"] == [server, vm] and back.json["relationships"] == [backwards.id]
    # Undirected, any relationship between the two does: the oldest.
    loose = client.get(f"/api/v1/graph/path?from={vm}&to={server}&directed=false", headers=admin)
    assert loose.json["relationships"] == [backwards.id]


def test_path(client, admin, small):
    r = client.get(f"/api/v1/graph/path?from={small['service']}&to={small['switch']}", headers=admin)
    assert r.status_code == 200
    assert r.json["path"] == [small[k] for k in ("service", "app", "vm", "server", "switch")]
    assert len(r.json["relationships"]) == 4
    rel = client.get(f"/api/v1/relationships/{r.json['relationships'][0]}", headers=admin).json
    assert (rel["source_id"], rel["target_id"]) == (small["service"], small["app"])
    assert (
        client.get(f"/api/v1/graph/path?from={small['switch']}&to={small['service']}", headers=admin).status_code == 404
    )
    undirected = client.get(
        f"/api/v1/graph/path?from={small['switch']}&to={small['service']}&directed=false", headers=admin
    )
    assert undirected.status_code == 200 and undirected.json["path"][-1] == small["service"]
    assert client.get(f"/api/v1/graph/path?from=999999&to={small['switch']}", headers=admin).status_code == 404
    assert client.get(f"/api/v1/graph/path?from={small['switch']}", headers=admin).status_code == 422


def test_single_points_of_failure_respect_redundancy(client, admin, estate):
    service = estate.ci("business_service", name="shop")
    app = estate.ci("application", name="shop-app")
    estate.rel(service, "uses", app)
    database = estate.ci("database", name="shop-db")
    estate.rel(app, "uses", database)
    vm = estate.ci("virtual_machine", name="shop-vm")
    estate.rel(app, "runs_on", vm)
    cluster = estate.cluster(2, name="esx-cluster")
    estate.rel(vm, "runs_on", cluster)
    switch = estate.ci("network_switch", name="tor")
    hosts = []
    for i in range(3):
        host = estate.ci("server", name=f"esx-{i}")
        estate.rel(host, "member_of", cluster)
        estate.rel(host, "connected_to", switch)
        hosts.append(host)
    r = client.get(f"/api/v1/graph/single-points-of-failure?service_id={service}", headers=admin)
    assert r.status_code == 200
    # Every host alone is absorbed (2 of 3 remain); the switch they share is not.
    assert {i["id"] for i in r.json["items"]} == {app, database, vm, cluster, switch}
    assert client.get("/api/v1/graph/single-points-of-failure?service_id=999999", headers=admin).status_code == 404
    assert client.get("/api/v1/graph/single-points-of-failure", headers=admin).status_code == 422


def test_single_points_of_failure_without_redundancy(client, admin, estate):
    service = estate.ci("business_service")
    cluster = estate.cluster(3)
    estate.rel(service, "depends_on", cluster)
    hosts = [estate.ci("server") for _ in range(3)]
    for host in hosts:
        estate.rel(host, "member_of", cluster)
    body = client.get(f"/api/v1/graph/single-points-of-failure?service_id={service}", headers=admin).json
    assert {i["id"] for i in body["items"]} == {cluster, *hosts}


def test_cycles(client, admin, estate):
    a, b, c, d = (estate.ci() for _ in range(4))
    estate.depends(a, b)
    estate.depends(b, c)
    estate.depends(c, a)
    estate.depends(d, a)
    body = client.get("/api/v1/graph/cycles", headers=admin).json
    mine = [g for g in body["cycles"] if set(g["ci_ids"]) & {a, b, c, d}]
    assert len(mine) == 1
    assert mine[0]["ci_ids"] == sorted([a, b, c]) and mine[0]["size"] == 3
    assert set(mine[0]["cycle"]) == {a, b, c}


def test_neighbourhood_formats(client, admin, small):
    r = client.get(f"/api/v1/cis/{small['vm']}/graph?depth=1", headers=admin)
    assert r.status_code == 200
    elements = r.json["elements"]
    assert {n["data"]["id"] for n in elements["nodes"]} == {str(small[k]) for k in ("vm", "server", "app")}
    edges = {(e["data"]["source"], e["data"]["target"], e["data"]["type"]) for e in elements["edges"]}
    assert edges == {
        (str(small["vm"]), str(small["server"]), "runs_on"),
        (str(small["app"]), str(small["vm"]), "runs_on"),
    }
    wide = client.get(f"/api/v1/cis/{small['vm']}/graph?depth=2", headers=admin).json
    assert len(wide["elements"]["nodes"]) == 5
    capped = client.get(f"/api/v1/cis/{small['vm']}/graph?depth=2&max_nodes=2", headers=admin).json
    assert capped["truncated"] is True and len(capped["elements"]["nodes"]) == 2

    graphml = client.get(f"/api/v1/cis/{small['vm']}/graph?format=graphml&depth=1", headers=admin)
    assert graphml.mimetype == "application/graphml+xml"
    root = ET.fromstring(graphml.data)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == 3 and len(root.findall(".//g:edge", ns)) == 2

    dot = client.get(f"/api/v1/cis/{small['vm']}/graph?format=dot", headers=admin)
    assert dot.mimetype == "text/vnd.graphviz"
    text = dot.data.decode()
    assert text.startswith("digraph") and f"n{small['vm']} -> n{small['server']}" in text and '"vm-1' in text
    assert client.get(f"/api/v1/cis/{small['vm']}/graph?format=png", headers=admin).status_code == 422
    assert client.get(f"/api/v1/cis/{small['vm']}/graph?depth=9", headers=admin).status_code == 422


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    for path in (
        "/api/v1/relationships",
        "/api/v1/relationships/{rel_id}",
        "/api/v1/relationship-types",
        "/api/v1/cis/{ci_id}/impact",
        "/api/v1/impact",
        "/api/v1/cis/{ci_id}/dependencies",
        "/api/v1/graph/path",
        "/api/v1/graph/single-points-of-failure",
        "/api/v1/graph/cycles",
        "/api/v1/cis/{ci_id}/graph",
    ):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/v1/graph/path"]["get"]["parameters"]}
    assert {"from", "to"} <= params
