"""The catalogue's pages with Flask's test client: who may open which, the admin form (bad JSON and
bad references refused, nothing saved), ordering with the custom-field form (bad values shown next
to their inputs), approving and completing through the forms, CSRF on every form."""

from __future__ import annotations

from sqlalchemy import func, select

from cairn.directory.models import DirectoryProfile
from tests.web.pages import csrf_token, post, sign_in
from tickets.catalogue.models import CatalogueApprovalStep, CatalogueItem, CatalogueTask
from tickets.catalogue.services import save_item
from tickets.models import Ticket


def _setup(make, db):
    from cmdb.custom_fields.services import create_definition

    create_definition(
        {
            "name": "seats",
            "label": "Seats",
            "type": "integer",
            "applies_to": {"ticket_kinds": ["request"]},
            "validation": {"min": 1, "max": 10},
        }
    )
    manager = make.user("requester", name="Mia Manager")
    requester = make.user("requester", name="Rob Requester")
    db.session.add(DirectoryProfile(user_id=requester.id, dn=f"cn=r{requester.id}", manager_id=manager.id))
    tech = make.user("agent", name="Tia Tech")
    team = make.team(members=[tech])
    item = save_item(
        {
            "name": "Design licence",
            "category": "Software",
            "form": [{"field": "seats", "required": True}],
            "approval_steps": [{"kind": "manager"}],
            "tasks": [{"title": "Assign the licence", "team_id": team.id}],
            "approval_mode": "sequential",
            "audience": {},
            "active": True,
        }
    )
    db.session.commit()
    return manager, requester, tech, team, item


def test_who_may_open_which_page(client, make, db):
    _, requester, tech, _, item = _setup(make, db)
    auditor = make.user("auditor")
    sign_in(client, requester)
    assert client.get("/portal/catalogue").status_code == 200
    assert client.get(f"/portal/catalogue/{item.id}").status_code == 200
    assert client.get("/approvals").status_code == 200
    assert client.get("/desk/fulfilment").status_code == 403
    assert client.get("/admin/catalogue").status_code == 403
    assert client.get("/portal/catalogue/999999").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    sign_in(client, auditor)
    assert client.get("/approvals").status_code == 403
    assert client.get("/portal/catalogue").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    sign_in(client, tech)
    assert client.get("/desk/fulfilment").status_code == 200
    assert client.get("/admin/catalogue/new").status_code == 403


def test_order_approve_and_fulfil_through_the_forms(client, make, db):
    manager, requester, tech, _, item = _setup(make, db)
    sign_in(client, requester)
    page = client.get("/portal/catalogue").get_data(as_text=True)
    assert "Design licence" in page and "Software" in page
    before = db.session.scalar(select(func.count()).select_from(Ticket))
    refused = post(client, f"/portal/catalogue/{item.id}", {"cf_seats": "40"})
    assert refused.status_code == 422
    assert "Must be at most 10." in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == before
    no_csrf = client.post(f"/portal/catalogue/{item.id}", data={"cf_seats": "2"})
    assert no_csrf.status_code == 400
    placed = post(client, f"/portal/catalogue/{item.id}", {"cf_seats": "2", "note": "for the new designer"})
    assert placed.status_code == 302
    ticket_id = int(placed.headers["Location"].rsplit("/", 1)[1])
    progress = client.get(f"/portal/orders/{ticket_id}").get_data(as_text=True)
    assert "awaiting approval" in progress and "Assign the licence" in progress

    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    sign_in(client, manager)
    waiting = client.get("/approvals").get_data(as_text=True)
    assert "Design licence" in waiting and "Rob Requester" in waiting
    assert client.get(f"/portal/orders/{ticket_id}").status_code == 404  # not the manager's ticket
    step_id = db.session.scalar(select(CatalogueApprovalStep.id).where(CatalogueApprovalStep.ticket_id == ticket_id))
    assert post(client, f"/approvals/{step_id}", {"decision": "approve"}).status_code == 302
    again = post(client, f"/approvals/{step_id}", {"decision": "approve"}, follow_redirects=True)
    assert "already" in again.get_data(as_text=True)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    sign_in(client, tech)
    queue = client.get("/desk/fulfilment").get_data(as_text=True)
    assert "Assign the licence" in queue
    task_id = db.session.scalar(select(CatalogueTask.id).where(CatalogueTask.ticket_id == ticket_id))
    assert post(client, f"/desk/fulfilment/{task_id}/complete", {"note": "assigned"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).state == "closed"
    assert "No fulfilment task is waiting." in client.get("/desk/fulfilment").get_data(as_text=True)


def test_admin_defines_an_item_and_bad_input_saves_nothing(client, make, db):
    _, _, _, team, _ = _setup(make, db)
    admin = make.user("admin")
    sign_in(client, admin)
    assert "Design licence" in client.get("/admin/catalogue").get_data(as_text=True)
    form = client.get("/admin/catalogue/new").get_data(as_text=True)
    assert 'name="form_field" value="seats"' in form
    count = db.session.scalar(select(func.count()).select_from(CatalogueItem))
    bad_json = post(client, "/admin/catalogue/new", {"name": "Mailbox", "approval_steps": "[{", "tasks": "[]"})
    assert bad_json.status_code == 422 and "Not valid JSON" in bad_json.get_data(as_text=True)
    bad_team = post(
        client,
        "/admin/catalogue/new",
        {"name": "Mailbox", "approval_steps": '[{"kind": "team", "team_id": 999999}]', "tasks": "[]"},
    )
    assert bad_team.status_code == 422 and "0.team_id" in bad_team.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CatalogueItem)) == count
    saved = post(
        client,
        "/admin/catalogue/new",
        {
            "name": "Mailbox",
            "category": "Accounts",
            "active": "1",
            "approval_mode": "any_of",
            "form_field": "seats",
            "required_seats": "1",
            "roles": "requester",
            "approval_steps": '[{"kind": "manager"}]',
            "tasks": f'[{{"title": "Create it", "team_id": {team.id}}}]',
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    item = db.session.scalar(select(CatalogueItem).where(CatalogueItem.name == "Mailbox"))
    assert item.form == [{"field": "seats", "required": True}]
    assert item.audience == {"roles": ["requester"], "team_ids": []}
    assert item.approval_mode == "any_of" and item.tasks[0]["team_id"] == team.id
    edit = post(
        client,
        f"/admin/catalogue/{item.id}",
        {"name": "Mailbox", "approval_steps": "[]", "tasks": "[]", "approval_mode": "sequential"},
    )
    assert edit.status_code == 302
    db.session.expire_all()
    assert db.session.get(CatalogueItem, item.id).active is False
