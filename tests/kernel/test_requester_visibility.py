"""A requester sees only its own tickets and the CIs assigned to it, also inside answers that embed
other objects (links, a ticket's CIs, impact, dependencies, graphs and their exports, open tickets on
impact answers): every GET a requester may call is walked from the URL map over an estate where its
laptop and ticket are tied to another requester's laptop, a core switch and an agent's ticket, and
nothing foreign may come back. A 404 reads the same whether the object does not exist or may not be
seen, and never names an internal id the caller did not send."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

import pytest

from cairn.auth.guard import PUBLIC, SESSION_ATTR, declared_roles
from cairn.auth.roles import REQUESTER

NOWHERE = 987654321  # an id nothing has (in the database range)


@dataclass
class Estate:
    me: object
    headers: dict
    agent_headers: dict
    ids: dict = field(default_factory=dict)  # name -> id of what the requester may see
    foreign_cis: dict = field(default_factory=dict)  # name -> id
    foreign_tickets: dict = field(default_factory=dict)  # number -> id
    foreign_text: list = field(default_factory=list)  # names, titles, numbers, addresses


def _ok(response, status=(200, 201)):
    assert response.status_code in ((status,) if isinstance(status, int) else status), response.get_data(as_text=True)
    return response.json


@pytest.fixture
def estate(client, make, db):
    from relations.services import create_relationship

    me = make.user(REQUESTER, email="rita.requester@example.com", name="Rita Requester")
    other = make.user(REQUESTER, email="olga.other@example.com", name="Olga Otherperson")
    agent = make.user("agent", email="adam.agent@example.com", name="Adam Agent")
    headers, agent_headers = make.headers(user=me), make.headers(user=agent)
    team = make.team("Network Team", members=[agent])
    site = make.location("Main Site")

    mine = make.ci("laptop", name="rita-laptop", asset_tag="AST-RITA-1", assigned_to_id=me.id, location_id=site.id,
                   external_ids=[{"source": "inventory", "external_id": "rita-1"}])  # fmt: skip
    theirs = make.ci("laptop", name="olga-laptop-zq", asset_tag="AST-OLGA-1", assigned_to_id=other.id,
                     external_ids=[{"source": "inventory", "external_id": "olga-1"}])  # fmt: skip
    switch = make.ci("network_switch", name="core-sw-01", asset_tag="NET-0001", criticality="critical",
                     owner_team_id=team.id, external_ids=[{"source": "inventory", "external_id": "sw-1"}])  # fmt: skip
    app = make.ci("application", name="payroll-agent-app")
    service = make.ci("business_service", name="payroll-service-zq", criticality="critical")
    printer = make.ci("printer", name="retired-printer-zq", status="retired")
    for source, target in ((mine, switch), (theirs, switch), (app, mine), (service, app), (printer, mine)):
        create_relationship({"source_id": source.id, "type": "depends_on", "target_id": target.id})
    db.session.commit()

    agents_ticket = _ok(client.post("/api/v1/tickets", headers=agent_headers, json={
        "kind": "incident", "title": "Core switch flapping zqagent", "impact": 1, "urgency": 1,
        "ci_ids": [switch.id, mine.id], "external_ids": [{"source": "portal", "id": "AT-1"}]}))  # fmt: skip
    others_ticket = _ok(client.post("/api/v1/tickets", headers=agent_headers, json={
        "kind": "incident", "title": "Olga laptop broken zqolga", "requester_id": other.id,
        "ci_ids": [theirs.id, switch.id], "external_ids": [{"source": "portal", "id": "OT-1"}]}))  # fmt: skip
    # The requester's own ticket, on its laptop; an agent adds the switch and links it to the others'.
    own = _ok(client.post("/api/v1/tickets", headers=headers, json={
        "kind": "incident", "title": "My laptop is slow", "ci_ids": [mine.id]}))  # fmt: skip
    _ok(client.patch(f"/api/v1/tickets/{own['id']}", headers=agent_headers,
                     json={"external_ids": [{"source": "portal", "id": "MY-1"}]}))  # fmt: skip
    _ok(client.post(f"/api/v1/tickets/{own['id']}/cis", headers=agent_headers, json={"ci_id": switch.id}))
    _ok(client.post(f"/api/v1/tickets/{own['id']}/links", headers=agent_headers,
                    json={"ticket_id": agents_ticket["id"], "type": "related"}))  # fmt: skip
    _ok(client.post(f"/api/v1/tickets/{others_ticket['id']}/links", headers=agent_headers,
                    json={"ticket_id": own["id"], "type": "duplicate_of"}))  # fmt: skip
    _ok(client.post(f"/api/v1/tickets/{own['id']}/comments", headers=agent_headers,
                    json={"body": "Looking at it.", "internal": False}))  # fmt: skip
    _ok(client.post(f"/api/v1/tickets/{own['id']}/comments", headers=agent_headers,
                    json={"body": "zqnote: same as the switch outage", "internal": True}))  # fmt: skip

    def attach(ticket_id, who):
        return _ok(client.post(f"/api/v1/tickets/{ticket_id}/attachments", headers=who,
                               data={"file": (io.BytesIO(b"log line\n"), "log.txt", "text/plain")},
                               content_type="multipart/form-data"))  # fmt: skip

    own_file = attach(own["id"], headers)
    foreign_file = attach(agents_ticket["id"], agent_headers)

    e = Estate(me, headers, agent_headers)
    e.ids = {"ci": mine.id, "ticket": own["id"], "attachment": own_file["id"], "location": site.id,
             "team": team.id, "switch": switch.id}  # fmt: skip
    e.foreign_cis = {c.name: c.id for c in (theirs, switch, app, service, printer)}
    e.foreign_tickets = {t["number"]: t["id"] for t in (agents_ticket, others_ticket)}
    e.foreign_text = [
        *e.foreign_cis, "NET-0001", "AST-OLGA-1", "olga-1", "sw-1", "AT-1", "OT-1",
        *(t["title"] for t in (agents_ticket, others_ticket)), *e.foreign_tickets,
        other.email, other.name, "zqnote",
    ]  # fmt: skip
    e.ids["foreign_attachment"] = foreign_file["id"]
    view = _ok(client.post("/api/v1/views", headers=headers, json={"name": "mine", "resource": "tickets"}))
    e.ids["view"] = view["id"]
    from tickets.categories import create_category

    e.ids["category"] = create_category({"name": "hardware", "label": "Hardware", "kind": "incident"}).id
    db.session.commit()

    # A help article for everyone, and the requester's own catalogue order (an agent approves it).
    admin = make.headers("admin")
    article = _ok(client.post("/api/v1/articles", headers=admin, json={
        "title": "Reset your VPN token", "body": "Open the portal.", "visibility": "everyone"}))  # fmt: skip
    for state in ("review", "published"):
        _ok(client.patch(f"/api/v1/articles/{article['id']}", headers=admin, json={"state": state}))
    _ok(client.put(f"/api/v1/tickets/{own['id']}/resolution-article", headers=agent_headers,
                   json={"article_id": article["id"]}))  # fmt: skip
    item = _ok(client.post("/api/v1/catalogue-items", headers=admin, json={
        "name": "Headset", "approval_steps": [{"kind": "user", "user_id": agent.id}],
        "tasks": [{"title": "Send it", "team_id": team.id}]}))  # fmt: skip
    order = _ok(client.post(f"/api/v1/catalogue-items/{item['id']}/orders", headers=headers, json={}))
    (line,) = order["items"]
    e.ids.update(article=article["id"], item=item["id"], order=order["id"], request_item=line["id"],
                 step=line["approvals"][0]["id"], task=line["tasks"][0]["id"])  # fmt: skip
    return e


# ---------------------------------------------------------------------------------------------
# What counts as foreign in an answer


CI_KEYS = {"ci_id", "ci_ids", "root", "roots", "path", "business_services", "shared_ci_ids", "direct_ci_ids", "cycle"}
TICKET_KEYS = {"ticket_id", "resolved_linked"}


def _ints(value):
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, str) and value.isdigit():
        return [int(value)]
    if isinstance(value, list):
        return [n for v in value for n in _ints(v)]
    return []


def foreign_ids(body, estate: Estate, key=None) -> list[str]:
    """Ids of foreign CIs or tickets in a JSON answer, found by what the keys and objects are."""
    cis, tickets = set(estate.foreign_cis.values()), set(estate.foreign_tickets.values())
    found = []
    if isinstance(body, list):
        for item in body:
            found += foreign_ids(item, estate, key)
    elif isinstance(body, dict):
        is_ci = "ci_class" in body or key == "ci"
        # a ticket's number is text (INC0000001); a step's or a line's number is a whole number
        is_ticket = (
            isinstance(body.get("number"), str)
            or key in ("ticket", "source", "target")
            and not isinstance(body.get("id"), str)
        )
        if is_ci and set(_ints(body.get("id"))) & cis:
            found.append(f"CI {body['id']} under {key!r}")
        if is_ticket and not is_ci and set(_ints(body.get("id"))) & tickets:
            found.append(f"ticket {body['id']} under {key!r}")
        link = "type" in body and "source_id" in body and "number" not in body
        for k, v in body.items():
            if k in CI_KEYS and set(_ints(v)) & cis:
                found.append(f"CI id in {k!r}: {v}")
            if (k in TICKET_KEYS or link and k in ("source_id", "target_id")) and set(_ints(v)) & tickets:
                found.append(f"ticket id in {k!r}: {v}")
            if k in ("source", "target") and isinstance(v, str) and set(_ints(v)) & cis:  # a graph's edge
                found.append(f"CI id in edge {k!r}: {v}")
            found += foreign_ids(v, estate, k)
    return found


def leaks(response, estate: Estate) -> list[str]:
    text = response.get_data(as_text=True)
    found = [f"{marker!r} in the answer" for marker in estate.foreign_text if marker.lower() in text.lower()]
    if response.is_json:
        found += foreign_ids(response.json, estate)
    else:  # DOT (n<id>), GraphML (id="n<id>"), CSV
        for ci_id in re.findall(r"\bn(\d+)\b", text):
            if int(ci_id) in estate.foreign_cis.values():
                found.append(f"node n{ci_id} in the text")
    return found


# ---------------------------------------------------------------------------------------------
# The walk


def _requester_routes(app):
    """Every GET route of the API a requester may call (by the roles its view declares); the web
    desk's pages are walked in tests/web."""
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or getattr(app.view_functions[rule.endpoint], SESSION_ATTR, False):
                continue
            roles = declared_roles(rule.endpoint, "GET")
            if roles not in (PUBLIC, None) and (REQUESTER in roles or "*" in roles):
                yield rule


# Extra query strings worth asking per route (the plain GET is always asked).
VARIANTS = {
    "/api/v1/cis": [{"format": "csv"}, {"q": "zq"}],
    "/api/v1/tickets": [{"ci_id": "{switch}"}, {"q": "zq"}],
    "/api/v1/cis/<int:ci_id>/graph": [{"format": "dot"}, {"format": "graphml"}, {"depth": 4}],
    "/api/v1/cis/<int:ci_id>/impact": [{"include_inactive": "true"}, {"summary": "true"}, {"page_size": 1}],
    "/api/v1/cis/<int:ci_id>/dependencies": [
        {"include_inactive": "true"},
        {"summary": "true"},
        {"page": 1, "page_size": 1},
        {"page": 2, "page_size": 1},
    ],
    # the foreign switch, the foreign people, everything with an "e"
    "/api/v1/search": [{"q": "core"}, {"q": "olga"}, {"q": "example"}, {"q": "INC"}, {"q": "zq"}],
}
# Routes that need a query parameter: only their variants are asked.
NEEDS_QUERY = {"/api/v1/search"}
# Path values per route for the parameters that are not plain ids.
EXTERNAL = {
    "/api/v1/cis/external/<string:source>/<path:external_id>": ("inventory", "rita-1"),
    "/api/v1/tickets/external/<string:source>/<path:external_id>": ("portal", "MY-1"),
}


def _path(rule, values: dict) -> str:
    def fill(match):
        name = match.group(1)
        assert name in values, f"{rule.rule}: add a value for <{name}> to this test's walk"
        return str(values[name])

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", fill, rule.rule)


def _own_values(rule, estate: Estate) -> dict:
    values = {"ci_id": estate.ids["ci"], "ticket_id": estate.ids["ticket"], "attachment_id": estate.ids["attachment"],
              "location_id": estate.ids["location"], "team_id": estate.ids["team"],
              "view_id": estate.ids["view"], "category_id": estate.ids["category"], "name": "laptop",
              "article_id": estate.ids["article"], "revision": 1, "item_id": estate.ids["item"],
              "request_item_id": estate.ids["request_item"], "step_id": estate.ids["step"],
              "task_id": estate.ids["task"]}  # fmt: skip
    if rule.rule.startswith("/api/v1/catalogue-orders/"):
        values["ticket_id"] = estate.ids["order"]  # an order is a ticket: the requester's own
    if rule.rule in EXTERNAL:
        values["source"], values["external_id"] = EXTERNAL[rule.rule]
    return values


def test_every_answer_a_requester_gets_shows_nothing_foreign(app, client, estate):
    problems, asked = [], 0
    for rule in _requester_routes(app):
        base = _path(rule, _own_values(rule, estate))
        for query in [*([] if rule.rule in NEEDS_QUERY else [{}]), *VARIANTS.get(rule.rule, [])]:
            query = {k: str(v).format(**estate.ids) for k, v in query.items()}
            response = client.get(base, headers=estate.headers, query_string=query)
            asked += 1
            if response.status_code != 200:
                problems.append(f"GET {base} {query}: {response.status_code} {response.get_data(as_text=True)[:200]}")
                continue
            problems += [f"GET {base} {query}: {leak}" for leak in leaks(response, estate)]
    # The one query that is a POST, and the answers to a requester's own writes.
    mine, own = estate.ids["ci"], estate.ids["ticket"]
    for url, body in (
        ("/api/v1/impact", {"ci_ids": [mine]}),
        ("/api/v1/impact", {"ci_ids": [mine], "direction": "dependencies", "include_inactive": True}),
        ("/api/v1/impact", {"ci_ids": [mine], "direction": "dependencies", "summary": True}),
        ("/api/v1/impact", {"ci_ids": [mine], "direction": "dependencies", "page_size": 1}),
        ("/api/v1/tickets", {"kind": "incident", "title": "again", "ci_ids": [mine]}),
        (f"/api/v1/tickets/{own}/comments", {"body": "any news?"}),
        (f"/api/v1/tickets/{own}/transitions", {"to": "canceled", "note": "works again"}),
    ):
        response = client.post(url, headers=estate.headers, json=body)
        asked += 1
        if response.status_code not in (200, 201):
            problems.append(f"POST {url}: {response.status_code} {response.get_data(as_text=True)[:200]}")
        problems += [f"POST {url} {body}: {leak}" for leak in leaks(response, estate)]
    assert asked > 25
    assert not problems, "\n".join(problems)


def test_foreign_objects_show_as_placeholders_and_counts(client, estate):
    """What the requester is told instead: a count, or {id: null, visible: false}."""
    own, mine, h = estate.ids["ticket"], estate.ids["ci"], estate.headers
    ticket = client.get(f"/api/v1/tickets/{own}", headers=h).json
    assert ticket["ci_ids"] == [mine] and ticket["hidden_ci_count"] == 1
    links = client.get(f"/api/v1/tickets/{own}/links", headers=h).json
    other_ends = {
        (link["type"], json.dumps(link["target" if link["source_id"] == own else "source"])) for link in links
    }
    placeholder = json.dumps({"id": None, "visible": False})
    assert other_ends == {("related", placeholder), ("duplicate_of", placeholder)}
    assert {(link["source_id"], link["target_id"]) for link in links} == {(own, None), (None, own)}
    cis = client.get(f"/api/v1/tickets/{own}/cis", headers=h).json
    assert sorted((c["ci_id"] or 0, c["ci"].get("visible", True)) for c in cis) == [(0, False), (mine, True)]
    deps = client.get(f"/api/v1/cis/{mine}/dependencies", headers=h).json
    assert deps["count"] == 1 and deps["impacted"][0]["ci"] == {"id": None, "visible": False}
    assert deps["impacted"][0]["path"] == [mine, None]
    # Its own ticket is on the laptop and the switch: shown with the laptop only; the two others counted.
    assert [(t["id"], t["ci_ids"]) for t in deps["open_tickets"]] == [(own, [mine])]
    assert deps["hidden_open_tickets"] == 2
    impact = client.get(f"/api/v1/cis/{mine}/impact", headers=h).json
    assert impact["count"] == 2 and impact["business_services"] == [] and impact["owner_team_ids"] == []
    assert [t["id"] for t in impact["open_tickets"]] == [own]
    assert impact["hidden_open_tickets"] == 1  # the agent's ticket is on the laptop too
    graph = client.get(f"/api/v1/cis/{mine}/graph", headers=h, query_string={"depth": 3}).json
    assert [n["data"]["id"] for n in graph["elements"]["nodes"]] == [str(mine)] and graph["hidden_nodes"] == 5
    # An agent still sees everything.
    agent_deps = client.get(f"/api/v1/cis/{mine}/dependencies", headers=estate.agent_headers).json
    assert agent_deps["impacted"][0]["ci"]["name"] == "core-sw-01" and agent_deps["hidden_open_tickets"] == 0
    assert len(agent_deps["open_tickets"]) == 3
    agent_ticket = client.get(f"/api/v1/tickets/{own}", headers=estate.agent_headers).json
    assert agent_ticket["hidden_ci_count"] == 0 and estate.ids["switch"] in agent_ticket["ci_ids"]


# ---------------------------------------------------------------------------------------------
# 404s


def _detail(response, *ids) -> str:
    assert response.status_code == 404, response.get_data(as_text=True)
    detail = response.json["detail"]
    for value in ids:
        detail = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", "<id>", detail)
    return detail


def test_a_404_reads_the_same_whether_the_object_exists_or_may_not_be_seen(app, client, estate):
    """Every requester GET with an id in its path, asked for a foreign object and for nothing."""
    foreign = {"ci_id": estate.foreign_cis["core-sw-01"], "ticket_id": min(estate.foreign_tickets.values()),
               "attachment_id": estate.ids["foreign_attachment"]}  # fmt: skip
    checked, problems = 0, []
    for rule in _requester_routes(app):
        for name, foreign_id in foreign.items():
            if f":{name}>" not in rule.rule:
                continue
            values = _own_values(rule, estate)
            seen = client.get(_path(rule, {**values, name: foreign_id}), headers=estate.headers)
            unknown = client.get(_path(rule, {**values, name: NOWHERE}), headers=estate.headers)
            checked += 1
            if _detail(seen, foreign_id) != _detail(unknown, NOWHERE):
                problems.append(f"{rule.rule} <{name}>: {seen.json['detail']!r} vs {unknown.json['detail']!r}")
            problems += [f"{rule.rule} <{name}>: {leak}" for leak in leaks(seen, estate)]
    for rule in _requester_routes(app):
        if rule.rule not in EXTERNAL:
            continue
        source = EXTERNAL[rule.rule][0]
        foreign_ext = "olga-1" if source == "inventory" else "AT-1"
        seen = client.get(_path(rule, {"source": source, "external_id": foreign_ext}), headers=estate.headers)
        unknown = client.get(_path(rule, {"source": source, "external_id": "nothing-9"}), headers=estate.headers)
        checked += 1
        if _detail(seen, foreign_ext) != _detail(unknown, "nothing-9"):
            problems.append(f"{rule.rule}: {seen.json['detail']!r} vs {unknown.json['detail']!r}")
        said = json.dumps([seen.json.get("detail"), seen.json.get("errors")]).replace(foreign_ext, "")
        for ticket_id in estate.foreign_tickets.values():
            if re.search(rf"\b{ticket_id}\b", said):
                problems.append(f"{rule.rule}: the answer names ticket id {ticket_id}: {said}")
    assert checked >= 10
    assert not problems, "\n".join(problems)


def test_taking_another_tickets_external_id_tells_a_requester_nothing(client, estate):
    """A requester can't set other tools' ids: a clash would tell it that a ticket it may not see
    exists, and its id."""
    taken = client.post("/api/v1/tickets", headers=estate.headers, json={
        "kind": "incident", "title": "x", "external_ids": [{"source": "portal", "id": "AT-1"}]})  # fmt: skip
    free = client.post("/api/v1/tickets", headers=estate.headers, json={
        "kind": "incident", "title": "x", "external_ids": [{"source": "portal", "id": "FREE-1"}]})  # fmt: skip
    assert taken.status_code == free.status_code == 422
    assert taken.json["errors"] == free.json["errors"] == {"external_ids": ["Requesters cannot set external ids."]}
    assert leaks(taken, estate) == []
