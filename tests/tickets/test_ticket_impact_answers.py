"""GET /tickets/{id}/impact answers as GET /cis/{id}/impact and POST /impact do: the whole list, a
page of it (page, page_size, X-Pagination) or its summary, from the same shared traversal, with
the ticket's own `ticket_id`; a ticket without CIs has an answer of the same shape."""

from __future__ import annotations

import json

import pytest

from cairn.errors import PROBLEM_JSON
from relations import answers
from tests.openapi import assert_documented

RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# What a ticket's answer has that POST /impact's for the same CIs has not.
OWN = {"ticket_id"}


@pytest.fixture(scope="module")
def spec(app):
    with app.test_client() as c:
        return c.get("/api/v1/openapi.json").json


@pytest.fixture
def site(db, make, client, admin):
    """Two switches a change replaces together; what hangs off them:

    sw1 (critical) <- s1 (critical, team A), s2 (low);  sw2 <- s3 (high, team B)
    cluster (min 1 up) has members s1, s2, s4 (s4 on neither switch): degraded
    vm runs on the cluster <- app2 (team A) <- svc_b;   app1 (team A) runs on s3 <- svc_a
    A requester has a laptop that needs s3 and a dock, and an incident of its own on the laptop.
    """
    from relations.services import create_relationship

    team_a, team_b = make.team(name="Team A"), make.team(name="Team B")
    requester = make.user("requester")
    ids = {
        "sw1": make.ci("network_switch", name="sw1", criticality="critical").id,
        "sw2": make.ci("network_switch", name="sw2").id,
        "s1": make.ci("server", name="s1", criticality="critical", owner_team_id=team_a.id).id,
        "s2": make.ci("server", name="s2", criticality="low").id,
        "s3": make.ci("server", name="s3", criticality="high", owner_team_id=team_b.id).id,
        "s4": make.ci("server", name="s4").id,
        "cluster": make.ci("cluster", name="cluster", attributes={"min_members_up": 1}).id,
        "vm": make.ci("virtual_machine", name="vm").id,
        "app1": make.ci("application", name="app1", owner_team_id=team_a.id).id,
        "app2": make.ci("application", name="app2", owner_team_id=team_a.id).id,
        "svc_a": make.ci("business_service", name="svc-a", criticality="critical").id,
        "svc_b": make.ci("business_service", name="svc-b", criticality="low").id,
        "laptop": make.ci("laptop", name="my-laptop", assigned_to_id=requester.id).id,
        "dock": make.ci("desktop", name="my-dock", criticality="low", assigned_to_id=requester.id).id,
    }
    edges = [
        ("s1", "connected_to", "sw1"), ("s2", "connected_to", "sw1"), ("s3", "connected_to", "sw2"),
        ("s1", "member_of", "cluster"), ("s2", "member_of", "cluster"), ("s4", "member_of", "cluster"),
        ("vm", "runs_on", "cluster"), ("app2", "runs_on", "vm"), ("svc_b", "uses", "app2"),
        ("app1", "runs_on", "s3"), ("svc_a", "uses", "app1"),
        ("laptop", "depends_on", "s3"), ("laptop", "depends_on", "dock"),
    ]  # fmt: skip
    for source, type_, target in edges:
        create_relationship({"source_id": ids[source], "type": type_, "target_id": ids[target]})
    db.session.commit()
    ids["requester"] = requester
    ids["requester_headers"] = make.headers(user=requester)

    def ticket(kind, ci_ids, title, headers=admin):
        body = {"kind": kind, "title": title, "ci_ids": ci_ids, "impact": 2, "urgency": 2}
        r = client.post("/api/v1/tickets", json=body, headers=headers)
        assert r.status_code == 201, r.json
        return r.json["id"]

    ids["inc_s1"] = ticket("incident", [ids["s1"]], "s1 is down")
    ids["inc_app1"] = ticket("incident", [ids["app1"]], "app1 errors")
    ids["own_inc"] = ticket("incident", [ids["laptop"]], "my laptop is slow", headers=ids["requester_headers"])
    ids["change"] = ticket("change", [ids["sw1"], ids["sw2"]], "replace both switches")
    ids["laptop_change"] = ticket("change", [ids["laptop"], ids["dock"]], "replace the laptop and its dock")
    ids["no_cis"] = ticket("change", [], "paperwork")
    return ids


def _url(ticket_id: int) -> str:
    return f"/api/v1/tickets/{ticket_id}/impact"


def _rank(item) -> tuple:
    return item["depth"], RANK[item["ci"]["criticality"]], item["ci"]["id"]


def _without(body: dict, keys) -> dict:
    return {k: v for k, v in body.items() if k not in keys}


def test_the_whole_answer_is_post_impact_of_the_tickets_cis_with_its_id(client, admin, site, spec):
    r = client.get(_url(site["change"]), headers=admin)
    assert r.status_code == 200 and "X-Pagination" not in r.headers
    assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", r)
    body = r.json
    assert body["ticket_id"] == site["change"] and body["roots"] == [site["sw1"], site["sw2"]]
    assert "root" not in body and "summary" not in body
    assert (body["count"], body["down"], body["degraded"]) == (10, 6, 4)
    posted = client.post("/api/v1/impact", json={"ci_ids": body["roots"]}, headers=admin)
    assert _without(body, OWN) == posted.json
    assert all(i["parent"] == i["path"][-2] for i in body["impacted"])


def test_summary_equals_the_summary_of_its_cis(client, admin, site, spec):
    r = client.get(_url(site["change"]), headers=admin, query_string={"summary": "true"})
    assert r.status_code == 200, r.json
    assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", r)
    body = r.json
    assert "impacted" not in body and body["ticket_id"] == site["change"]
    posted = client.post("/api/v1/impact", json={"ci_ids": [site["sw1"], site["sw2"]], "summary": True}, headers=admin)
    assert posted.status_code == 200
    assert _without(body, OWN) == posted.json
    summary = body["summary"]
    full = client.get(_url(site["change"]), headers=admin).json
    assert sum(e["down"] + e["degraded"] for e in summary["by_class"]) == full["count"]
    assert summary["by_depth"][0] == {"depth": 1, "down": 3, "degraded": 0}
    assert {e["id"] for e in summary["by_business_service"]} == {site["svc_a"], site["svc_b"]}
    incidents = {e["id"]: [t["id"] for t in e["incidents"]] for e in summary["open_incidents"]}
    assert incidents == {site["s1"]: [site["inc_s1"]], site["app1"]: [site["inc_app1"]],
                         site["laptop"]: [site["own_inc"]]}  # fmt: skip
    assert summary["hidden"] == {"down": 0, "degraded": 0}
    # The open tickets: the change itself is one (it is on the roots), as in the whole answer.
    assert site["change"] in {t["id"] for t in body["open_tickets"]}
    assert body["open_tickets"] == full["open_tickets"]


def test_one_traversal_for_the_ticket_and_its_cis(client, admin, site):
    before = answers.stats()["traversals"]
    assert client.get(_url(site["change"]), headers=admin).status_code == 200
    walked = answers.stats()["traversals"]
    assert walked <= before + 1  # none when the change's risk, worked out when it was opened, walked already
    for query in ({"summary": "true"}, {"page": 2, "page_size": 3}, {}):
        assert client.get(_url(site["change"]), headers=admin, query_string=query).status_code == 200
    posted = client.post("/api/v1/impact", json={"ci_ids": [site["sw1"], site["sw2"]], "page": 1}, headers=admin)
    assert posted.status_code == 200
    assert answers.stats()["traversals"] == walked


def test_pages_concatenated_are_the_whole_list_in_page_order(client, admin, site, spec):
    url = _url(site["change"])
    full = client.get(url, headers=admin).json
    expected = sorted(full["impacted"], key=_rank)
    assert expected != full["impacted"]  # criticality reorders: the test tells the orders apart
    pages, page = [], 1
    while True:
        r = client.get(url, headers=admin, query_string={"page": page, "page_size": 4})
        assert r.status_code == 200, r.json
        assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", r)
        meta = json.loads(r.headers["X-Pagination"])
        assert r.json["ticket_id"] == site["change"]
        assert (r.json["count"], r.json["down"], r.json["degraded"]) == (full["count"], full["down"], full["degraded"])
        assert r.json["business_services"] == full["business_services"]
        if page == 4:
            assert r.json["impacted"] == [] and meta == {"total": 10, "total_pages": 3, "first_page": 1,
                                                          "last_page": 3}  # fmt: skip
            break
        expected_meta = {"total": 10, "total_pages": 3, "first_page": 1, "last_page": 3, "page": page}
        if page > 1:
            expected_meta["previous_page"] = page - 1
        if page < 3:
            expected_meta["next_page"] = page + 1
        assert meta == expected_meta
        pages += r.json["impacted"]
        page += 1
    assert pages == expected
    # Either parameter alone asks for a page, the other defaulted (page 1, 50 items).
    only_size = client.get(url, headers=admin, query_string={"page_size": 3})
    assert only_size.json["impacted"] == expected[:3] and json.loads(only_size.headers["X-Pagination"])["page"] == 1
    only_page = client.get(url, headers=admin, query_string={"page": 1})
    assert only_page.json["impacted"] == expected
    assert json.loads(only_page.headers["X-Pagination"]) == {"total": 10, "total_pages": 1, "first_page": 1,
                                                             "last_page": 1, "page": 1}  # fmt: skip
    # A page shows the open tickets of its own CIs and of the roots.
    first = client.get(url, headers=admin, query_string={"page_size": 1}).json
    assert first["impacted"][0]["ci"]["id"] == site["s1"]
    assert {t["id"] for t in first["open_tickets"]} == {site["inc_s1"], site["change"]}
    # The ticket's other parameters still hold, with pages too.
    near = client.get(url, headers=admin, query_string={"max_depth": 1, "page": 1, "page_size": 2})
    assert near.status_code == 200 and near.json["count"] == 3 and len(near.json["impacted"]) == 2
    then = client.get(url, headers=admin, query_string={"as_of": "2020-01-01T00:00:00Z", "summary": "true"})
    assert then.status_code == 200 and then.json["count"] == 0 and then.json["as_of"].startswith("2020-01-01")


@pytest.mark.parametrize(
    "query, fields",
    [
        ({"summary": "true", "page": 1}, {"page"}),
        ({"summary": "true", "page_size": 10}, {"page_size"}),
        ({"summary": "true", "page": 2, "page_size": 5}, {"page", "page_size"}),
        ({"page": 0}, {"page"}),
        ({"page": "first"}, {"page"}),
        ({"page_size": 1001}, {"page_size"}),
        ({"summary": "maybe"}, {"summary"}),
        ({"max_depth": 0}, {"max_depth"}),
        ({"pagesize": 10}, {"pagesize"}),
    ],
)
def test_bad_paging_and_summary_parameters_are_422(client, admin, site, spec, query, fields):
    r = client.get(_url(site["change"]), headers=admin, query_string=query)
    assert r.status_code == 422 and r.mimetype == PROBLEM_JSON, r.get_data(as_text=True)
    assert set(r.json["errors"]) == fields
    assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", r)


def test_a_ticket_without_cis_has_an_empty_answer_of_the_same_shape(client, admin, site, spec):
    url = _url(site["no_cis"])
    whole = client.get(url, headers=admin)
    assert whole.status_code == 200
    assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", whole)
    assert whole.json == {"roots": [], "count": 0, "down": 0, "degraded": 0, "impacted": [], "business_services": [],
                          "owner_team_ids": [], "graph_version": whole.json["graph_version"], "open_tickets": [],
                          "hidden_open_tickets": 0, "ticket_id": site["no_cis"]}  # fmt: skip
    assert isinstance(whole.json["graph_version"], int)
    summary = client.get(url, headers=admin, query_string={"summary": "true"})
    assert summary.status_code == 200
    assert_documented(spec, "/api/v1/tickets/{ticket_id}/impact", "get", summary)
    assert summary.json["summary"] == {"by_class": [], "by_team": [], "by_depth": [], "by_business_service": [],
                                       "open_incidents": [], "hidden": {"down": 0, "degraded": 0}}  # fmt: skip
    paged = client.get(url, headers=admin, query_string={"page": 2, "page_size": 10})
    assert paged.status_code == 200 and paged.json["impacted"] == []
    assert json.loads(paged.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}
    assert client.get(url, headers=admin, query_string={"summary": "true", "page": 1}).status_code == 422


def test_a_requester_sees_only_what_it_may(client, admin, site):
    """The route is for staff: a requester is 403, also on its own ticket. The answer itself, asked
    for a restricted viewer, is what relations shows that viewer for the same CIs: the CIs it may
    not see are placeholders (null on paths and as parents), counted apart in the summary, and the
    open tickets it may not see are only counted."""
    from cairn.db import db
    from relations.services import impact_answer
    from tickets import graph
    from tickets.models import Ticket

    headers, requester = site["requester_headers"], site["requester"]
    for ticket_id in (site["own_inc"], site["change"]):
        for query in ({}, {"summary": "true"}, {"page_size": 1}):
            r = client.get(_url(ticket_id), headers=headers, query_string=query)
            assert r.status_code == 403 and r.mimetype == PROBLEM_JSON
    ticket = db.session.get(Ticket, site["change"])
    staff = client.get(_url(site["change"]), headers=admin).json
    hidden = {"id": None, "visible": False}
    foreign = ("sw1", "sw2", "s1", "s3", "app1", "svc-a", "svc-b", "Team A", "Team B", "s1 is down", "app1 errors",
               "replace both switches")  # fmt: skip
    for asked in ({}, {"summary": True}, {"page": 1, "page_size": 4}, {"page": 2, "page_size": 4}):
        mine = json.loads(client.application.json.dumps(graph.impact_of_ticket(ticket, viewer=requester, **asked)))
        same = impact_answer([site["sw1"], site["sw2"]], single_root=False, viewer=requester, **asked)
        assert _without(mine, OWN) == json.loads(client.application.json.dumps(same))
        assert mine["ticket_id"] == site["change"] and mine["roots"] == [None, None]
        assert (mine["count"], mine["down"], mine["degraded"]) == (staff["count"], staff["down"], staff["degraded"])
        assert mine["business_services"] == [] and mine["owner_team_ids"] == []
        # Its own incident (shown with its laptop only); the change, the other incidents and the
        # change of its laptop (an agent's) counted.
        assert [(t["id"], t["ci_ids"]) for t in mine["open_tickets"]] in ([], [(site["own_inc"], [site["laptop"]])])
        text = json.dumps(mine)
        for name in foreign:
            assert f'"{name}"' not in text, (asked, name)
    whole = graph.impact_of_ticket(ticket, viewer=requester)
    shown = [i for i in whole["impacted"] if i["ci"] != hidden]
    assert [i["ci"]["id"] for i in shown] == [site["laptop"]] and shown[0]["path"] == [None, None, site["laptop"]]
    assert shown[0]["parent"] is None  # s3
    assert len(whole["impacted"]) == staff["count"]
    assert [t["id"] for t in whole["open_tickets"]] == [site["own_inc"]] and whole["hidden_open_tickets"] == 4
    summary = graph.impact_of_ticket(ticket, viewer=requester, summary=True)["summary"]
    assert summary["hidden"] == {"down": staff["down"] - 1, "degraded": staff["degraded"]}
    assert summary["by_class"] == [{"ci_class": "laptop", "down": 1, "degraded": 0}]
    assert summary["by_business_service"] == []
    assert [(e["id"], [i["id"] for i in e["incidents"]]) for e in summary["open_incidents"]] == [
        (site["laptop"], [site["own_inc"]])
    ]
    # A page puts what it may not see after what it sees at the same depth.
    page = graph.impact_of_ticket(ticket, viewer=requester, page=1, page_size=5)["impacted"]
    assert [(i["depth"], i["ci"].get("name")) for i in page] == [(1, None)] * 3 + [(2, "my-laptop"), (2, None)]


def test_the_document_describes_the_tickets_summary_and_pages(spec):
    operation = spec["paths"]["/api/v1/tickets/{ticket_id}/impact"]["get"]
    params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(params) == {"summary", "page", "page_size", "max_depth", "as_of"}
    assert params["page_size"]["schema"]["maximum"] == 1000 and params["page"]["schema"]["minimum"] == 1
    assert params["summary"]["schema"]["type"] == "boolean" and params["summary"]["description"]
    assert operation["responses"]["200"]["headers"]["X-Pagination"] == {"$ref": "#/components/headers/PAGINATION"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    answer = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"ticket_id", "summary", "impacted", "count", "open_tickets", "hidden_open_tickets"} <= set(answer)
    assert "root" not in answer and "inactive" not in answer
    assert answer["summary"] == {"$ref": "#/components/schemas/ImpactSummary"}
