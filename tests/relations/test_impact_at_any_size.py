"""Impact answers at any size (issue 16, part 3): the summary, pages of the list, each item's parent,
and the per-process cache of answers behind them (one traversal per question and graph version,
never a stale answer, never one viewer's view served to another)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest

from cairn.db import utcnow
from cairn.errors import PROBLEM_JSON
from relations import answers, services
from relations.answers import AnswerCache
from relations.impact import ImpactResult
from tests.openapi import assert_documented

RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@pytest.fixture
def site(estate, make, client, admin):
    """A switch whose failure takes servers down, degrades a cluster that keeps one member, and
    through them two business services; open incidents on some CIs, a request and a canceled one.

        sw (root, critical) <- s1 (critical, team A), s2 (low), s3 (high, team B)
        cluster (min 1 up) has members s1, s2, s4 (s4 not on the switch): degraded
        vm runs on the cluster (degraded) <- app2 (team A) <- svc_b (degraded)
        app1 (team A) runs on s3 (down) <- svc_a (down)
    """
    team_a, team_b = make.team(name="Team A"), make.team(name="Team B")
    ids = {
        "sw": estate.ci("network_switch", name="sw", criticality="critical"),
        "s1": estate.ci("server", name="s1", criticality="critical", owner_team_id=team_a.id),
        "s2": estate.ci("server", name="s2", criticality="low"),
        "s3": estate.ci("server", name="s3", criticality="high", owner_team_id=team_b.id),
        "s4": estate.ci("server", name="s4"),
        "cluster": estate.cluster(1, name="cluster"),
        "vm": estate.ci("virtual_machine", name="vm"),
        "app1": estate.ci("application", name="app1", owner_team_id=team_a.id),
        "app2": estate.ci("application", name="app2", owner_team_id=team_a.id),
        "svc_a": estate.ci("business_service", name="svc-a", criticality="critical"),
        "svc_b": estate.ci("business_service", name="svc-b", criticality="low"),
    }
    # (dependent, type, dependency): as recorded, the member_of ones member -> cluster.
    edges = [
        ("s1", "connected_to", "sw"), ("s2", "connected_to", "sw"), ("s3", "connected_to", "sw"),
        ("s1", "member_of", "cluster"), ("s2", "member_of", "cluster"), ("s4", "member_of", "cluster"),
        ("vm", "runs_on", "cluster"), ("app2", "runs_on", "vm"), ("svc_b", "uses", "app2"),
        ("app1", "runs_on", "s3"), ("svc_a", "uses", "app1"),
    ]  # fmt: skip
    for source, type_, target in edges:
        estate.rel(ids[source], type_, ids[target])
    ids["team_a"], ids["team_b"] = team_a.id, team_b.id

    def ticket(kind, ci, title):
        body = {"kind": kind, "title": title, "ci_ids": [ids[ci]], "impact": 2, "urgency": 2}
        r = client.post("/api/v1/tickets", json=body, headers=admin)
        assert r.status_code == 201, r.json
        return r.json

    ids["inc_s1"] = ticket("incident", "s1", "s1 is down")["id"]
    ids["inc_app1"] = ticket("incident", "app1", "app1 errors")["id"]
    ids["inc_sw"] = ticket("incident", "sw", "the switch itself")["id"]  # on the root: not an impacted CI
    ticket("request", "s3", "more disk")  # open, but no incident
    canceled = ticket("incident", "app2", "false alarm")
    r = client.post(f"/api/v1/tickets/{canceled['id']}/transitions", json={"to": "canceled", "note": "no"},
                    headers=admin)  # fmt: skip
    assert r.status_code == 200, r.json
    ids["edges"] = edges
    return ids


def _pairs(items, key) -> dict:
    out: dict = {}
    for i in items:
        pair = out.setdefault(key(i), {"down": 0, "degraded": 0})
        pair[i["state"]] += 1
    return out


def _behind(site, full) -> dict[int, dict]:
    """For each business service, the impacted CIs from which a chain of relationships (among the
    CIs the walk reached) leads to it, counted by state: computed here from the estate's edges."""
    dependents: dict[int, set[int]] = {}
    for source, type_, target in site["edges"]:
        dependent, dependency = (target, source) if type_ == "member_of" else (source, target)
        dependents.setdefault(site[dependency], set()).add(site[dependent])
    state = {i["ci"]["id"]: i["state"] for i in full["impacted"]}
    reached = set(state) | set(full["roots"])
    out = {}
    for service in full["business_services"]:
        found = set()
        for start in state:
            seen, stack = {start}, [start]
            while stack:
                n = stack.pop()
                for m in dependents.get(n, ()):
                    if m in reached and m not in seen:
                        seen.add(m)
                        stack.append(m)
            if service in seen and start != service:
                found.add(start)
        out[service] = dict(Counter(state[n] for n in found))
    return out


@pytest.fixture(scope="module")
def spec(app):
    with app.test_client() as c:
        return c.get("/api/v1/openapi.json").json


# ---------------------------------------------------------------------------------------------
# The summary


def test_summary_counts_equal_the_counts_of_the_full_list(client, admin, site, spec):
    url = f"/api/v1/cis/{site['sw']}/impact"
    full = client.get(url, headers=admin).json
    r = client.get(url, headers=admin, query_string={"summary": "true"})
    assert r.status_code == 200, r.json
    assert_documented(spec, "/api/v1/cis/{ci_id}/impact", "get", r)
    body = r.json
    assert "impacted" not in body
    for key in ("root", "roots", "count", "down", "degraded", "business_services", "owner_team_ids", "graph_version"):
        assert body[key] == full[key], key
    assert full["count"] == 9 and full["down"] == 5 and full["degraded"] == 4
    summary = body["summary"]
    assert summary["hidden"] == {"down": 0, "degraded": 0}

    by_depth = _pairs(full["impacted"], lambda i: i["depth"])
    assert summary["by_depth"] == [{"depth": d, **by_depth[d]} for d in sorted(by_depth)]
    by_class = _pairs(full["impacted"], lambda i: i["ci"]["ci_class"])
    assert {e["ci_class"]: {"down": e["down"], "degraded": e["degraded"]} for e in summary["by_class"]} == by_class
    totals = [e["down"] + e["degraded"] for e in summary["by_class"]]
    assert totals == sorted(totals, reverse=True) and sum(totals) == full["count"]

    team_of = {site["s1"]: site["team_a"], site["app1"]: site["team_a"], site["app2"]: site["team_a"],
               site["s3"]: site["team_b"]}  # fmt: skip
    by_team = _pairs(full["impacted"], lambda i: team_of.get(i["ci"]["id"]))
    assert {e["id"]: {"down": e["down"], "degraded": e["degraded"]} for e in summary["by_team"]} == by_team
    names = {e["id"]: e["name"] for e in summary["by_team"]}
    assert names == {site["team_a"]: "Team A", site["team_b"]: "Team B", None: None}

    # Business services: each with its name and the CIs its failure comes through.
    behind = _behind(site, full)
    services_ = {e["id"]: e for e in summary["by_business_service"]}
    assert set(services_) == set(full["business_services"]) == {site["svc_a"], site["svc_b"]}
    for service, counts in behind.items():
        assert (services_[service]["down"], services_[service]["degraded"]) == (
            counts.get("down", 0), counts.get("degraded", 0)
        )  # fmt: skip
    assert services_[site["svc_a"]] == {"id": site["svc_a"], "name": "svc-a", "criticality": "critical",
                                        "state": "down", "depth": 3, "down": 2, "degraded": 0}  # fmt: skip
    assert (services_[site["svc_b"]]["down"], services_[site["svc_b"]]["degraded"]) == (2, 3)
    assert [e["id"] for e in summary["by_business_service"]] == [site["svc_a"], site["svc_b"]]  # down first

    # The impacted CIs with open incidents: not the root's, not a request, not a canceled one.
    incidents = {e["id"]: [t["id"] for t in e["incidents"]] for e in summary["open_incidents"]}
    assert incidents == {site["s1"]: [site["inc_s1"]], site["app1"]: [site["inc_app1"]]}
    assert [e["id"] for e in summary["open_incidents"]] == [site["s1"], site["app1"]]  # depth 1, then 2
    first = summary["open_incidents"][0]
    assert first["name"] == "s1" and first["state"] == "down" and first["incidents"][0]["number"].startswith("INC")
    # The answer's own enrichment stays as in the full answer.
    assert body["open_tickets"] == full["open_tickets"]


def test_summary_by_post_and_through_classes_left_out(client, admin, site, spec):
    got = client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin, query_string={"summary": "true"}).json
    r = client.post("/api/v1/impact", json={"ci_ids": [site["sw"]], "summary": True}, headers=admin)
    assert r.status_code == 200, r.json
    assert_documented(spec, "/api/v1/impact", "post", r)
    assert "root" not in r.json and r.json["summary"] == got["summary"]
    # Only servers and services listed: svc-a is still reached through app1, which the list leaves out.
    query = {"summary": "true", "ci_classes": "server,business_service"}
    narrow = client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin, query_string=query).json
    services_ = {e["id"]: (e["down"], e["degraded"]) for e in narrow["summary"]["by_business_service"]}
    assert services_ == {site["svc_a"]: (1, 0), site["svc_b"]: (2, 0)}  # s3; s1 and s2
    assert narrow["count"] == sum(e["down"] + e["degraded"] for e in narrow["summary"]["by_class"]) == 5
    # What a CI needs: the services it depends on are not behind it.
    deps = client.get(f"/api/v1/cis/{site['app1']}/dependencies", headers=admin, query_string={"summary": "true"})
    assert deps.status_code == 200 and deps.json["summary"]["by_business_service"] == []
    assert [e["depth"] for e in deps.json["summary"]["by_depth"]] == [1, 2]


# ---------------------------------------------------------------------------------------------
# Pages and parents


def _rank(item) -> tuple:
    return item["depth"], RANK[item["ci"]["criticality"]], item["ci"]["id"]


def test_pages_concatenated_are_the_full_list_in_page_order(client, admin, site, spec):
    url = f"/api/v1/cis/{site['sw']}/impact"
    full = client.get(url, headers=admin)
    assert "X-Pagination" not in full.headers
    items = full.json["impacted"]
    assert [(i["depth"], i["ci"]["id"]) for i in items] == sorted((i["depth"], i["ci"]["id"]) for i in items)
    expected = sorted(items, key=_rank)
    assert expected != items  # criticality reorders this estate, so the test can tell the orders apart
    pages, page = [], 1
    while True:
        r = client.get(url, headers=admin, query_string={"page": page, "page_size": 3})
        assert r.status_code == 200
        assert_documented(spec, "/api/v1/cis/{ci_id}/impact", "get", r)
        meta = json.loads(r.headers["X-Pagination"])
        assert meta["total"] == r.json["count"] == 9 and meta["total_pages"] == 3
        assert (r.json["down"], r.json["degraded"]) == (full.json["down"], full.json["degraded"])
        assert r.json["business_services"] == full.json["business_services"]
        if not r.json["impacted"]:
            assert page == 4 and "page" not in meta
            break
        assert meta["page"] == page and len(r.json["impacted"]) <= 3
        pages += r.json["impacted"]
        page += 1
    assert pages == expected
    first = client.get(url, headers=admin, query_string={"page_size": 4}).json["impacted"]
    assert first == expected[:4]
    only_page = client.get(url, headers=admin, query_string={"page": 1})
    assert only_page.json["impacted"] == expected and json.loads(only_page.headers["X-Pagination"])["page"] == 1
    far = client.get(url, headers=admin, query_string={"page": 10**6, "page_size": 1000})
    assert far.status_code == 200 and far.json["impacted"] == [] and far.json["count"] == 9
    posted = client.post("/api/v1/impact", json={"ci_ids": [site["sw"]], "page": 2, "page_size": 3}, headers=admin)
    assert posted.status_code == 200 and posted.json["impacted"] == expected[3:6]
    assert json.loads(posted.headers["X-Pagination"])["page"] == 2


def test_a_page_names_the_open_tickets_of_its_own_cis(client, admin, site):
    url = f"/api/v1/cis/{site['sw']}/impact"
    first = client.get(url, headers=admin, query_string={"page_size": 1}).json  # s1 (depth 1, critical)
    assert first["impacted"][0]["ci"]["id"] == site["s1"]
    assert {t["id"] for t in first["open_tickets"]} == {site["inc_s1"], site["inc_sw"]}  # its own and the root's


def test_each_item_names_its_parent_the_ci_before_it_on_its_path(client, admin, site):
    for url in (f"/api/v1/cis/{site['sw']}/impact", f"/api/v1/cis/{site['svc_b']}/dependencies"):
        body = client.get(url, headers=admin).json
        assert body["count"] > 3
        for item in body["impacted"]:
            assert item["parent"] == item["path"][-2]
            if item["depth"] == 1:
                assert item["parent"] == body["root"]
    by_id = {i["ci"]["id"]: i for i in client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin).json["impacted"]}
    assert by_id[site["cluster"]]["parent"] in (site["s1"], site["s2"])
    assert by_id[site["app2"]]["parent"] == site["vm"]
    result = services.impact([site["sw"]])
    assert all(i.parent == i.path[-2] for i in result.impacted)


def test_the_default_answer_is_the_documented_one(client, admin, site):
    """The whole list, written from the cached JSON, is what impact_document builds item by item."""
    r = client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin)
    again = client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin)
    document = services.impact_document(services.impact([site["sw"]]), single_root=True)
    assert r.json == again.json == json.loads(json.dumps(document))
    assert list(r.json) == list(document)


# ---------------------------------------------------------------------------------------------
# The cache


def _traversals() -> int:
    return answers.stats()["traversals"]


def test_paging_and_the_summary_after_the_list_reuse_one_traversal(client, admin, site):
    url = f"/api/v1/cis/{site['sw']}/impact"
    before = _traversals()
    full = client.get(url, headers=admin).json
    assert _traversals() == before + 1
    for query in ({"page": 1, "page_size": 2}, {"page": 2, "page_size": 2}, {"summary": "true"}, {}):
        assert client.get(url, headers=admin, query_string=query).status_code == 200
    assert (
        client.post("/api/v1/impact", json={"ci_ids": [site["sw"]], "summary": True}, headers=admin).status_code == 200
    )
    assert [i.ci_id for i in services.impact([site["sw"]]).impacted] == [i["ci"]["id"] for i in full["impacted"]]
    assert _traversals() == before + 1
    # Another question is another answer.
    assert client.get(url, headers=admin, query_string={"max_depth": 2}).json["count"] == 5
    assert client.get(f"/api/v1/cis/{site['sw']}/dependencies", headers=admin).status_code == 200
    assert _traversals() == before + 3


def test_a_graph_change_is_never_answered_from_before_it(client, admin, site, estate, db):
    url = f"/api/v1/cis/{site['sw']}/impact"
    assert client.get(url, headers=admin, query_string={"summary": "true"}).json["count"] == 9
    before = _traversals()
    # A write the graph does not hold (a description) leaves the answer valid.
    assert client.patch(f"/api/v1/cis/{site['s2']}", json={"description": "spare"}, headers=admin).status_code == 200
    assert client.get(url, headers=admin, query_string={"summary": "true"}).json["count"] == 9
    assert _traversals() == before
    # A new relationship: the next answer, whole, paged or summarised, has it.
    newcomer = estate.ci("application", name="newcomer")
    estate.rel(newcomer, "runs_on", site["s2"])
    summary = client.get(url, headers=admin, query_string={"summary": "true"}).json
    assert summary["count"] == 10 and {"depth": 2, "down": 2, "degraded": 1} in summary["summary"]["by_depth"]
    assert _traversals() == before + 1
    ids = [i["ci"]["id"] for i in client.get(url, headers=admin, query_string={"page_size": 50}).json["impacted"]]
    assert newcomer in ids and _traversals() == before + 1
    # A rename (a field the answers show) and a removed relationship, through the API.
    assert client.patch(f"/api/v1/cis/{newcomer}", json={"name": "renamed"}, headers=admin).status_code == 200
    named = {i["ci"]["id"]: i["ci"]["name"] for i in client.get(url, headers=admin).json["impacted"]}
    assert named[newcomer] == "renamed"
    rel = client.get("/api/v1/relationships", headers=admin, query_string={"ci_id": newcomer}).json[0]
    assert client.delete(f"/api/v1/relationships/{rel['id']}", headers=admin).status_code == 204
    assert client.get(url, headers=admin).json["count"] == 9
    assert _traversals() == before + 3


def test_as_of_answers_are_cached_and_summarised_without_walking_again(client, admin, site):
    moment = utcnow().isoformat()
    url = f"/api/v1/cis/{site['sw']}/impact"
    before = _traversals()
    full = client.get(url, headers=admin, query_string={"as_of": moment}).json
    summary = client.get(url, headers=admin, query_string={"as_of": moment, "summary": "true"}).json
    assert _traversals() == before + 1
    assert full["count"] == summary["count"] == 9 and summary["as_of"] == full["as_of"]
    now = client.get(url, headers=admin, query_string={"summary": "true"}).json
    assert summary["summary"] == now["summary"]
    past = (utcnow() - timedelta(days=1)).isoformat()
    assert client.get(url, headers=admin, query_string={"as_of": past, "summary": "true"}).json["count"] == 0


def test_cache_is_bounded_by_items_least_recently_used_first():
    cache = AnswerCache(max_items=10)

    def answer(n):
        return answers.Answer(ImpactResult([1], [object()] * n, [], [], 1))

    def key(name, version=1):
        return ("db", version, 7, name)

    a, b, c = answer(4), answer(4), answer(4)
    cache.put(key("a"), a)
    cache.put(key("b"), b)
    assert cache.get(key("a")) is a  # a is now the most recently used
    cache.put(key("c"), c)  # 12 > 10: b goes
    assert cache.get(key("b")) is None and cache.get(key("a")) is a and cache.get(key("c")) is c
    assert cache.items == 8
    cache.put(key("huge"), answer(11))  # larger than the whole bound: served, not kept
    assert cache.get(key("huge")) is None and cache.items == 8
    assert cache.get(key("a")) is a
    cache.grow(a, 4)  # something derived from a: 12 > 10, the least recently used (c) goes
    assert cache.get(key("c")) is None and cache.get(key("a")) is a and cache.items == 8
    empty = answer(0)
    cache.put(key("empty"), empty)
    assert empty.weight == 1 and cache.items == 9
    cache.put(key("new", version=2), answer(2))  # another graph version: the older entries go
    assert cache.get(key("a")) is None and cache.items == 2
    assert cache.snapshot()["entries"] == 1


def test_no_cache_when_its_bound_is_zero(app, client, admin, site):
    app.config["CAIRN_IMPACT_CACHE_ITEMS"] = 0
    try:
        before = _traversals()
        for _ in range(2):
            assert client.get(f"/api/v1/cis/{site['sw']}/impact", headers=admin).json["count"] == 9
        assert _traversals() == before + 2
    finally:
        app.config.pop("CAIRN_IMPACT_CACHE_ITEMS")


# ---------------------------------------------------------------------------------------------
# Requesters


@pytest.fixture
def requester_site(make, estate):
    """A requester's laptop and dock; the laptop needs the dock and a switch they may not see, the
    switch a router they may not see either."""
    requester = make.user("requester")
    laptop = estate.ci("laptop", name="my-laptop", assigned_to_id=requester.id)
    dock = estate.ci("desktop", name="my-dock", criticality="low", assigned_to_id=requester.id)
    switch = estate.ci("network_switch", name="floor-switch", criticality="critical")
    router = estate.ci("router", name="core-router", criticality="critical")
    estate.rel(laptop, "connected_to", switch)
    estate.rel(laptop, "depends_on", dock)
    estate.rel(switch, "connected_to", router)
    return {"headers": make.headers(user=requester), "laptop": laptop, "dock": dock, "switch": switch,
            "router": router}  # fmt: skip


def test_requesters_see_through_the_cache_only_what_they_saw_before(client, admin, requester_site):
    s = requester_site
    url = f"/api/v1/cis/{s['laptop']}/dependencies"
    agent_view = client.get(url, headers=admin).json
    assert [i["ci"]["id"] for i in agent_view["impacted"]] == [s["dock"], s["switch"], s["router"]]
    before = _traversals()
    mine = client.get(url, headers=s["headers"])
    assert _traversals() == before  # the same answer, from the cache...
    hidden = {"id": None, "visible": False}
    # ... shown as before: the hidden CIs are placeholders, null on paths and as parents.
    assert [i["ci"] for i in mine.json["impacted"]] == [agent_view["impacted"][0]["ci"], hidden, hidden]
    assert [i["parent"] for i in mine.json["impacted"]] == [s["laptop"], s["laptop"], None]
    assert mine.json["impacted"][2]["path"] == [s["laptop"], None, None]
    assert "floor-switch" not in mine.get_data(as_text=True) and "core-router" not in mine.get_data(as_text=True)
    # A page puts the hidden CIs after the visible ones at their depth (their criticality stays unsaid).
    paged = client.get(url, headers=s["headers"], query_string={"page_size": 2}).json
    assert [i["ci"] for i in paged["impacted"]] == [agent_view["impacted"][0]["ci"], hidden]
    agent_page = client.get(url, headers=admin, query_string={"page_size": 2}).json
    assert [i["ci"]["id"] for i in agent_page["impacted"]] == [s["switch"], s["dock"]]
    # The summary counts them apart.
    summary = client.get(url, headers=s["headers"], query_string={"summary": "true"}).json["summary"]
    assert summary["hidden"] == {"down": 2, "degraded": 0}
    assert summary["by_class"] == [{"ci_class": "desktop", "down": 1, "degraded": 0}]
    assert summary["by_depth"] == [{"depth": 1, "down": 2, "degraded": 0}, {"depth": 2, "down": 1, "degraded": 0}]
    assert summary["by_team"] == [{"id": None, "name": None, "down": 1, "degraded": 0}]
    agent_summary = client.get(url, headers=admin, query_string={"summary": "true"}).json["summary"]
    assert agent_summary["hidden"] == {"down": 0, "degraded": 0} and len(agent_summary["by_class"]) == 3
    assert _traversals() == before


# ---------------------------------------------------------------------------------------------
# Bad input, the document


@pytest.mark.parametrize(
    "query, fields",
    [
        ({"page": 0}, {"page"}),
        ({"page": -1}, {"page"}),
        ({"page": "first"}, {"page"}),
        ({"page_size": 0}, {"page_size"}),
        ({"page_size": 5000}, {"page_size"}),
        ({"page_size": 1001}, {"page_size"}),
        ({"summary": "maybe"}, {"summary"}),
        ({"summary": "true", "page": 1}, {"page"}),
        ({"summary": "true", "page": 2, "page_size": 5}, {"page", "page_size"}),
    ],
)
def test_bad_paging_and_summary_parameters_are_422(client, admin, site, query, fields):
    for path in (f"/api/v1/cis/{site['sw']}/impact", f"/api/v1/cis/{site['sw']}/dependencies"):
        r = client.get(path, headers=admin, query_string=query)
        assert r.status_code == 422 and r.mimetype == PROBLEM_JSON, r.get_data(as_text=True)
        assert set(r.json["errors"]) == fields


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"summary": "yes"}, "summary"),
        ({"summary": 1}, "summary"),
        ({"page": 0}, "page"),
        ({"page": "1"}, "page"),
        ({"page_size": 5000}, "page_size"),
        ({"page_size": 2.5}, "page_size"),
        ({"summary": True, "page_size": 10}, "page_size"),
    ],
)
def test_bad_paging_and_summary_fields_are_422(client, admin, site, extra, field):
    r = client.post("/api/v1/impact", json={"ci_ids": [site["sw"]], **extra}, headers=admin)
    assert r.status_code == 422 and r.mimetype == PROBLEM_JSON, r.get_data(as_text=True)
    assert field in r.json["errors"]


def test_the_document_describes_summary_pages_and_parents(spec):
    for path in ("/api/v1/cis/{ci_id}/impact", "/api/v1/cis/{ci_id}/dependencies"):
        operation = spec["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert {"summary", "page", "page_size"} <= set(params)
        assert params["page_size"]["schema"]["maximum"] == 1000 and params["page"]["schema"]["minimum"] == 1
        assert "X-Pagination" in operation["responses"]["200"]["headers"]
    body = spec["paths"]["/api/v1/impact"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert {"summary", "page", "page_size"} <= set(body["properties"])
    schemas = spec["components"]["schemas"]
    assert "parent" in schemas["ImpactItem"]["properties"]
    assert schemas["ImpactItem"]["properties"]["parent"]["description"]
    summary = schemas["ImpactSummary"]["properties"]
    assert set(summary) == {"by_class", "by_team", "by_business_service", "by_depth", "open_incidents", "hidden"}


def test_a_tickets_impact_items_carry_their_parent_too(client, admin, site):
    body = {"kind": "change", "title": "replace the switch", "ci_ids": [site["sw"]], "impact": 2, "urgency": 2}
    change = client.post("/api/v1/tickets", json=body, headers=admin).json
    answer = client.get(f"/api/v1/tickets/{change['id']}/impact", headers=admin).json
    assert answer["count"] == 9 and all(i["parent"] == i["path"][-2] for i in answer["impacted"])


# ---------------------------------------------------------------------------------------------
# Huge answers: no query may bind one parameter per CI of the answer

STAR = 40_000
OLD_SQLITE_VARIABLES = 999  # SQLITE_MAX_VARIABLE_NUMBER before SQLite 3.32 (32,766 since)
CRITICALITIES = ("low", "medium", "high", "critical")


@contextmanager
def _bound_parameters_at_most(db, limit: int):
    """While inside, on SQLite, a statement may bind at most ``limit`` parameters (as in an old
    build): a query binding one per CI of a 40,000-CI answer fails. Nothing changes on PostgreSQL."""
    if db.session.get_bind().dialect.name != "sqlite":
        yield
        return
    raw = db.session.connection().connection.dbapi_connection
    before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    try:
        with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
            raw.execute(f"SELECT 1 WHERE 1 IN ({','.join('?' * (limit + 1))})", [1] * (limit + 1))
        yield
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


@pytest.fixture
def star(db, make, client, admin):
    """A hub switch and 40,000 CIs that depend on it, as rows inserted in bulk (seconds, not 40,000
    API calls; no change-log rows): leaf n is a business service when n % 10,000 == 0, else a
    server; its criticality cycles low, medium, high, critical; its owning team Star A, Star B,
    none. A requester is assigned the hub and the leaves n % 1,000 == 7, and has an incident on
    leaf 7; an agent has one on leaf 8; an admin's change is on the hub."""
    from sqlalchemy import insert, select

    from cmdb.models import ConfigurationItem
    from relations.graph import bump_version, forget_graphs
    from relations.models import Relationship

    requester = make.user("requester")
    teams = [make.team(name="Star A").id, make.team(name="Star B").id, None]
    hub = make.ci("network_switch", name="star-hub", criticality="critical", assigned_to_id=requester.id).id
    now = utcnow()
    rows = [
        {
            "name": f"leaf-{n:05d}", "ci_class": "business_service" if n % 10_000 == 0 else "server",
            "status": "deployed", "criticality": CRITICALITIES[n % 4], "owner_team_id": teams[n % 3],
            "assigned_to_id": requester.id if n % 1000 == 7 else None, "vendor": "", "description": "",
            "version": 1, "created_at": now, "updated_at": now, "attributes": {},
        }
        for n in range(STAR)
    ]  # fmt: skip
    table = ConfigurationItem.__table__
    db.session.execute(insert(table), rows)
    leaves = list(db.session.scalars(select(table.c.id).where(table.c.name.like("leaf-%")).order_by(table.c.id)))
    services.relationship_types()  # the built-in types' rows, which relationships refer to
    links = [
        {"source_id": leaf, "target_id": hub, "type": "depends_on", "note": "", "valid_from": now, "valid_to": None,
         "version": 1, "created_at": now, "updated_at": now}
        for leaf in leaves
    ]  # fmt: skip
    db.session.execute(insert(Relationship.__table__), links)
    bump_version(db.session.connection())
    db.session.commit()
    # Written past the change log the graph follows: the next question builds the graph afresh.
    forget_graphs()
    headers = make.headers(user=requester)

    def ticket(kind, ci_id, title, headers):
        body = {"kind": kind, "title": title, "ci_ids": [ci_id], "impact": 2, "urgency": 2}
        r = client.post("/api/v1/tickets", json=body, headers=headers)
        assert r.status_code == 201, r.json
        return r.json["id"]

    return {
        "hub": hub,
        "leaves": leaves,
        "teams": teams,
        "requester": requester,
        "headers": headers,
        "own_incident": ticket("incident", leaves[7], "my server is down", headers),
        "agent_incident": ticket("incident", leaves[8], "leaf 8 is down", make.headers("agent")),
        "change": ticket("change", hub, "replace the hub", admin),
    }


def _ids(items) -> list:
    return [i["ci"]["id"] for i in items]


def test_an_answer_of_40000_cis_asks_the_database_in_bounded_queries(client, admin, db, star):
    """Summary, pages and the ticket's impact of a CI 40,000 others depend on, for staff and for a
    requester who may see 40 of them, with SQLite allowing only 999 parameters per statement."""
    from tickets import graph
    from tickets.models import Ticket

    hub, leaves, teams = star["hub"], star["leaves"], star["teams"]
    url, ticket_url = f"/api/v1/cis/{hub}/impact", f"/api/v1/tickets/{star['change']}/impact"
    by_rank = [leaves[n] for c in (3, 2, 1, 0) for n in range(c, STAR, 4)]  # depth 1, critical first, by id
    services_ = [leaves[n] for n in range(0, STAR, 10_000)]
    mine = [n for n in range(STAR) if n % 1000 == 7]
    with _bound_parameters_at_most(db, OLD_SQLITE_VARIABLES):
        # Staff: the summary...
        r = client.get(url, headers=admin, query_string={"summary": "true"})
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        body = r.json
        assert (body["count"], body["down"], body["degraded"]) == (STAR, STAR, 0)
        assert body["business_services"] == services_ and body["owner_team_ids"] == sorted(teams[:2])
        summary = body["summary"]
        assert summary["by_depth"] == [{"depth": 1, "down": STAR, "degraded": 0}]
        assert summary["by_class"] == [{"ci_class": "server", "down": STAR - 4, "degraded": 0},
                                       {"ci_class": "business_service", "down": 4, "degraded": 0}]  # fmt: skip
        team_counts = Counter(teams[n % 3] for n in range(STAR))
        assert {e["id"]: e["down"] for e in summary["by_team"]} == team_counts
        assert [e["id"] for e in summary["by_business_service"]] == services_
        assert [(e["id"], [i["id"] for i in e["incidents"]]) for e in summary["open_incidents"]] == [
            (leaves[7], [star["own_incident"]]), (leaves[8], [star["agent_incident"]])
        ]  # fmt: skip
        assert {t["id"] for t in body["open_tickets"]} == {star["own_incident"], star["agent_incident"], star["change"]}
        # ... a page ...
        r = client.get(url, headers=admin, query_string={"page": 3, "page_size": 1000})
        assert r.status_code == 200 and _ids(r.json["impacted"]) == by_rank[2000:3000]
        assert json.loads(r.headers["X-Pagination"]) == {"total": STAR, "total_pages": 40, "first_page": 1,
                                                         "last_page": 40, "page": 3, "previous_page": 2,
                                                         "next_page": 4}  # fmt: skip
        # ... and the change's impact: the same summary, its pages, its whole list.
        r = client.get(ticket_url, headers=admin, query_string={"summary": "true"})
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        assert r.json["summary"] == summary and r.json["ticket_id"] == star["change"]
        assert {k: v for k, v in r.json.items() if k != "ticket_id"} == {k: v for k, v in body.items() if k != "root"}
        r = client.get(ticket_url, headers=admin, query_string={"page": 40, "page_size": 1000})
        assert r.status_code == 200 and _ids(r.json["impacted"]) == by_rank[39_000:]
        assert json.loads(r.headers["X-Pagination"]) == {"total": STAR, "total_pages": 40, "first_page": 1,
                                                         "last_page": 40, "page": 40, "previous_page": 39}  # fmt: skip
        whole = client.get(ticket_url, headers=admin)
        assert whole.status_code == 200 and _ids(whole.json["impacted"]) == leaves
        assert whole.json["hidden_open_tickets"] == 0 and len(whole.json["open_tickets"]) == 3

        # A requester: the hub and 40 leaves are its own; the other 39,960 are counted, not shown.
        headers = star["headers"]
        r = client.get(url, headers=headers, query_string={"summary": "true"})
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        seen = r.json
        assert (seen["count"], seen["down"]) == (STAR, STAR)
        assert seen["business_services"] == [] and seen["owner_team_ids"] == sorted(
            {teams[n % 3] for n in mine} - {None}
        )
        summary = seen["summary"]
        assert summary["hidden"] == {"down": STAR - len(mine), "degraded": 0}
        assert summary["by_class"] == [{"ci_class": "server", "down": len(mine), "degraded": 0}]
        assert {e["id"]: e["down"] for e in summary["by_team"]} == Counter(teams[n % 3] for n in mine)
        assert summary["by_depth"] == [{"depth": 1, "down": STAR, "degraded": 0}]
        assert summary["by_business_service"] == []
        assert [e["id"] for e in summary["open_incidents"]] == [leaves[7]]
        assert [t["id"] for t in seen["open_tickets"]] == [star["own_incident"]]
        assert seen["hidden_open_tickets"] == 2
        hidden = {"id": None, "visible": False}
        r = client.get(url, headers=headers, query_string={"page_size": 50})
        assert r.status_code == 200 and json.loads(r.headers["X-Pagination"])["total_pages"] == STAR // 50
        page = r.json["impacted"]
        assert _ids(page[:40]) == [leaves[n] for n in mine] and [i["ci"] for i in page[40:]] == [hidden] * 10
        last = client.post("/api/v1/impact", json={"ci_ids": [hub], "page": STAR // 50, "page_size": 50},
                           headers=headers)  # fmt: skip
        assert last.status_code == 200 and [i["ci"] for i in last.json["impacted"]] == [hidden] * 50
        assert "leaf-" not in last.get_data(as_text=True)
        # The ticket route is for staff; the ticket's answer for the requester is its CI's.
        assert client.get(ticket_url, headers=headers, query_string={"summary": "true"}).status_code == 403
        change = db.session.get(Ticket, star["change"])
        theirs = graph.impact_of_ticket(change, viewer=star["requester"], summary=True)
        assert theirs["summary"] == summary and theirs["hidden_open_tickets"] == 2
        paged = graph.impact_of_ticket(change, viewer=star["requester"], page=1, page_size=50)
        assert paged["impacted"] == page
