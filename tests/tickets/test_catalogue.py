"""The service catalogue through the API: an order from request to approval to tasks to a CI
deployed from stock to the requester; rejection; sequential and any-of approvals; ordered and
parallel tasks; who may do what; bad input that changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cairn.directory.models import DirectoryProfile
from tickets.models import Ticket, TicketApproval

ITEMS = "/api/v1/catalogue-items"
ORDERS = "/api/v1/catalogue-orders"
APPROVALS = "/api/v1/catalogue-approvals"
TASKS = "/api/v1/catalogue-tasks"


@pytest.fixture
def people(make, db):
    """A requester with a manager (from the directory), a fulfilment team with a technician."""
    manager = make.user("requester", name="Mia Manager")
    requester = make.user("requester", name="Rob Requester")
    db.session.add(DirectoryProfile(user_id=requester.id, dn=f"cn=rob{requester.id}", manager_id=manager.id))
    db.session.commit()
    tech = make.user("agent", name="Tia Tech")
    outsider = make.user("agent", name="Otto Outsider")
    team = make.team(members=[tech])
    return {
        "manager": manager,
        "requester": requester,
        "tech": tech,
        "outsider": outsider,
        "team": team,
        "h": {name: make.headers(user=user) for name, user in {
            "manager": manager, "requester": requester, "tech": tech, "outsider": outsider,
        }.items()},
    }  # fmt: skip


def _field(client, admin, **body):
    body.setdefault("label", body["name"])
    body.setdefault("applies_to", {"ticket_kinds": ["request"]})
    response = client.post("/api/v1/custom-fields", headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _item(client, admin, **body):
    response = client.post(ITEMS, headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def _order(client, headers, item_id, fields=None, status=201, **extra):
    response = client.post(f"{ITEMS}/{item_id}/orders", headers=headers, json={"fields": fields or {}, **extra})
    assert response.status_code == status, response.json
    return response.json


def _decide(client, headers, step_id, decision="approve", status=201):
    response = client.post(f"{APPROVALS}/{step_id}/decisions", headers=headers, json={"decision": decision})
    assert response.status_code == status, response.json
    return response.json


def _complete(client, headers, task_id, status=200, **body):
    response = client.post(f"{TASKS}/{task_id}/complete", headers=headers, json=body)
    assert response.status_code == status, response.json
    return response.json


def _get_order(client, headers, ticket_id):
    response = client.get(f"{ORDERS}/{ticket_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_an_order_goes_from_request_to_approval_to_tasks_to_a_deployed_ci(client, admin, make, people):
    _field(client, admin, name="laptop_os", type="choice", choices=["linux", "windows", "macos"])
    _field(client, admin, name="business_reason", type="long_text")
    old = make.ci("laptop", name="laptop-old", status="in_stock")
    make.ci("desktop", name="desktop-1", status="in_stock")
    item = _item(
        client,
        admin,
        name="Standard laptop",
        description="A 14-inch laptop",
        category="Hardware",
        form=[{"field": "laptop_os", "required": True}, {"field": "business_reason"}],
        approval_steps=[{"kind": "manager"}],
        tasks=[
            {"title": "Prepare the laptop", "team_id": people["team"].id, "delivers_ci": True},
            {"title": "Hand it over", "team_id": people["team"].id},
        ],
        deliver_ci_class="laptop",
    )
    assert [t["stage"] for t in item["tasks"]] == [1, 2]
    h = people["h"]
    listed = client.get(ITEMS, headers=h["requester"])
    assert [i["name"] for i in listed.json] == ["Standard laptop"]

    order = _order(client, h["requester"], item["id"], {"laptop_os": "linux", "business_reason": "new hire"})
    assert order["number"].startswith("REQ") and order["state"] == "new" and order["stage"] == "approval"
    assert order["requester_id"] == people["requester"].id
    (line,) = order["items"]
    assert line["fields"] == {"laptop_os": "linux", "business_reason": "new hire"}
    (step,) = line["approvals"]
    assert step["kind"] == "manager" and step["state"] == "open"
    assert step["approver_ids"] == [people["manager"].id]
    assert [t["state"] for t in line["tasks"]] == ["pending", "pending"]

    # the requester can't approve its own order; the manager sees it waiting and approves it
    _decide(client, h["requester"], step["id"], status=403)
    waiting = client.get(APPROVALS, headers=h["manager"]).json
    assert [(s["id"], s["item_name"], s["fields"]["laptop_os"]) for s in waiting] == [
        (step["id"], "Standard laptop", "linux")
    ]
    decided = _decide(client, h["manager"], step["id"])
    assert decided["state"] == "approved" and decided["decisions"][0]["decision"] == "approve"
    _decide(client, h["manager"], step["id"], status=409)  # approving twice
    assert client.get(APPROVALS, headers=h["manager"]).json == []
    approved = client.get(APPROVALS, headers=h["manager"], query_string={"state": "approved"}).json
    assert [s["id"] for s in approved] == [step["id"]]
    assert client.get(APPROVALS, headers=h["tech"], query_string={"state": "approved"}).json == []

    order = _get_order(client, h["requester"], order["id"])
    assert order["stage"] == "fulfilment" and order["state"] == "in_progress"
    first, second = order["items"][0]["tasks"]
    assert (first["state"], second["state"]) == ("open", "pending")
    assert first["delivers_ci_class"] == "laptop" and first["note"] == ""
    queue = client.get(TASKS, headers=h["tech"], query_string={"mine": "true"}).json
    assert [t["id"] for t in queue] == [first["id"]]
    assert queue[0]["requested_for"]["id"] == people["requester"].id

    _complete(client, h["tech"], second["id"], status=409)  # out of order
    _complete(client, h["outsider"], first["id"], status=403)  # not in the team
    done = _complete(client, h["tech"], first["id"], note="imaged")
    assert done["state"] == "done" and done["delivered_ci_id"] == old.id
    assert done["note"].startswith("Delivered laptop-old")
    _complete(client, h["tech"], first["id"], status=409)  # twice

    ci = client.get(f"/api/v1/cis/{old.id}", headers=admin).json
    assert ci["status"] == "deployed" and ci["assigned_to_id"] == people["requester"].id
    history = client.get(f"/api/v1/cis/{old.id}/history", headers=admin).json
    moved = [row for row in history if row["kind"] == "change" and "status" in (row.get("changes") or {})]
    assert moved and moved[0]["changes"]["status"] == ["in_stock", "deployed"]
    assert moved[0]["actor"] == people["tech"].email

    order = _get_order(client, h["requester"], order["id"])
    assert order["items"][0]["tasks"][1]["state"] == "open"
    _complete(client, h["tech"], second["id"])
    order = _get_order(client, h["requester"], order["id"])
    assert order["stage"] == "fulfilled" and order["state"] == "closed"
    assert order["items"][0]["delivered_ci_id"] == old.id
    ticket = client.get(f"/api/v1/tickets/{order['id']}", headers=h["requester"]).json
    assert ticket["resolution_code"] == "fulfilled" and old.id in ticket["ci_ids"]
    assert ticket["custom_fields"]["laptop_os"] == "linux"
    mine = client.get(f"/api/v1/cis?assigned_to_id={people['requester'].id}", headers=admin).json
    assert [c["name"] for c in mine] == ["laptop-old"]


def test_a_rejection_closes_the_request_as_rejected(client, admin, make, db, people):
    approvers = make.team(members=[people["tech"], people["outsider"]])
    item = _item(
        client,
        admin,
        name="VPN access",
        approval_steps=[{"kind": "team", "team_id": approvers.id, "mode": "any"}, {"kind": "manager"}],
        tasks=[{"title": "Create the VPN account", "team_id": people["team"].id}],
    )
    h = people["h"]
    order = _order(client, h["requester"], item["id"])
    first, second = order["items"][0]["approvals"]
    assert (first["state"], second["state"]) == ("open", "waiting")
    assert sorted(first["approver_ids"]) == sorted([people["tech"].id, people["outsider"].id])
    _decide(client, h["manager"], second["id"], status=409)  # waits for the team
    _decide(client, h["outsider"], first["id"], "reject")
    order = _get_order(client, h["requester"], order["id"])
    assert order["stage"] == "rejected" and order["state"] == "canceled"
    assert "Rejected by Otto Outsider" in order["cancel_reason"]
    assert [s["state"] for s in order["items"][0]["approvals"]] == ["rejected", "skipped"]
    assert [t["state"] for t in order["items"][0]["tasks"]] == ["canceled"]
    _decide(client, h["tech"], first["id"], status=409)  # decided
    _decide(client, h["manager"], second["id"], status=409)
    assert client.get(TASKS, headers=h["tech"]).json == []
    decisions = db.session.scalars(select(TicketApproval).where(TicketApproval.ticket_id == order["id"])).all()
    assert [(d.approver_id, d.decision, d.round) for d in decisions] == [(people["outsider"].id, "reject", 1)]


@pytest.mark.parametrize("mode", ["sequential", "any_of"])
def test_sequential_and_any_of_approval_chains(client, admin, make, people, mode):
    alice, bob = make.user("agent", name="Alice"), make.user("change_manager", name="Bob")
    ha, hb = make.headers(user=alice), make.headers(user=bob)
    item = _item(
        client,
        admin,
        name=f"Mailbox {mode}",
        approval_mode=mode,
        approval_steps=[{"kind": "user", "user_id": alice.id}, {"kind": "user", "user_id": bob.id}],
        tasks=[{"title": "Create the mailbox", "team_id": people["team"].id}],
    )
    order = _order(client, people["h"]["requester"], item["id"])
    a, b = order["items"][0]["approvals"]
    if mode == "sequential":
        assert (a["state"], b["state"]) == ("open", "waiting")
        _decide(client, hb, b["id"], status=409)  # Bob waits for Alice
        _decide(client, ha, a["id"])
        assert _get_order(client, people["h"]["requester"], order["id"])["stage"] == "approval"
        _decide(client, hb, b["id"])
        expected = ["approved", "approved"]
    else:
        assert (a["state"], b["state"]) == ("open", "open")
        _decide(client, hb, b["id"])  # the first approval decides
        _decide(client, ha, a["id"], status=409)
        expected = ["skipped", "approved"]
    order = _get_order(client, people["h"]["requester"], order["id"])
    assert [s["state"] for s in order["items"][0]["approvals"]] == expected
    assert order["stage"] == "fulfilment" and order["items"][0]["tasks"][0]["state"] == "open"


def test_a_team_step_in_mode_all_needs_every_member(client, admin, make, people):
    alice, bob = make.user("agent"), make.user("agent")
    board = make.team(members=[alice, bob])
    item = _item(
        client, admin, name="Admin rights", approval_steps=[{"kind": "team", "team_id": board.id, "mode": "all"}]
    )
    order = _order(client, people["h"]["requester"], item["id"])
    (step,) = order["items"][0]["approvals"]
    assert _decide(client, make.headers(user=alice), step["id"])["state"] == "open"
    assert _decide(client, make.headers(user=bob), step["id"])["state"] == "approved"
    # no tasks: approved is fulfilled, and the request closes
    order = _get_order(client, people["h"]["requester"], order["id"])
    assert order["stage"] == "fulfilled" and order["state"] == "closed"


def test_parallel_and_ordered_tasks(client, admin, make, people):
    other = make.team(members=[people["tech"]])
    item = _item(
        client,
        admin,
        name="New starter kit",
        tasks=[
            {"title": "Account", "team_id": people["team"].id, "stage": 1},
            {"title": "Badge", "team_id": other.id, "stage": 1},
            {"title": "Welcome call", "team_id": people["team"].id, "stage": 2},
        ],
    )
    order = _order(client, people["h"]["requester"], item["id"])  # no approvals: straight to fulfilment
    assert order["stage"] == "fulfilment" and order["state"] == "in_progress"
    account, badge, call = order["items"][0]["tasks"]
    assert [account["state"], badge["state"], call["state"]] == ["open", "open", "pending"]
    h = people["h"]["tech"]
    _complete(client, h, badge["id"])
    _complete(client, h, call["id"], status=409)  # stage 2 waits for all of stage 1
    _complete(client, h, account["id"])
    order = _get_order(client, people["h"]["requester"], order["id"])
    assert [t["state"] for t in order["items"][0]["tasks"]] == ["done", "done", "open"]
    _complete(client, h, call["id"])
    assert _get_order(client, people["h"]["requester"], order["id"])["state"] == "closed"


def test_no_stock_leaves_the_delivering_task_open_saying_so(client, admin, make, people):
    item = _item(
        client,
        admin,
        name="Phone",
        tasks=[{"title": "Ship a phone", "team_id": people["team"].id}],
        deliver_ci_class="mobile_phone",
    )
    order = _order(client, people["h"]["requester"], item["id"])
    (task,) = order["items"][0]["tasks"]
    assert task["state"] == "open" and "No mobile_phone is in stock" in task["note"]
    refused = client.post(f"{TASKS}/{task['id']}/complete", headers=people["h"]["tech"], json={})
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert "in stock" in refused.json["detail"]
    assert client.get(f"{TASKS}/{task['id']}", headers=admin).json["state"] == "open"
    # a CI of another class is not one to deliver; one in stock is, named by the technician
    laptop = make.ci("laptop", status="in_stock")
    _complete(client, people["h"]["tech"], task["id"], status=422, ci_id=laptop.id)
    make.ci("mobile_phone", name="phone-a", status="in_stock")
    phone_b = make.ci("mobile_phone", name="phone-b", status="in_stock")
    done = _complete(client, people["h"]["tech"], task["id"], ci_id=phone_b.id)
    assert done["delivered_ci_id"] == phone_b.id
    assert client.get(f"/api/v1/cis/{phone_b.id}", headers=admin).json["status"] == "deployed"


def test_who_may_define_order_see_and_work(client, admin, make, db, people):
    h = people["h"]
    assert client.post(ITEMS, headers=h["tech"], json={"name": "x"}).status_code == 403
    assert client.post(ITEMS, headers=h["requester"], json={"name": "x"}).status_code == 403
    staff_only = _item(client, admin, name="Server", audience={"roles": ["agent"]})
    team_only = _item(client, admin, name="Team thing", audience={"team_ids": [people["team"].id]})
    everyone = _item(client, admin, name="Mouse")
    retired = _item(client, admin, name="Old phone", active=False)
    names = [i["name"] for i in client.get(ITEMS, headers=h["requester"]).json]
    assert names == ["Mouse"]
    for item in (staff_only, team_only, retired):
        refused = client.post(f"{ITEMS}/{item['id']}/orders", headers=h["requester"], json={})
        assert refused.status_code == 403, refused.json
        assert client.get(f"{ITEMS}/{item['id']}", headers=h["requester"]).status_code == 404
    _order(client, h["outsider"], staff_only["id"])  # an agent
    _order(client, h["tech"], team_only["id"])  # a member of the team
    _order(client, make.headers("auditor"), everyone["id"], status=403)
    # requesters see only their own orders; they can't order for others nor work tasks
    mine = _order(client, h["requester"], everyone["id"])
    other = _order(client, h["manager"], everyone["id"])
    assert client.get(f"{ORDERS}/{other['id']}", headers=h["requester"]).status_code == 404
    assert [o["id"] for o in client.get(ORDERS, headers=h["requester"]).json] == [mine["id"]]
    _order(client, h["requester"], everyone["id"], status=422, requested_for_id=people["manager"].id)
    assert client.get(TASKS, headers=h["requester"]).status_code == 403
    # the service desk orders on someone's behalf
    for_rob = _order(client, h["tech"], everyone["id"], requested_for_id=people["requester"].id)
    assert for_rob["requester_id"] == people["requester"].id
    # scopes: a read token can't order; tickets:write orders but can't define items
    reader = make.token(people["tech"], scopes=["read"])
    writer = make.token(people["tech"], scopes=["tickets:write"])
    assert (
        client.post(
            f"{ITEMS}/{everyone['id']}/orders", headers={"Authorization": f"Bearer {reader}"}, json={}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"{ITEMS}/{everyone['id']}/orders", headers={"Authorization": f"Bearer {writer}"}, json={}
        ).status_code
        == 201
    )
    admin_writer = make.token(make.user("admin"), scopes=["tickets:write"])
    assert (
        client.post(ITEMS, headers={"Authorization": f"Bearer {admin_writer}"}, json={"name": "y"}).status_code == 403
    )


def test_bad_input_is_a_clear_problem_and_writes_nothing(client, admin, make, db, people):
    _field(client, admin, name="seats", type="integer", validation={"min": 1, "max": 50})
    _field(client, admin, name="approver_ref", type="user")
    _field(client, admin, name="ci_only", type="text", applies_to={"ci_classes": ["server"]})
    h = people["h"]
    # definitions
    bad = client.post(
        ITEMS,
        headers=admin,
        json={
            "name": "Licences",
            "form": [{"field": "ci_only"}, {"field": "nope"}],
            "approval_steps": [{"kind": "team"}, {"kind": "user", "user_id": 999999}],
            "tasks": [{"title": "t", "team_id": 999999}],
            "deliver_ci_class": "spaceship",
        },
    )
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    errors = bad.json["errors"]
    assert {"form", "approval_steps", "tasks", "deliver_ci_class"} <= set(errors), errors
    assert client.post(ITEMS, headers=admin, json={"form": "x"}).status_code == 422
    item = _item(client, admin, name="Licences", form=[{"field": "seats", "required": True}, {"field": "approver_ref"}])
    assert client.post(ITEMS, headers=admin, json={"name": "Licences"}).status_code == 409
    # orders
    before = db.session.scalar(select(func.count()).select_from(Ticket))
    unknown = client.post(f"{ITEMS}/999999/orders", headers=h["requester"], json={})
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    for fields, name, message in (
        ({}, "seats", "Missing data for required field."),
        ({"seats": 0}, "seats", "Must be at least 1."),
        ({"seats": "3"}, "seats", None),
        ({"seats": 2, "colour": "red"}, "colour", "Not a field of the form of Licences."),
        ({"seats": 2, "approver_ref": 999999}, "approver_ref", "No user with id 999999."),
    ):
        refused = client.post(f"{ITEMS}/{item['id']}/orders", headers=h["requester"], json={"fields": fields})
        assert refused.status_code == 422, refused.json
        messages = refused.json["errors"]["items"]["0"]["fields"][name]
        assert message is None or messages == [message]
    several = client.post(
        ORDERS,
        headers=h["requester"],
        json={"items": [{"item_id": item["id"], "fields": {"seats": 2}}, {"item_id": 999999}]},
    )
    assert several.status_code == 422 and several.json["errors"]["items"] == {
        "1": {"item_id": ["No catalogue item with id 999999."]}
    }
    assert client.post(ORDERS, headers=h["requester"], json={"items": []}).status_code == 422
    # an approval chain naming nobody (no manager in the directory) is refused, not stuck
    lonely = _item(client, admin, name="Needs a manager", approval_steps=[{"kind": "manager"}])
    nobody = client.post(f"{ITEMS}/{lonely['id']}/orders", headers=h["tech"], json={})
    assert nobody.status_code == 422 and "no manager" in str(nobody.json["errors"])
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == before
    # a good one, then decisions and tasks that do not exist
    assert _order(client, h["requester"], item["id"], {"seats": 2})["stage"] == "fulfilled"
    assert (
        client.post(f"{APPROVALS}/999999/decisions", headers=h["manager"], json={"decision": "approve"}).status_code
        == 404
    )
    step_item = _item(client, admin, name="Approved thing", approval_steps=[{"kind": "manager"}])
    order = _order(client, h["requester"], step_item["id"])
    step_id = order["items"][0]["approvals"][0]["id"]
    assert (
        client.post(f"{APPROVALS}/{step_id}/decisions", headers=h["manager"], json={"decision": "maybe"}).status_code
        == 422
    )
    assert client.post(f"{TASKS}/999999/complete", headers=h["tech"], json={}).status_code == 404


def test_several_items_in_one_order(client, admin, make, people):
    a = _item(client, admin, name="Keyboard", tasks=[{"title": "Ship keyboard", "team_id": people["team"].id}])
    b = _item(client, admin, name="Monitor", approval_steps=[{"kind": "manager"}], tasks=[{"title": "Ship monitor"}])
    response = client.post(
        ORDERS,
        headers=people["h"]["requester"],
        json={"items": [{"item_id": a["id"]}, {"item_id": b["id"]}], "note": "for my desk"},
    )
    assert response.status_code == 201, response.json
    order = response.json
    assert [i["state"] for i in order["items"]] == ["fulfilment", "approval"]
    assert order["stage"] == "approval"
    _complete(client, people["h"]["tech"], order["items"][0]["tasks"][0]["id"])
    assert _get_order(client, people["h"]["requester"], order["id"])["state"] == "in_progress"
    _decide(client, people["h"]["manager"], order["items"][1]["approvals"][0]["id"])
    _complete(client, people["h"]["tech"], order["items"][1]["tasks"][0]["id"])
    order = _get_order(client, people["h"]["requester"], order["id"])
    assert order["stage"] == "fulfilled" and order["state"] == "closed"


def test_form_values_of_an_ordered_item_are_checked_on_every_write(client, admin, make, people):
    _field(client, admin, name="quota_gb", type="integer", validation={"min": 1, "max": 100})
    _field(client, admin, name="shared_with", type="team")
    item = _item(
        client,
        admin,
        name="Shared drive",
        form=[{"field": "quota_gb", "required": True}, {"field": "shared_with"}],
        tasks=[{"title": "Create the share", "team_id": people["team"].id}],
    )
    order = _order(client, people["h"]["requester"], item["id"], {"quota_gb": 10})
    line_id = order["items"][0]["id"]
    path = f"/api/v1/catalogue-request-items/{line_id}"
    h = people["h"]
    assert client.patch(path, headers=h["requester"], json={"fields": {"quota_gb": 20}}).status_code == 403
    bad = (
        ({"quota_gb": 500}, "quota_gb"),
        ({"quota_gb": None}, "quota_gb"),
        ({"shared_with": 999999}, "shared_with"),
        ({"colour": "red"}, "colour"),
    )
    for fields, name in bad:
        refused = client.patch(path, headers=h["tech"], json={"fields": fields})
        assert refused.status_code == 422 and name in refused.json["errors"]["fields"], refused.json
    assert client.get(path, headers=h["requester"]).json["fields"] == {"quota_gb": 10}
    changed = client.patch(path, headers=h["tech"], json={"fields": {"quota_gb": 20, "shared_with": people["team"].id}})
    assert changed.status_code == 200 and changed.json["fields"] == {"quota_gb": 20, "shared_with": people["team"].id}
    ticket = client.get(f"/api/v1/tickets/{order['id']}", headers=admin).json
    assert ticket["custom_fields"]["quota_gb"] == 20
    _complete(client, h["tech"], order["items"][0]["tasks"][0]["id"])
    assert client.patch(path, headers=h["tech"], json={"fields": {"quota_gb": 30}}).status_code == 409


def test_a_request_canceled_through_its_ticket_takes_no_more_work(client, admin, make, people):
    item = _item(
        client,
        admin,
        name="Monitor",
        approval_steps=[{"kind": "manager"}],
        tasks=[{"title": "Ship it", "team_id": people["team"].id}],
    )
    h = people["h"]
    waiting = _order(client, h["requester"], item["id"])
    fulfilling = _order(client, h["requester"], item["id"])
    _decide(client, h["manager"], fulfilling["items"][0]["approvals"][0]["id"])
    for order in (waiting, fulfilling):
        canceled = client.post(
            f"/api/v1/tickets/{order['id']}/transitions", headers=h["requester"], json={"to": "canceled", "note": "no"}
        )
        assert canceled.status_code == 200, canceled.json
        assert _get_order(client, h["requester"], order["id"])["stage"] == "canceled"
    assert client.get(APPROVALS, headers=h["manager"]).json == []
    assert client.get(TASKS, headers=h["tech"]).json == []
    _decide(client, h["manager"], waiting["items"][0]["approvals"][0]["id"], status=409)
    _complete(client, h["tech"], fulfilling["items"][0]["tasks"][0]["id"], status=409)


def test_items_are_changed_with_if_match_and_deleted_only_when_never_ordered(client, admin, people):
    item = _item(client, admin, name="Headset")
    got = client.get(f"{ITEMS}/{item['id']}", headers=admin)
    stale = client.patch(f"{ITEMS}/{item['id']}", headers={**admin, "If-Match": '"nope"'}, json={"category": "Audio"})
    assert stale.status_code == 412
    changed = client.patch(
        f"{ITEMS}/{item['id']}", headers={**admin, "If-Match": got.headers["ETag"]}, json={"category": "Audio"}
    )
    assert changed.status_code == 200 and changed.json["category"] == "Audio" and changed.json["name"] == "Headset"
    _order(client, people["h"]["requester"], item["id"])
    assert client.delete(f"{ITEMS}/{item['id']}", headers=admin).status_code == 409
    retired = client.patch(f"{ITEMS}/{item['id']}", headers=admin, json={"active": False})
    assert retired.json["active"] is False
    _order(client, people["h"]["requester"], item["id"], status=403)
    unused = _item(client, admin, name="Unused")
    assert client.delete(f"{ITEMS}/{unused['id']}", headers=admin).status_code == 204
    assert client.get(f"{ITEMS}/{unused['id']}", headers=admin).status_code == 404
