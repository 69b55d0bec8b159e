"""The impact map's pages with Flask's test client: the map's Cytoscape JSON (down and degraded apart,
business services, open incidents, cluster health, the explaining path), what-if, grouping over the
threshold and expanding a group, time travel, single points of failure, the shortest path, the table
and its exports, the map on the CI and ticket pages, and input that must never be a 500."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from tests.web.pages import sign_in
from web.impact import GROUP_OVER, MEMBERS_SHOWN


def build_estate(tag: str, vms: int = 0) -> dict:
    """A small layered estate (as integrations/demo.py wires it): two core switches, a top-of-rack
    switch under each, three hosts in a cluster that needs one member up, VMs on the cluster, one VM
    on a host, two applications, two business services; an open incident on one application. With
    ``vms``, that many more VMs hang off a third switch (a big blast radius). Returns the ids."""
    from cmdb.services import create_ci
    from relations.services import bulk_create_relationships, create_relationship
    from tickets.services import create_ticket

    def ci(name, ci_class, **fields):
        return create_ci({"name": f"{name}-{tag}", "ci_class": ci_class, "status": "deployed", **fields}).id

    def link(source, type_, target):
        create_relationship({"source_id": source, "type": type_, "target_id": target})

    ids = {
        "core1": ci("core-sw-01", "network_switch", criticality="critical"),
        "core2": ci("core-sw-02", "network_switch", criticality="critical"),
        "tor1": ci("tor-sw-01", "network_switch"),
        "tor2": ci("tor-sw-02", "network_switch"),
        "host1": ci("esx-01", "server"),
        "host2": ci("esx-02", "server"),
        "host3": ci("esx-03", "server"),
        "cluster": ci("esx-cluster", "cluster", attributes={"min_members_up": 1}),
        "vm5": ci("vm-solo", "virtual_machine"),
        "app_a": ci("payroll-app", "application"),
        "app_b": ci("shop-app", "application"),
        "payroll": ci("Payroll", "business_service", criticality="critical"),
        "shop": ci("Web Shop", "business_service"),
        "lonely": ci("lonely-printer", "printer"),
    }
    for n in range(1, 5):
        ids[f"vm{n}"] = ci(f"vm-0{n}", "virtual_machine")
        link(ids[f"vm{n}"], "runs_on", ids["cluster"])
    link(ids["tor1"], "connected_to", ids["core1"])
    link(ids["tor2"], "connected_to", ids["core2"])
    for host, tor in (("host1", "tor1"), ("host2", "tor2"), ("host3", "tor1")):
        link(ids[host], "connected_to", ids[tor])
        link(ids[host], "member_of", ids["cluster"])
    link(ids["vm5"], "runs_on", ids["host1"])
    link(ids["app_a"], "runs_on", ids["vm5"])
    link(ids["app_b"], "runs_on", ids["vm1"])
    link(ids["payroll"], "uses", ids["app_a"])
    link(ids["shop"], "uses", ids["app_b"])
    ids["incident"] = create_ticket(
        {"kind": "incident", "title": f"Payroll app slow {tag}", "ci_ids": [ids["app_a"]]}, None
    ).id
    if vms:
        ids["edge"] = ci("edge-sw", "network_switch")
        many = [ci(f"bulk-vm-{n:03d}", "virtual_machine") for n in range(vms)]
        bulk_create_relationships([{"source_id": v, "type": "depends_on", "target_id": ids["edge"]} for v in many])
    return ids


@pytest.fixture
def estate(db):
    ids = build_estate("t")
    db.session.commit()
    return ids


def _map(client, query: str) -> dict:
    response = client.get(f"/impact/map.json?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()


def _nodes(data: dict) -> dict[str, dict]:
    return {n["data"]["id"]: n for n in data["elements"]["nodes"]}


def test_the_map_json_draws_down_and_degraded_services_incidents_and_clusters(signed_in, estate):
    data = _map(signed_in, f"ci={estate['core1']}")
    assert (data["count"], data["down"], data["degraded"], data["services"]) == (13, 6, 7, 2)
    assert data["grouped"] is False and data["roots"] == [estate["core1"]]
    nodes = _nodes(data)
    assert len(nodes) == 14  # the failed switch and the 13 it takes with it
    classes = {key: set(node["classes"].split()) for key, node in nodes.items()}
    assert "failed" in classes[f"ci-{estate['core1']}"]
    assert {"down", "service"} <= classes[f"ci-{estate['payroll']}"]
    assert {"degraded", "service"} <= classes[f"ci-{estate['shop']}"]
    assert "incident" in classes[f"ci-{estate['app_a']}"] and "incident" not in classes[f"ci-{estate['app_b']}"]
    cluster = nodes[f"ci-{estate['cluster']}"]["data"]
    assert cluster["cluster"] == {"members": 3, "up": 1, "min_up": 1}
    assert "1/3 up" in cluster["label"]
    payroll = nodes[f"ci-{estate['payroll']}"]["data"]
    assert payroll["path"][0] == f"ci-{estate['core1']}" and payroll["path"][-1] == f"ci-{estate['payroll']}"
    assert payroll["why"][:2] == ["core-sw-01-t", "tor-sw-01-t"]
    app_a = nodes[f"ci-{estate['app_a']}"]["data"]
    assert [t["number"] for t in app_a["tickets"]] and app_a["tickets"][0]["url"] == f"/tickets/{estate['incident']}"
    # edges run the way a failure travels: from what is depended on to its dependant
    edges = {(e["data"]["source"], e["data"]["target"]) for e in data["elements"]["edges"]}
    assert (f"ci-{estate['core1']}", f"ci-{estate['tor1']}") in edges
    assert (f"ci-{estate['app_a']}", f"ci-{estate['payroll']}") in edges
    assert all(s in nodes and t in nodes for s, t in edges)


def test_the_map_marks_the_cis_whose_monitoring_alerts_are_firing(signed_in, estate):
    from integrations.events import services

    def alert(fingerprint, ci_id, status="firing"):
        return {"source": "prometheus", "fingerprint": fingerprint, "status": status, "severity": "critical",
                "summary": fingerprint, "ci": {"id": ci_id}}  # fmt: skip

    rows = services.accept([alert("tor-down", estate["tor1"]), alert("tor-ping", estate["tor1"]),
                            alert("app-5xx", estate["app_a"]), alert("old", estate["app_b"], "resolved")])  # fmt: skip
    services.process_range(rows[0].id, rows[-1].id)
    nodes = _nodes(_map(signed_in, f"ci={estate['core1']}"))
    alerting = {key for key, node in nodes.items() if "alerting" in node["classes"].split()}
    assert alerting == {f"ci-{estate['tor1']}", f"ci-{estate['app_a']}"}
    assert nodes[f"ci-{estate['tor1']}"]["data"]["alerts"] == 2
    assert "2 firing alerts" in nodes[f"ci-{estate['tor1']}"]["data"]["label"]
    assert nodes[f"ci-{estate['app_b']}"]["data"]["alerts"] == 0
    # Looking back in time, today's alerts are not drawn.
    past = _nodes(_map(signed_in, f"ci={estate['core1']}&as_of=" + _now_iso()))
    assert not any("alerting" in node["classes"].split() for node in past.values())


def _now_iso() -> str:
    from cairn.db import utcnow

    return utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_what_if_adds_the_second_core_switch_and_the_counts_change(signed_in, estate):
    one = _map(signed_in, f"ci={estate['core1']}")
    both = _map(signed_in, f"ci={estate['core1']}&ci={estate['core2']}")
    assert both["count"] == one["count"] + 2  # tor-sw-02 and esx-02
    assert both["down"] > one["down"]
    cluster = _nodes(both)[f"ci-{estate['cluster']}"]
    assert "down" in cluster["classes"] and cluster["data"]["cluster"]["up"] == 0
    # the picker: a typed name, or a suggestion's button, lands on the failure set's own address
    typed = signed_in.get(f"/impact?ci={estate['core1']}&q=core-sw-02-t")
    assert typed.status_code == 302
    assert typed.location.endswith(f"/impact?ci={estate['core1']}&ci={estate['core2']}")
    picked = signed_in.get(f"/impact?ci={estate['core1']}&q=core&ci_id={estate['core2']}")
    assert picked.status_code == 302 and picked.location == typed.location
    page = signed_in.get(typed.location).get_data(as_text=True)
    assert re.search(r'id="count-total">15<', page)
    dropped = signed_in.get(f"/impact?ci={estate['core1']}&ci={estate['core2']}&drop={estate['core2']}")
    assert dropped.location.endswith(f"/impact?ci={estate['core1']}")
    ambiguous = signed_in.get(f"/impact?ci={estate['core1']}&q=core-sw")
    assert ambiguous.status_code == 422 and "Several CIs match" in ambiguous.get_data(as_text=True)


def test_a_big_answer_is_grouped_and_a_group_expands_to_a_bounded_number(signed_in, db):
    ids = build_estate("g", vms=GROUP_OVER + 10)
    db.session.commit()
    data = _map(signed_in, f"ci={ids['edge']}")
    assert data["count"] == GROUP_OVER + 10 and data["grouped"] is True and data["group_by"] == "class"
    nodes = _nodes(data)
    assert set(nodes) == {f"ci-{ids['edge']}", "g-class-virtual_machine"}
    group = nodes["g-class-virtual_machine"]["data"]
    assert (group["count"], group["down"], group["kind"]) == (GROUP_OVER + 10, GROUP_OVER + 10, "group")
    [edge] = data["elements"]["edges"]
    assert (edge["data"]["source"], edge["data"]["target"], edge["data"]["weight"]) == (
        f"ci-{ids['edge']}", "g-class-virtual_machine", GROUP_OVER + 10)  # fmt: skip
    # "none" cannot draw that many one by one
    assert _map(signed_in, f"ci={ids['edge']}&group=none")["grouped"] is True
    expanded = signed_in.get(data["expand_url"] + "&key=virtual_machine").get_json()
    assert expanded["count"] == GROUP_OVER + 10 and expanded["more"] == GROUP_OVER + 10 - MEMBERS_SHOWN
    members = expanded["elements"]["nodes"]
    assert len(members) == MEMBERS_SHOWN and {m["data"]["parent"] for m in members} == {"g-class-virtual_machine"}
    assert all(e["data"]["source"] == f"ci-{ids['edge']}" for e in expanded["elements"]["edges"])
    assert signed_in.get(data["expand_url"] + "&key=router").status_code == 404
    # by hops instead, and a small answer grouped on request
    by_depth = _map(signed_in, f"ci={ids['edge']}&group=depth")
    assert "g-depth-1" in _nodes(by_depth)
    small = _map(signed_in, f"ci={ids['core1']}&group=class")
    assert small["grouped"] is True and f"ci-{ids['payroll']}" in _nodes(small)  # services stay apart


def test_as_of_answers_from_the_graph_as_it_was(signed_in, db):
    from cairn.db import utcnow

    before = (utcnow() - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    ids = build_estate("a")
    db.session.commit()
    then = _map(signed_in, f"ci={ids['core1']}&as_of={before}")
    assert then["count"] == 0 and then["as_of"].startswith(before[:10])
    assert _map(signed_in, f"ci={ids['core1']}")["count"] == 13
    page = signed_in.get(f"/impact?ci={ids['core1']}&as_of={before}")
    assert page.status_code == 200 and "as the estate was on" in page.get_data(as_text=True)


def test_the_page_has_the_table_spof_path_and_exports(signed_in, estate):
    core1, payroll = estate["core1"], estate["payroll"]
    response = signed_in.get(f"/impact?ci={core1}&sort=-name")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'role="img"' in body and 'id="impact-data"' in body and 'id="__________cytoscape_stylesheet"' in body
    assert 'aria-sort="descending"' in body
    names = re.findall(r'<td><a href="/cis/\d+">([^<]+)</a></td>', body)
    assert len(names) == 13 and names == sorted(names, key=str.lower, reverse=True)
    spof = signed_in.get(f"/impact?ci={core1}&spof={payroll}").get_data(as_text=True)
    assert "take Payroll-t down on their own" in spof and "payroll-app-t" in spof.split('id="spof-h"')[1]
    path = signed_in.get(f"/impact?ci={core1}&from={core1}&to=Payroll-t").get_data(as_text=True)
    steps = re.findall(r"<li><a href=\"/cis/\d+\">([^<]+)</a></li>", path.split('class="path-steps"')[1])
    assert steps[0] == "core-sw-01-t" and steps[-1] == "Payroll-t"
    graphml = signed_in.get(f"/impact/export.graphml?ci={core1}")
    assert graphml.mimetype == "application/graphml+xml" and graphml.data.count(b"<node ") == 14
    dot = signed_in.get(f"/impact/export.dot?ci={core1}")
    assert dot.mimetype == "text/vnd.graphviz" and b"rankdir=LR" in dot.data
    cy = signed_in.get(f"/impact/export.json?ci={core1}").get_json()
    assert len(cy["elements"]["nodes"]) == 14 and cy["elements"]["edges"]


def test_the_csv_export_is_formula_safe(signed_in, db, make):
    from relations.services import create_relationship

    switch = make.ci("network_switch", name="sw-csv")
    evil = make.ci("application", name='=HYPERLINK("http://evil","x")')
    create_relationship({"source_id": evil.id, "type": "depends_on", "target_id": switch.id})
    db.session.commit()
    response = signed_in.get(f"/impact/export.csv?ci={switch.id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["id", "name", "class", "state"]
    assert rows[2][1] == '\'=HYPERLINK("http://evil","x")' and rows[2][3] == "down"


def test_the_map_is_on_the_ci_page_and_the_ticket_page(signed_in, estate):
    ci_page = signed_in.get(f"/cis/{estate['core1']}").get_data(as_text=True)
    assert f'data-src="/impact/map.json?ci={estate["core1"]}"' in ci_page and 'id="impact-map"' in ci_page
    ticket_page = signed_in.get(f"/tickets/{estate['incident']}").get_data(as_text=True)
    assert f'data-src="/impact/map.json?ci={estate["app_a"]}"' in ticket_page


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("/impact", 200),
        ("/impact?ci=abc", 422),
        ("/impact?ci=0", 422),
        ("/impact?ci=99999999999999999999", 422),
        ("/impact?ci=-1", 422),
        ("/impact?ci=987654", 422),
        ("/impact?ci={core1}&as_of=yesterday", 422),
        ("/impact?ci={core1}&as_of=2999-01-01T00:00", 422),
        ("/impact?ci={core1}&as_of=0001-01-01", 422),
        ("/impact?ci={core1}&group=%00&sort=%27;drop&page=-5", 200),
        ("/impact?ci={core1}&page=99999999999999999999", 200),
        ("/impact?ci={core1}&spof=nothing-like-this", 422),
        ("/impact?ci={core1}&spof=987654", 404),
        ("/impact?ci={core1}&from={core1}", 422),
        ("/impact?ci={core1}&from={core1}&to={core2}", 200),
        ("/impact?ci={core1}&from={core1}&to=987654", 404),
        ("/impact?ci={core1}&from={core1}&to={lonely}", 404),
        ("/impact?ci={core1}&q=" + "x" * 5000, 422),
        ("/impact?ticket=abc", 404),
        ("/impact?ticket=987654", 404),
        ("/impact?" + "&".join(f"ci={n}" for n in range(1, 120)), 422),
        ("/impact/map.json", 422),
        ("/impact/map.json?ci=abc", 422),
        ("/impact/map.json?ci=987654", 422),
        ("/impact/group.json?ci={core1}", 422),
        ("/impact/group.json?ci={core1}&key=" + "k" * 5000, 404),
        ("/impact/export.xls?ci={core1}", 404),
        ("/impact/export.csv", 422),
        ("/impact/export.dot?ci=987654", 422),
    ],
)
def test_bad_input_is_never_a_500(signed_in, estate, query, status):
    response = signed_in.get(query.format(**estate))
    assert response.status_code == status, response.get_data(as_text=True)[:300]


def test_a_requester_cannot_open_the_map(client, make, estate):
    requester = make.user("requester")
    sign_in(client, requester)
    for path in ("/impact", "/impact/map.json", "/impact/group.json", "/impact/export.csv"):
        response = client.get(f"{path}?ci={estate['core1']}&key=server")
        assert response.status_code == 403, path
    client.get("/logout")


def test_signed_out_the_map_asks_to_sign_in(client, estate):
    response = client.get(f"/impact/map.json?ci={estate['core1']}")
    assert response.status_code == 302 and "/login" in response.location
