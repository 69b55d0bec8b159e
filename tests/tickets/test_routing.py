"""Routing rules through the API: one table row per condition and per action, the first match
winning, explicit values kept (or overridden), re-categorisation, every creation path (mail intake
by its route), the team rota (round-robin, least-loaded, away, on shift by calendar with
time-machine, concurrent creates on PostgreSQL), the dry run and bad input."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from tests.conftest import _backend
from tickets.models import Ticket

# Monday 7 January 2030, 10:00 in Berlin (CET, UTC+1).
MONDAY_10 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass
class World:
    hit: object  # the team a matching rule sends tickets to
    other: object  # a team owning a CI, with a requester in it
    hardware: dict
    laptop_sub: dict
    network: dict
    laptop_ci: object
    server_ci: object
    site: object
    requester: object
    stranger: object


@pytest.fixture
def world(make, client, admin):
    hit = make.team("Routed")
    requester = make.user("requester")
    other = make.team("EUC", members=[requester])
    stranger = make.user("requester")
    site = make.location("Berlin")
    room = make.location("Room 1", kind="building", parent=site)
    laptop_ci = make.ci("laptop", owner_team_id=other.id, assigned_to_id=requester.id, location_id=room.id)
    server_ci = make.ci("server")

    def category(**body):
        r = client.post("/api/v1/ticket-categories", json=body, headers=admin)
        assert r.status_code == 201, r.json
        return r.json

    hardware = category(name="hardware", label="Hardware", kind="incident")
    laptop_sub = category(name="laptop", label="Laptop", kind="incident", parent_id=hardware["id"])
    network = category(name="network", label="Network", kind="incident")
    return World(hit, other, hardware, laptop_sub, network, laptop_ci, server_ci, site, requester, stranger)


@pytest.fixture
def rule(client, admin):
    def post(expect=201, **body):
        body.setdefault("name", f"rule {len(body)}-{id(body)}")
        r = client.post("/api/v1/routing-rules", json=body, headers=admin)
        assert r.status_code == expect, r.json
        return r.json

    return post


@pytest.fixture
def open_ticket(client, make):
    headers = make.headers("agent")

    def post(expect=201, **body):
        body.setdefault("kind", "incident")
        body.setdefault("title", "Something is wrong")
        r = client.post("/api/v1/tickets", json=body, headers=headers)
        assert r.status_code == expect, r.json
        return r.json

    return post


def history(db, ticket_id: int) -> list[ChangeLog]:
    return list(
        db.session.scalars(
            select(ChangeLog)
            .where(ChangeLog.object_type == "ticket", ChangeLog.object_id == ticket_id)
            .order_by(ChangeLog.id)
        )
    )


# One row per condition: the condition, a ticket that meets it, one that does not.
CONDITIONS = {
    "kind": (lambda w: {"kind": "request"}, lambda w: {"kind": "request"}, lambda w: {"kind": "incident"}),
    "category (a subcategory of it too)": (
        lambda w: {"category_id": w.hardware["id"]},
        lambda w: {"category_id": w.laptop_sub["id"]},
        lambda w: {"category_id": w.network["id"]},
    ),
    "CI class": (
        lambda w: {"ci_class": "laptop"},
        lambda w: {"ci_ids": [w.laptop_ci.id]},
        lambda w: {"ci_ids": [w.server_ci.id]},
    ),
    "CI owning team": (
        lambda w: {"ci_team_id": w.other.id},
        lambda w: {"ci_ids": [w.laptop_ci.id, w.server_ci.id]},
        lambda w: {"ci_ids": [w.server_ci.id]},
    ),
    "requester's team": (
        lambda w: {"requester_team_id": w.other.id},
        lambda w: {"requester_id": w.requester.id},
        lambda w: {"requester_id": w.stranger.id},
    ),
    "requester's location (a site holding the room of its laptop)": (
        lambda w: {"requester_location_id": w.site.id},
        lambda w: {"requester_id": w.requester.id},
        lambda w: {"requester_id": w.stranger.id},
    ),
    "words in the title": (
        lambda w: {"title_words": ["vpn", "remote access"]},
        lambda w: {"title": "The Remote Access gateway is down"},
        lambda w: {"title": "VPNs are slow"},  # whole words only
    ),
}


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_each_condition_routes_the_tickets_that_meet_it(name, world, rule, open_ticket, db):
    match, meets, misses = CONDITIONS[name]
    created = rule(name=f"by {name}", match=match(world), actions={"team_id": world.hit.id})
    routed = open_ticket(**meets(world))
    assert routed["team_id"] == world.hit.id
    unrouted = open_ticket(**misses(world))
    assert unrouted["team_id"] is None
    rows = [r for r in history(db, routed["id"]) if r.summary.endswith(f"routed by rule {created['name']}")]
    assert len(rows) == 1
    assert rows[0].changes["routing"][1]["rule_id"] == created["id"]
    assert rows[0].changes["routing"][1]["actions"] == [{"action": "team_id", "value": world.hit.id, "outcome": "set"}]
    assert not any("routed by rule" in r.summary for r in history(db, unrouted["id"]))


def test_each_action_sets_its_field(world, rule, open_ticket, make):
    lead = make.user("agent")
    db_team = make.team("Databases", members=[lead])
    rule(name="team", match={"title_words": ["team"]}, actions={"team_id": world.hit.id})
    rule(name="priority", match={"title_words": ["urgent"]}, actions={"priority": 1})
    rule(
        name="category",
        match={"kind": "incident", "title_words": ["wifi"]},
        actions={"category_id": world.network["id"]},
    )
    rule(name="assignee", match={"title_words": ["database"]}, actions={"team_id": db_team.id, "assignee_id": lead.id})
    assert open_ticket(title="for the team")["team_id"] == world.hit.id
    urgent = open_ticket(title="urgent: payroll stopped")
    assert (urgent["priority"], urgent["impact"], urgent["urgency"]) == (1, 1, 1)
    assert open_ticket(title="wifi flaky", impact=2)["category_id"] == world.network["id"]
    database = open_ticket(title="database full")
    assert (database["team_id"], database["assignee_id"]) == (db_team.id, lead.id)


def test_the_first_matching_rule_wins_and_order_can_change(world, rule, open_ticket, client, admin):
    first = rule(name="first", position=10, match={"title_words": ["printer"]}, actions={"team_id": world.hit.id})
    second = rule(name="second", position=20, match={"title_words": ["printer"]}, actions={"team_id": world.other.id})
    assert open_ticket(title="printer jam")["team_id"] == world.hit.id
    r = client.put("/api/v1/routing-rules/order", json={"ids": [second["id"], first["id"]]}, headers=admin)
    assert r.status_code == 200 and [x["id"] for x in r.json] == [second["id"], first["id"]]
    assert open_ticket(title="printer jam")["team_id"] == world.other.id
    listed = client.get("/api/v1/routing-rules", headers=admin).json
    assert [x["name"] for x in listed] == ["second", "first"]
    r = client.patch(f"/api/v1/routing-rules/{second['id']}", json={"active": False}, headers=admin)
    assert r.status_code == 200
    assert open_ticket(title="printer jam")["team_id"] == world.hit.id


def test_explicit_values_are_kept_unless_the_rule_overrides(world, rule, open_ticket, db):
    keeping = rule(name="keeps", match={"title_words": ["disk"]}, actions={"team_id": world.hit.id, "priority": 1})
    kept = open_ticket(title="disk full", team_id=world.other.id, urgency=3, impact=3)
    assert (kept["team_id"], kept["priority"]) == (world.other.id, 5)
    outcome = history(db, kept["id"])[-1].changes["routing"][1]
    assert {a["action"]: a["outcome"] for a in outcome["actions"]} == {"team_id": "kept", "priority": "kept"}
    rule(
        name="overrides", position=0, override=True, match={"title_words": ["disk"]}, actions={"team_id": world.hit.id}
    )
    assert open_ticket(title="disk full", team_id=world.other.id)["team_id"] == world.hit.id
    assert keeping["override"] is False


def test_recategorisation_routes_again(world, rule, open_ticket, client, make, db):
    rule(name="network", match={"category_id": world.network["id"]}, actions={"team_id": world.hit.id, "priority": 2})
    ticket = open_ticket(title="no link", category_id=world.hardware["id"])
    assert ticket["team_id"] is None
    r = client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"category_id": world.network["id"]}, headers=make.headers("agent")
    )
    assert r.status_code == 200, r.json
    assert (r.json["team_id"], r.json["priority"]) == (world.hit.id, 2)
    assert sum(row.summary.endswith("routed by rule network") for row in history(db, ticket["id"])) == 1
    # A write that does not move the category routes nothing.
    r = client.patch(f"/api/v1/tickets/{ticket['id']}", json={"title": "still no link"}, headers=make.headers("agent"))
    assert sum(row.summary.endswith("routed by rule network") for row in history(db, ticket["id"])) == 1


def test_the_category_default_team_is_the_fallback(world, rule, open_ticket, client, admin):
    r = client.patch(
        f"/api/v1/ticket-categories/{world.hardware['id']}", json={"default_team_id": world.other.id}, headers=admin
    )
    assert r.status_code == 200, r.json
    rule(name="laptops", match={"ci_class": "laptop"}, actions={"team_id": world.hit.id})
    assert open_ticket(category_id=world.laptop_sub["id"], ci_ids=[world.laptop_ci.id])["team_id"] == world.hit.id
    assert open_ticket(category_id=world.laptop_sub["id"])["team_id"] == world.other.id


def test_a_category_a_rule_chooses_brings_its_fields_defaults(world, rule, open_ticket, client, admin, make):
    def define(**body):
        body["label"] = body["name"]
        r = client.post("/api/v1/custom-fields", json=body, headers=admin)
        assert r.status_code == 201, r.json
        return r.json

    define(
        name="dock_model",
        type="choice",
        choices=["usb-c", "tb4"],
        default="tb4",
        applies_to={"ticket_categories": [world.laptop_sub["id"]]},
    )
    define(
        name="asset_tag_seen", type="text", default="unread", applies_to={"ticket_categories": [world.hardware["id"]]}
    )
    define(name="switch_port", type="text", default="none", applies_to={"ticket_categories": [world.network["id"]]})
    rule(
        name="docks",
        match={"kind": "incident", "title_words": ["dock"]},
        actions={"category_id": world.laptop_sub["id"]},
    )
    routed = open_ticket(title="my dock is dead")
    assert routed["category_id"] == world.laptop_sub["id"]
    # The routed category's fields and its parent's, with their defaults; not another category's.
    assert routed["custom_fields"] == {"dock_model": "tb4", "asset_tag_seen": "unread"}
    # A ticket the rule does not touch gets nothing of the category.
    assert open_ticket(title="printer jam")["custom_fields"] == {}
    # The values are the ticket's own: a later edit checks them as any others.
    r = client.patch(
        f"/api/v1/tickets/{routed['id']}",
        json={"custom_fields": {"dock_model": "usb-c"}},
        headers=make.headers("agent"),
    )
    assert r.status_code == 200, r.json
    assert r.json["custom_fields"] == {"dock_model": "usb-c", "asset_tag_seen": "unread"}


def test_a_mail_is_routed_by_the_route_it_came_in_by(app, world, rule, client, make, db):
    saved = dict(app.config)
    app.config.update(
        CAIRN_MAIL_ADDRESS="helpdesk@cairn.test",
        CAIRN_MAIL_ROUTES="incidents@cairn.test=incident,hr@cairn.test=request",
        CAIRN_MAIL_ALLOWED_DOMAINS="example.com",
    )
    try:
        created = rule(name="HR mail", match={"mail_route": "HR@cairn.test"}, actions={"team_id": world.hit.id})
        assert created["match"]["mail_route"] == "hr@cairn.test"
        headers = {**make.headers("integration"), "Content-Type": "message/rfc822"}
        answers = {}
        for n, to in enumerate(("hr@cairn.test", "incidents@cairn.test")):
            raw = (
                f"From: alice@example.com\r\nTo: {to}\r\nSubject: Payslip question {n}\r\n"
                f"Message-ID: <routing-{n}@example.com>\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
            ).encode()
            r = client.post("/api/v1/inbound-email", data=raw, headers=headers)
            assert r.status_code == 202, r.json
            answers[to] = client.get(f"/api/v1/inbound-email/{r.json['id']}", headers=make.headers("admin")).json
    finally:
        app.config.clear()
        app.config.update(saved)
    routed = db.session.get(Ticket, answers["hr@cairn.test"]["ticket_id"])
    unrouted = db.session.get(Ticket, answers["incidents@cairn.test"]["ticket_id"])
    assert (routed.kind, routed.team_id) == ("request", world.hit.id)
    assert unrouted.team_id is None
    assert any(row.summary.endswith("routed by rule HR mail") for row in history(db, routed.id))


def test_every_creation_path_goes_through_routing(world, rule, make, db):
    """The service every door calls (API, bulk, mail, portal, events) routes; here called directly."""
    from tickets import services

    rule(name="svc", match={"title_words": ["alert"]}, actions={"team_id": world.hit.id})
    ticket = services.create_ticket({"kind": "incident", "title": "Disk alert on db1"}, None)
    assert ticket.team_id == world.hit.id


# ---------------------------------------------------------------------------------------------
# The team rota


@pytest.fixture
def rota(make, client, admin):
    def build(mode, n=3, **settings):
        members = [make.user("agent", email=f"m{i}-{mode}@example.com") for i in range(n)]
        team = make.team(f"Rota {mode}", members=members)
        r = client.put(f"/api/v1/team-assignments/{team.id}", json={"mode": mode, **settings}, headers=admin)
        assert r.status_code == 200, r.json
        return team, sorted(members, key=lambda m: m.id)

    return build


def test_round_robin_hands_out_in_turn_and_skips_the_away(rota, open_ticket, client, admin, db):
    team, (a, b, c) = rota("round_robin")
    got = [open_ticket(team_id=team.id)["assignee_id"] for _ in range(4)]
    assert got == [a.id, b.id, c.id, a.id]
    r = client.put(
        f"/api/v1/team-assignments/{team.id}", json={"mode": "round_robin", "away_user_ids": [b.id]}, headers=admin
    )
    assert r.status_code == 200 and r.json["on_shift"] == [a.id, c.id]
    assert [open_ticket(team_id=team.id)["assignee_id"] for _ in range(3)] == [c.id, a.id, c.id]
    # A client's own assignee is kept; the rota does not turn for it.
    assert open_ticket(team_id=team.id, assignee_id=b.id)["assignee_id"] == b.id
    assert open_ticket(team_id=team.id)["assignee_id"] == a.id
    ticket_id = open_ticket(team_id=team.id)["id"]
    row = history(db, ticket_id)[-1]
    assert row.summary.endswith("assigned by the team's round-robin rota")
    assert row.changes["routing"][1]["assignment"]["mode"] == "round_robin"


def test_least_loaded_picks_the_member_with_fewest_open_tickets(rota, open_ticket):
    team, (a, b, c) = rota("least_loaded")
    for member, count in ((a, 2), (b, 1)):
        for _ in range(count):
            open_ticket(team_id=team.id, assignee_id=member.id)
    assert open_ticket(team_id=team.id)["assignee_id"] == c.id  # a 2, b 1, c 0
    assert open_ticket(team_id=team.id)["assignee_id"] == b.id  # b and c 1: the next in turn after c
    assert open_ticket(team_id=team.id)["assignee_id"] == c.id  # a 2, b 2, c 1


def test_nobody_is_on_shift_outside_the_team_calendar(rota, client, admin, open_ticket, db):
    r = client.post(
        "/api/v1/calendars", json={"name": "Berlin", "time_zone": "Europe/Berlin", "hours": OFFICE}, headers=admin
    )
    assert r.status_code == 201
    team, (a, b) = rota("round_robin", n=2, calendar_id=r.json["id"])
    with time_machine.travel(MONDAY_10, tick=False):
        assert open_ticket(team_id=team.id)["assignee_id"] == a.id
    with time_machine.travel(MONDAY_10 + timedelta(hours=8), tick=False):  # 18:00 Berlin
        assert open_ticket(team_id=team.id)["assignee_id"] is None
        assert client.get(f"/api/v1/team-assignments/{team.id}", headers=admin).json["on_shift"] == []
    with time_machine.travel(MONDAY_10 + timedelta(days=5), tick=False):  # Saturday
        assert open_ticket(team_id=team.id)["assignee_id"] is None
    with time_machine.travel(MONDAY_10 + timedelta(days=7), tick=False):  # next Monday
        assert open_ticket(team_id=team.id)["assignee_id"] == b.id


def test_a_routed_team_uses_its_rota(world, rule, rota, open_ticket):
    team, (a, b) = rota("round_robin", n=2)
    rule(name="to rota", match={"title_words": ["printer"]}, actions={"team_id": team.id})
    assert [open_ticket(title="printer out of toner")["assignee_id"] for _ in range(3)] == [a.id, b.id, a.id]


@pytest.mark.skipif(_backend() != "postgresql", reason="the row lock matters where writers run in parallel")
def test_concurrent_creates_never_hand_out_the_same_member_twice_in_a_row(app, committed_db, committed_make):
    members = [committed_make.user("agent", email=f"para{i}@example.com") for i in range(3)]
    team = committed_make.team("Parallel", members=members)
    admin = committed_make.headers("admin")
    agent = committed_make.headers("agent")
    client = app.test_client()
    assert (
        client.put(f"/api/v1/team-assignments/{team.id}", json={"mode": "round_robin"}, headers=admin).status_code
        == 200
    )
    threads, per_thread = 6, 5
    start = threading.Barrier(threads)
    failures = []

    def creator(i):
        own = app.test_client()
        start.wait()
        for j in range(per_thread):
            r = own.post(
                "/api/v1/tickets", json={"kind": "incident", "title": f"p{i}-{j}", "team_id": team.id}, headers=agent
            )
            if r.status_code != 201:
                failures.append(r.json)

    workers = [threading.Thread(target=creator, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    rows = committed_db.session.execute(
        select(Ticket.id, Ticket.assignee_id).where(Ticket.team_id == team.id).order_by(Ticket.id)
    ).all()
    assignees = [assignee for _id, assignee in rows]
    assert len(assignees) == threads * per_thread
    assert all(x != y for x, y in zip(assignees, assignees[1:], strict=False)), assignees
    order = sorted(m.id for m in members)
    assert assignees == [order[n % 3] for n in range(len(assignees))]


# ---------------------------------------------------------------------------------------------
# Dry run


def test_the_dry_run_names_the_rule_and_why_the_ones_before_did_not_match(world, rule, rota, client, make, db):
    team, (a, b) = rota("round_robin", n=2)
    miss = rule(
        name="requests", match={"kind": "request", "title_words": ["laptop"]}, actions={"team_id": world.other.id}
    )
    wins = rule(name="laptops", match={"ci_class": "laptop"}, actions={"team_id": team.id, "priority": 2})
    rule(name="later", match={}, actions={"team_id": world.other.id})
    agent = make.headers("agent")
    body = {"ticket": {"kind": "incident", "title": "screen broken", "ci_ids": [world.laptop_ci.id]}}
    r = client.post("/api/v1/routing-rules/dry-run", json=body, headers=agent)
    assert r.status_code == 200, r.json
    answer = r.json
    assert answer["rule"]["id"] == wins["id"]
    assert [t["id"] for t in answer["tried"]] == [miss["id"], wins["id"]]
    failed = answer["tried"][0]["failed"]
    assert {f["condition"] for f in failed} == {"kind", "title_words"}
    assert failed[0] == {"condition": "kind", "wanted": "request", "found": "incident"}
    assert answer["after"] == {"team_id": team.id, "assignee_id": a.id, "category_id": None, "priority": 2}
    assert answer["assignment"]["mode"] == "round_robin" and answer["assignment"]["on_shift"] == [a.id, b.id]
    # Nothing was written, the rota did not turn.
    again = client.post("/api/v1/routing-rules/dry-run", json=body, headers=agent).json
    assert again["after"]["assignee_id"] == a.id
    assert db.session.scalar(select(Ticket.id)) is None
    # An existing ticket.
    ticket = client.post("/api/v1/tickets", json={"kind": "incident", "title": "x"}, headers=agent).json
    r = client.post("/api/v1/routing-rules/dry-run", json={"ticket_id": ticket["id"]}, headers=agent)
    assert r.status_code == 200 and r.json["rule"]["name"] == "later"
    unknown = client.post("/api/v1/routing-rules/dry-run", json={"ticket_id": 999999}, headers=agent)
    assert unknown.status_code == 422 and unknown.json["errors"] == {"ticket_id": ["No ticket with id 999999."]}


# ---------------------------------------------------------------------------------------------
# Roles and bad input


def test_roles_and_scopes(client, make, world):
    agent = make.headers("agent")
    body = {"name": "x", "actions": {"team_id": world.hit.id}}
    assert client.post("/api/v1/routing-rules", json=body, headers=agent).status_code == 403
    assert client.get("/api/v1/routing-rules", headers=agent).status_code == 200
    assert (
        client.put(f"/api/v1/team-assignments/{world.hit.id}", json={"mode": "manual"}, headers=agent).status_code
        == 403
    )
    requester = make.headers("requester")
    dry = {"ticket": {"kind": "incident"}}
    assert client.post("/api/v1/routing-rules/dry-run", json=dry, headers=requester).status_code == 403
    assert client.get("/api/v1/routing-rules", headers=requester).status_code == 403
    admin_user = make.user("admin")
    read_only = {"Authorization": f"Bearer {make.token(admin_user, scopes=['read'])}"}
    assert client.post("/api/v1/routing-rules/dry-run", json=dry, headers=read_only).status_code == 200
    assert client.post("/api/v1/routing-rules", json=body, headers=read_only).status_code == 403


BAD_RULES = {
    "no action": ({"actions": {}}, "actions"),
    "unknown team": ({"actions": {"team_id": 999999}}, "actions"),
    "unknown category": ({"match": {"category_id": 999999}, "actions": {"priority": 2}}, "match"),
    "unknown user": ({"actions": {"assignee_id": 999999}}, "actions"),
    "unknown location": ({"match": {"requester_location_id": 999999}, "actions": {"priority": 2}}, "match"),
    "unknown CI class": ({"match": {"ci_class": "toaster"}, "actions": {"priority": 2}}, "match"),
    "a priority out of range": ({"actions": {"priority": 9}}, "actions"),
    "a category of another kind": ({"match": {"kind": "request"}, "actions": {"category_id": "HARDWARE"}}, "actions"),
    "a category set without a kind": ({"actions": {"category_id": "HARDWARE"}}, "actions"),
    "an unknown field": ({"actions": {"priority": 2}, "colour": "red"}, "colour"),
    "not an address": ({"match": {"mail_route": "hr"}, "actions": {"priority": 2}}, "match"),
}


@pytest.mark.parametrize("case", list(BAD_RULES))
def test_bad_rules_are_422_and_store_nothing(case, client, admin, world, db):
    body, field = BAD_RULES[case]
    body = {"name": "bad", **body}
    if body.get("actions", {}).get("category_id") == "HARDWARE":
        body["actions"] = {"category_id": world.hardware["id"]}
    r = client.post("/api/v1/routing-rules", json=body, headers=admin)
    assert r.status_code == 422, r.json
    assert r.mimetype == "application/problem+json" and field in r.json["errors"]
    assert client.get("/api/v1/routing-rules", headers=admin).json == []


def test_other_bad_input(client, admin, world, rule, make):
    first = rule(name="dup", actions={"priority": 3})
    assert (
        client.post(
            "/api/v1/routing-rules", json={"name": "dup", "actions": {"priority": 3}}, headers=admin
        ).status_code
        == 409
    )
    outsider = make.user("agent")
    r = client.post(
        "/api/v1/routing-rules",
        json={"name": "o", "actions": {"team_id": world.hit.id, "assignee_id": outsider.id}},
        headers=admin,
    )
    assert r.status_code == 422 and "assignee_id" in r.json["errors"]["actions"]
    requester = make.user("requester")
    r = client.post(
        "/api/v1/routing-rules", json={"name": "r", "actions": {"assignee_id": requester.id}}, headers=admin
    )
    assert r.status_code == 422
    r = client.patch(f"/api/v1/routing-rules/{first['id']}", json={"actions": {"priority": None}}, headers=admin)
    assert r.status_code == 422, "a change that leaves no action is refused"
    assert client.get(f"/api/v1/routing-rules/{first['id']}", headers=admin).json["actions"]["priority"] == 3
    assert client.get("/api/v1/routing-rules/999999", headers=admin).status_code == 404
    r = client.put("/api/v1/routing-rules/order", json={"ids": [first["id"], 424242]}, headers=admin)
    assert r.status_code == 422 and "ids" in r.json["errors"]
    r = client.put(f"/api/v1/team-assignments/{world.hit.id}", json={"mode": "sometimes"}, headers=admin)
    assert r.status_code == 422
    r = client.put(
        f"/api/v1/team-assignments/{world.hit.id}", json={"mode": "round_robin", "calendar_id": 999999}, headers=admin
    )
    assert r.status_code == 422 and "calendar_id" in r.json["errors"]
    r = client.put(
        f"/api/v1/team-assignments/{world.hit.id}",
        json={"mode": "round_robin", "away_user_ids": [outsider.id]},
        headers=admin,
    )
    assert r.status_code == 422 and "away_user_ids" in r.json["errors"]
    assert client.put("/api/v1/team-assignments/999999", json={"mode": "manual"}, headers=admin).status_code == 404
    assert client.get(f"/api/v1/team-assignments/{world.hit.id}", headers=admin).json["mode"] == "manual"
    r = client.post("/api/v1/routing-rules/dry-run", json={}, headers=admin)
    assert r.status_code == 422
    r = client.post(
        "/api/v1/routing-rules/dry-run", json={"ticket": {"kind": "incident", "team_id": 999999}}, headers=admin
    )
    assert r.status_code == 422 and "team_id" in r.json["errors"]["ticket"]
    assert client.delete(f"/api/v1/routing-rules/{first['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/routing-rules/{first['id']}", headers=admin).status_code == 404
