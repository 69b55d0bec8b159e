"""Ticket categories and subcategories per kind (issue 18): admins write them, tickets take one of
their kind (with its default team), lists filter by it, a category in use is deactivated, not deleted."""

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from tickets import categories
from tickets.models import TicketCategory


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _category(client, admin, **fields):
    body = {"name": "hardware", "label": "Hardware", "kind": "incident", **fields}
    response = client.post("/api/v1/ticket-categories", headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_a_ticket_takes_a_category_and_its_default_team(client, admin, make, db):
    team = make.team("Desktop support")
    hardware = _category(client, admin, default_team_id=team.id)
    laptop = _category(client, admin, name="laptop", label="Laptop", parent_id=hardware["id"])
    assert laptop["path"] == "Hardware > Laptop" and laptop["default_team"] is None
    assert hardware["default_team"] == {"id": team.id, "name": "Desktop support"}

    made = client.post(
        "/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "Screen dead", "category_id": laptop["id"]}
    )
    assert made.status_code == 201, made.json
    ticket = made.json
    # No team sent: the subcategory has none, its category's default team takes it.
    assert ticket["team_id"] == team.id
    assert ticket["category_id"] == laptop["id"]
    assert ticket["category"] == {"id": laptop["id"], "name": "laptop", "label": "Laptop"}
    other_team = make.team()
    kept = client.post(
        "/api/v1/tickets",
        headers=admin,
        json={"kind": "incident", "title": "Keyboard", "category_id": hardware["id"], "team_id": other_team.id},
    ).json
    assert kept["team_id"] == other_team.id  # a team sent wins
    plain = client.post("/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "Other"}).json
    assert plain["category"] is None and plain["team_id"] is None

    in_hardware = client.get(f"/api/v1/tickets?category_id={hardware['id']}", headers=admin).json
    assert {t["id"] for t in in_hardware} == {ticket["id"], kept["id"]}  # the category and its subcategories
    in_laptop = client.get(f"/api/v1/tickets?category_id={laptop['id']}", headers=admin).json
    assert [t["id"] for t in in_laptop] == [ticket["id"]]

    moved = client.patch(f"/api/v1/tickets/{plain['id']}", headers=admin, json={"category_id": hardware["id"]})
    assert moved.status_code == 200 and moved.json["category_id"] == hardware["id"]
    entry = db.session.scalars(
        select(ChangeLog)
        .where(ChangeLog.object_type == "ticket", ChangeLog.object_id == plain["id"])
        .order_by(ChangeLog.id.desc())
    ).first()
    assert entry.changes["category_id"] == [None, hardware["id"]]
    created = db.session.scalars(select(ChangeLog).where(ChangeLog.object_type == "ticket_category")).all()
    assert [e.action for e in created] == ["create", "create"]


def test_a_ticket_in_a_category_it_may_not_take(client, admin, make, db):
    hardware = _category(client, admin)
    request_kind = _category(client, admin, name="access", label="Access", kind="request")
    old = _category(client, admin, name="old", label="Old", active=False)
    under_old = _category(client, admin, name="printer", label="Printer", parent_id=old["id"])
    before = _count(db, ChangeLog)
    for category_id, words in (
        (request_kind["id"], "for request tickets"),
        (old["id"], "inactive"),
        (under_old["id"], "inactive"),
        (999_999, "No ticket category"),
    ):
        response = client.post(
            "/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "x", "category_id": category_id}
        )
        assert response.status_code == 422 and words in response.json["errors"]["category_id"][0], response.json
    assert _count(db, ChangeLog) == before
    ticket = client.post(
        "/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "x", "category_id": hardware["id"]}
    ).json
    wrong = client.patch(f"/api/v1/tickets/{ticket['id']}", headers=admin, json={"category_id": request_kind["id"]})
    assert wrong.status_code == 422 and "category_id" in wrong.json["errors"]
    assert client.get(f"/api/v1/tickets/{ticket['id']}", headers=admin).json["category_id"] == hardware["id"]


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"kind": "outage"}, 422, "kind"),
        ({"name": "Hard Ware"}, 422, "name"),
        ({"label": ""}, 422, "label"),
        ({"default_team_id": 999_999}, 422, "default_team_id"),
        ({"parent_id": 999_999}, 422, "parent_id"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_categories_write_nothing(client, admin, db, fields, status, field):
    before = (_count(db, TicketCategory), _count(db, ChangeLog))
    body = {"name": "hardware", "label": "Hardware", "kind": "incident", **fields}
    response = client.post("/api/v1/ticket-categories", headers=admin, json=body)
    assert response.status_code == status and field in response.json["errors"], response.json
    assert (_count(db, TicketCategory), _count(db, ChangeLog)) == before


def test_subcategories_stay_in_their_kind_and_two_levels(client, admin, db):
    hardware = _category(client, admin)
    laptop = _category(client, admin, name="laptop", label="Laptop", parent_id=hardware["id"])
    change = _category(client, admin, name="network", label="Network", kind="change")
    before = _count(db, TicketCategory)
    other_kind = client.post(
        "/api/v1/ticket-categories",
        headers=admin,
        json={"name": "wan", "label": "WAN", "kind": "change", "parent_id": hardware["id"]},
    )
    assert other_kind.status_code == 422 and "kind incident" in other_kind.json["errors"]["parent_id"][0]
    third_level = client.post(
        "/api/v1/ticket-categories",
        headers=admin,
        json={"name": "battery", "label": "Battery", "kind": "incident", "parent_id": laptop["id"]},
    )
    assert third_level.status_code == 422 and "subcategory" in third_level.json["errors"]["parent_id"][0]
    duplicate = client.post(
        "/api/v1/ticket-categories", headers=admin, json={"name": "hardware", "label": "Again", "kind": "incident"}
    )
    assert duplicate.status_code == 409
    assert _count(db, TicketCategory) == before
    # The same name in another kind is another category.
    assert _category(client, admin, kind="request")["kind"] == "request"
    moved = client.patch(f"/api/v1/ticket-categories/{hardware['id']}", headers=admin, json={"parent_id": change["id"]})
    assert moved.status_code == 422


def test_deleting_a_category_in_use_is_refused(client, admin, db):
    hardware = _category(client, admin)
    laptop = _category(client, admin, name="laptop", label="Laptop", parent_id=hardware["id"])
    client.post("/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "x", "category_id": laptop["id"]})
    used = client.delete(f"/api/v1/ticket-categories/{laptop['id']}", headers=admin)
    assert used.status_code == 409 and "1 tickets" in used.json["detail"] and "deactivate" in used.json["detail"]
    parent = client.delete(f"/api/v1/ticket-categories/{hardware['id']}", headers=admin)
    assert parent.status_code == 409 and "1 subcategories" in parent.json["detail"]
    off = client.patch(f"/api/v1/ticket-categories/{laptop['id']}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json["active"] is False
    spare = _category(client, admin, name="spare", label="Spare")
    assert client.delete(f"/api/v1/ticket-categories/{spare['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/ticket-categories/{spare['id']}", headers=admin).status_code == 404
    actions = db.session.scalars(
        select(ChangeLog.action).where(ChangeLog.object_type == "ticket_category").order_by(ChangeLog.id)
    ).all()
    assert actions == ["create", "create", "update", "create", "delete"]


def test_who_reads_and_writes_categories(client, admin, make):
    hardware = _category(client, admin)
    _category(client, admin, name="old", label="Old", active=False)
    _category(client, admin, name="network", label="Network", kind="change")
    agent, requester = make.headers("agent"), make.headers("requester")
    assert (
        client.post(
            "/api/v1/ticket-categories", headers=agent, json={"name": "x", "label": "X", "kind": "incident"}
        ).status_code
        == 403
    )
    assert len(client.get("/api/v1/ticket-categories", headers=agent).json) == 3
    seen = client.get("/api/v1/ticket-categories", headers=requester).json
    assert [c["name"] for c in seen] == ["hardware"]  # active, and of the kinds a requester opens
    mine = client.post(
        "/api/v1/tickets", headers=requester, json={"kind": "incident", "title": "x", "category_id": hardware["id"]}
    )
    assert mine.status_code == 201 and mine.json["category"]["name"] == "hardware"
    listed = client.get("/api/v1/ticket-categories?kind=incident&active=true&parent_id=0", headers=admin).json
    assert [c["name"] for c in listed] == ["hardware"]


def test_the_tree_per_kind(client, admin, db):
    hardware = _category(client, admin)
    _category(client, admin, name="laptop", label="Laptop", parent_id=hardware["id"])
    _category(client, admin, name="access", label="Access", kind="request")
    tree = categories.tree()
    assert [(c.name, [s.name for s in subs]) for c, subs in tree["incident"]] == [("hardware", ["laptop"])]
    assert [c.name for c, _ in tree["request"]] == ["access"] and tree["change"] == []


def test_the_cli_adds_and_lists_categories(app, make):
    team = make.team("Service desk")
    runner = app.test_cli_runner()
    added = runner.invoke(args=["ticket-categories", "add", "hardware", "--kind", "incident", "--label", "Hardware",
                                "--team", "Service desk"])  # fmt: skip
    assert added.exit_code == 0, added.output
    parent_id = int(added.output.rsplit("id ", 1)[1].rstrip(")\n"))
    sub = runner.invoke(args=["ticket-categories", "add", "laptop", "--kind", "incident", "--label", "Laptop",
                              "--parent", str(parent_id)])  # fmt: skip
    assert sub.exit_code == 0, sub.output
    wrong = runner.invoke(args=["ticket-categories", "add", "wan", "--kind", "change", "--label", "WAN",
                                "--parent", str(parent_id)])  # fmt: skip
    assert wrong.exit_code == 1 and "parent_id" in wrong.output
    assert runner.invoke(args=["ticket-categories", "add", "x", "--kind", "incident", "--label", "X",
                               "--team", "Nobody"]).exit_code == 1  # fmt: skip
    listed = runner.invoke(args=["ticket-categories", "list", "--kind", "incident"]).output.splitlines()
    assert listed[0].endswith(f"hardware\tHardware\tteam {team.name}") and "\t  " in listed[1]
    assert "laptop\tLaptop" in listed[1] and len(listed) == 2
