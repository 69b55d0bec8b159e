"""The CI class and ticket category admin pages with Flask's test client: only admins, every form's
refusal changes nothing, bad input is never a 500, and a ticket's category is set from its page."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cmdb.models import CustomCIClass
from tests.web.pages import post, sign_in
from tickets.models import TicketCategory

PAGES = ("/admin/ci-classes", "/admin/ci-classes/server", "/admin/ticket-categories")


@pytest.fixture
def as_admin(client, make):
    sign_in(client, make.user("admin"))
    return client


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("role", ["agent", "change_manager", "auditor", "requester", "asset_manager"])
def test_only_admins(client, make, db, role):
    sign_in(client, make.user(role))
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    body = {"name": "pump", "label": "Pump", "parent": "printer"}
    assert post(client, "/admin/ci-classes", body).status_code == 403
    assert post(client, "/admin/ticket-categories", {"name": "x", "label": "X", "kind": "incident"}).status_code == 403
    assert (_count(db, CustomCIClass), _count(db, TicketCategory)) == (0, 0)


def test_the_pages_open_and_refuse_bad_input(as_admin, db):
    for path in PAGES:
        assert as_admin.get(path).status_code == 200, path
    assert as_admin.get("/admin/ci-classes/toaster").status_code == 404
    assert as_admin.get("/admin/ticket-categories/999999").status_code == 404
    for body, status in (
        ({"name": "Bad Name", "label": "x", "parent": "printer"}, 422),
        ({"name": "pump", "label": "x", "parent": "toaster"}, 422),
        ({"name": "pump", "label": "x", "parent": "printer", "own_relationship_types": "1",
          "relationship_types": ["nope"]}, 422),
        ({"name": "laptop", "label": "x", "parent": "printer"}, 409),
    ):  # fmt: skip
        response = post(as_admin, "/admin/ci-classes", body)
        assert response.status_code == status, response.get_data(as_text=True)[:300]
    for body in (
        {"name": "x", "label": "X", "kind": "outage"},
        {"name": "x", "label": "X", "kind": "incident", "parent_id": "abc"},
        {"name": "x", "label": "X", "kind": "incident", "default_team_id": "999999"},
        {"name": "X Y", "label": "X", "kind": "incident"},
    ):
        assert post(as_admin, "/admin/ticket-categories", body).status_code == 422, body
    assert (_count(db, CustomCIClass), _count(db, TicketCategory)) == (0, 0)
    for path in ("/admin/ci-classes/server", "/admin/ci-classes/server/delete"):
        refused = post(as_admin, path, {"label": "Box", "parent": "printer"}, follow_redirects=True)
        assert "built-in class" in refused.get_data(as_text=True)


def test_a_class_is_added_edited_and_deleted_from_the_pages(as_admin):
    created = post(as_admin, "/admin/ci-classes", {"name": "pump", "label": "Pump", "parent": "printer"})
    assert created.status_code == 302 and created.headers["Location"].endswith("/admin/ci-classes/pump")
    saved = post(
        as_admin,
        "/admin/ci-classes/pump",
        {"label": "Infusion pump", "parent": "printer", "category": "mobile", "own_relationship_types": "1",
         "relationship_types": ["connected_to"]},
    )  # fmt: skip
    assert saved.status_code == 302
    page = as_admin.get("/admin/ci-classes").get_data(as_text=True)
    assert "Infusion pump" in page and "mobile" in page
    answer = as_admin.get("/admin/ci-classes/pump").get_data(as_text=True)
    assert 'value="connected_to" selected' in answer
    assert post(as_admin, "/admin/ci-classes/pump/delete").status_code == 302
    assert as_admin.get("/admin/ci-classes/pump").status_code == 404


def test_a_ticket_category_is_set_from_the_ticket_page(as_admin, make, db):
    from tickets.categories import create_category
    from tickets.services import create_ticket

    category = create_category({"name": "network", "label": "Network", "kind": "incident"})
    other_kind = create_category({"name": "access", "label": "Access", "kind": "request"})
    ticket = create_ticket({"kind": "incident", "title": "Slow"}, None)
    db.session.commit()
    page = as_admin.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert ">Network</option>" in page and ">Access</option>" not in page  # its kind only
    form = {"version": str(ticket.version), "category_id": str(other_kind.id), "team_id": "", "assignee_id": ""}
    refused = post(as_admin, f"/tickets/{ticket.id}/edit", form)
    assert refused.status_code == 422 and "for request tickets" in refused.get_data(as_text=True)
    saved = post(as_admin, f"/tickets/{ticket.id}/edit", {**form, "category_id": str(category.id)})
    assert saved.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(type(ticket), ticket.id).category_id == category.id


def test_a_requester_picks_a_category_on_the_portal(client, make, db):
    from tickets.categories import create_category
    from tickets.models import Ticket

    team = make.team("Service desk")
    wifi = create_category({"name": "wifi", "label": "Wi-Fi", "kind": "incident", "default_team_id": team.id})
    create_category({"name": "cab", "label": "CAB only", "kind": "change"})
    create_category({"name": "old", "label": "Old one", "kind": "incident", "active": False})
    db.session.commit()
    sign_in(client, make.user("requester"))
    form = client.get("/portal/new").get_data(as_text=True)
    assert ">Wi-Fi</option>" in form and "CAB only" not in form and "Old one" not in form
    sent = post(client, "/portal/new", {"kind": "incident", "title": "No Wi-Fi", "category_id": str(wifi.id)})
    assert sent.status_code == 302, sent.get_data(as_text=True)[:300]
    ticket = db.session.scalars(select(Ticket).where(Ticket.title == "No Wi-Fi")).one()
    assert (ticket.category_id, ticket.team_id) == (wifi.id, team.id)
    wrong = post(client, "/portal/new", {"kind": "request", "title": "Wrong", "category_id": str(wifi.id)})
    assert wrong.status_code == 422 and "for incident tickets" in wrong.get_data(as_text=True)
