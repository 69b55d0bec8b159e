"""The requester portal: own tickets only, raising against own assets, public replies only."""

from __future__ import annotations

from sqlalchemy import select

from tests.web.pages import post, sign_in
from tickets.models import Ticket, TicketCI
from tickets.services import add_comment, create_ticket


def test_a_requester_raises_a_request_against_their_own_phone(client, make, db):
    requester = make.user("requester", name="Rita Requester")
    phone = make.ci("mobile_phone", name="Rita's iPhone", assigned_to_id=requester.id)
    make.ci("laptop", name="Someone else's laptop")
    sign_in(client, requester)
    form = client.get("/portal/new?kind=request").get_data(as_text=True)
    assert "Rita&#39;s iPhone" in form and "Someone else" not in form
    response = post(
        client,
        "/portal/new",
        {
            "kind": "request",
            "title": "New SIM please",
            "description": "<b>roaming</b>",
            "ci_id": str(phone.id),
            "urgency": "3",
        },
    )
    assert response.status_code == 302
    ticket = db.session.scalar(select(Ticket).where(Ticket.title == "New SIM please"))
    assert ticket.kind == "request" and ticket.requester_id == requester.id
    assert db.session.scalar(select(TicketCI.ci_id).where(TicketCI.ticket_id == ticket.id)) == phone.id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "New SIM please" in page and "&lt;b&gt;roaming&lt;/b&gt;" in page


def test_a_requester_cannot_raise_against_someone_elses_asset_or_a_change(client, make, db):
    requester = make.user("requester")
    other = make.ci("laptop", name="Not mine")
    sign_in(client, requester)
    before = db.session.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
    bad_ci = post(client, "/portal/new", {"kind": "incident", "title": "x", "ci_id": str(other.id)})
    assert bad_ci.status_code == 422
    change = post(client, "/portal/new", {"kind": "change", "title": "x"})
    assert change.status_code in (403, 422)
    for data in ({"kind": "incident", "title": ""}, {"kind": "incident", "title": "x" * 300},
                 {"kind": "incident", "title": "x", "urgency": "9"}, {"kind": "incident", "title": "x", "ci_id": "abc"},
                 {"kind": "nonsense", "title": "x"}):  # fmt: skip
        assert post(client, "/portal/new", data).status_code in (403, 422), data
    assert db.session.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1)) == before


def test_a_requester_sees_public_replies_but_not_internal_notes_nor_others_tickets(client, make, db):
    requester = make.user("requester")
    agent = make.user("agent")
    mine = create_ticket({"kind": "incident", "title": "My screen flickers"}, requester)
    add_comment(mine, "Please try another cable.", False, agent)
    add_comment(mine, "Probably the GPU, order one.", True, agent)
    theirs = create_ticket({"kind": "incident", "title": "Somebody else's"}, make.user("requester"))
    db.session.commit()
    sign_in(client, requester)
    listing = client.get("/portal").get_data(as_text=True)
    assert "My screen flickers" in listing and "Somebody else" not in listing
    page = client.get(f"/portal/tickets/{mine.id}").get_data(as_text=True)
    assert "Please try another cable." in page and "GPU" not in page
    assert client.get(f"/portal/tickets/{theirs.id}").status_code == 404
    # a ticket's one address leads a requester into the portal, where others' tickets are 404
    assert client.get(f"/tickets/{mine.id}").headers["Location"] == f"/portal/tickets/{mine.id}"
    assert client.get(f"/tickets/{theirs.id}", follow_redirects=True).status_code == 404


def test_a_requester_replies_and_script_stays_text(client, make, db):
    requester = make.user("requester")
    ticket = create_ticket({"kind": "incident", "title": "Mouse"}, requester)
    db.session.commit()
    sign_in(client, requester)
    response = post(client, f"/portal/tickets/{ticket.id}/comments", {"body": "<script>alert(1)</script> still broken"})
    assert response.status_code == 302
    page = client.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; still broken" in page and "<script>alert" not in page
    empty = post(client, f"/portal/tickets/{ticket.id}/comments", {"body": ""})
    assert empty.status_code == 422
    other = create_ticket({"kind": "incident", "title": "Other"}, make.user("requester"))
    db.session.commit()
    assert post(client, f"/portal/tickets/{other.id}/comments", {"body": "hi"}).status_code == 404
