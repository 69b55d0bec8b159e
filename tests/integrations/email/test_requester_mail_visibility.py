"""Mail from a requester never ties its ticket to a ticket it may not see: quoting someone else's
ticket number neither threads into it nor links to it, and a reply into a closed thread that is not
its own opens a fresh ticket linked to nothing. CIs the mail names are still linked, for agents;
the requester is shown only that there are more."""

from __future__ import annotations

from sqlalchemy import func, select


def mail(n, sender, subject, body, extra="") -> bytes:
    return (
        f"From: {sender}\r\nTo: incidents@cairn.test\r\nSubject: {subject}\r\nMessage-ID: <vis-{n}@example.com>\r\n"
        f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def _ticket_of(client, admin, answer) -> int:
    detail = client.get(f"/api/v1/inbound-email/{answer['id']}", headers=admin).get_json()
    assert detail["status"] == "processed", detail
    return detail["ticket_id"], detail["outcome"]


def _links(db, ticket_id):
    from tickets.models import TicketLink

    return db.session.scalars(
        select(TicketLink).where((TicketLink.source_id == ticket_id) | (TicketLink.target_id == ticket_id))
    ).all()


def test_quoting_someone_elses_ticket_links_nothing_and_shows_nothing(client, make, db, post_mail, admin):
    from tickets.models import TicketComment

    rita = make.user("requester", email="rita@example.com")
    agent = make.headers("agent")
    switch = make.ci("network_switch", name="core-sw-01", asset_tag="NET-0001")
    theirs = client.post(
        "/api/v1/tickets",
        headers=agent,
        json={"kind": "incident", "title": "Core switch down zqagent", "ci_ids": [switch.id]},
    ).get_json()

    answer = post_mail(
        mail(1, "rita@example.com", f"Question about [{theirs['number']}]", "Is NET-0001 why my mail is slow?")
    )
    new_id, outcome = _ticket_of(client, admin, answer)
    assert new_id != theirs["id"] and outcome == "new_ticket"
    assert _links(db, new_id) == []  # no related link to a ticket the requester may not see
    assert db.session.scalar(select(func.count()).where(TicketComment.ticket_id == theirs["id"])) == 0

    rita_headers = make.headers(user=rita)
    for url in (f"/api/v1/tickets/{new_id}", f"/api/v1/tickets/{new_id}/links", f"/api/v1/tickets/{new_id}/cis"):
        response = client.get(url, headers=rita_headers)
        assert response.status_code == 200, response.get_json()
        text = response.get_data(as_text=True)
        for foreign in ("core-sw-01", "zqagent", f'"id": {theirs["id"]},', f'"ci_id": {switch.id}'):
            assert foreign not in text, (url, foreign, text)
    mine = client.get(f"/api/v1/tickets/{new_id}", headers=rita_headers).get_json()
    assert mine["ci_ids"] == [] and mine["hidden_ci_count"] == 1
    cis = client.get(f"/api/v1/tickets/{new_id}/cis", headers=rita_headers).get_json()
    assert [(c["ci_id"], c["ci"]) for c in cis] == [(None, {"id": None, "visible": False})]
    # The agent sees the CI the mail named.
    seen = client.get(f"/api/v1/tickets/{new_id}/cis", headers=agent).get_json()
    assert [c["ci"]["name"] for c in seen] == ["core-sw-01"]


def test_a_requester_quoting_its_own_ticket_still_threads_or_links(client, make, db, post_mail, admin):
    make.user("requester", email="rita@example.com")
    first, _ = _ticket_of(client, admin, post_mail(mail(1, "rita@example.com", "VPN down", "It is down.")))
    from tickets.models import Ticket

    number = db.session.get(Ticket, first).number
    again, outcome = _ticket_of(
        client, admin, post_mail(mail(2, "rita@example.com", f"Re: [{number}] VPN down", "Still down."))
    )
    assert again == first and outcome == "comment"


def test_a_reply_into_a_closed_thread_not_their_own_links_nothing(client, make, db, post_mail, admin):
    make.user("requester", email="olga@example.com")
    make.user("requester", email="rita@example.com")
    olgas, _ = _ticket_of(client, admin, post_mail(mail(1, "olga@example.com", "Printer jammed", "Jammed.")))
    agent = make.headers("agent")
    for to, body in (("resolved", {"note": "fixed", "resolution_code": "fixed"}), ("closed", {})):
        moved = client.post(f"/api/v1/tickets/{olgas}/transitions", headers=agent, json={"to": to, **body})
        assert moved.status_code == 200, moved.get_json()
    reply = mail(2, "rita@example.com", "Re: Printer jammed", "Mine too.", extra="In-Reply-To: <vis-1@example.com>\r\n")
    new_id, outcome = _ticket_of(client, admin, post_mail(reply))
    assert new_id != olgas and outcome == "new_ticket"
    assert _links(db, new_id) == []
