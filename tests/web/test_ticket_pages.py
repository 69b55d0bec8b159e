"""The ticket pages through Flask's test client: the list and its queues, filters and paging; the
ticket page (workflow moves by role, comments and internal notes, attachments, CIs, links, watchers,
assignment); a new ticket with its CI and requester pickers and the live priority; bad input."""

from __future__ import annotations

import io
import re
import zlib
from datetime import timedelta

from cairn.db import db as _db
from cairn.db import utcnow
from tests.web.pages import csrf_token, post, sign_in
from tickets import services, workflow
from tickets.models import Ticket, TicketAttachment, TicketComment

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    + b"\x00\x00\x00\rIDATx\x9c"
    + zlib.compress(b"\x00\x00\x00\x00\x00")[2:]
    + b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
ROW_LINK = re.compile(r'<td class="nowrap"><a href="/tickets/(\d+)">([A-Z]{3}\d+)</a>')
MOVES = re.compile(r'name="to" value="([a-z_]+)"')


def _open(user, kind="incident", title=None, **fields) -> Ticket:
    ticket = services.create_ticket({"kind": kind, "title": title or f"{kind} ticket", **fields}, user)
    _db.session.commit()
    return ticket


def _move(ticket, to, user, **body) -> Ticket:
    services.transition(ticket, to, body, user)
    _db.session.commit()
    return ticket


def _listed(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    return [number for _id, number in ROW_LINK.findall(response.get_data(as_text=True))]


def _moves(response) -> set[str]:
    return set(MOVES.findall(response.get_data(as_text=True)))


# ---------------------------------------------------------------------------------------------
# The list


def test_each_saved_queue_lists_its_tickets(client, make, agent):
    other = make.user("agent", name="Otto Other")
    mine_team = make.team("Desk", members=[agent])
    far_team = make.team("Far away", members=[other])
    mine = _open(agent, title="assigned to me", assignee_id=agent.id)
    team = _open(agent, title="my team's, nobody's", team_id=mine_team.id)
    far = _open(agent, title="another team's, nobody's", team_id=far_team.id)
    late = _open(agent, title="late, Otto's", assignee_id=other.id)
    late.sla_breached = True
    done = _move(_open(agent, title="done, mine", assignee_id=agent.id), "resolved", agent, note="ok",
                 resolution_code="fixed")  # fmt: skip
    _db.session.commit()
    sign_in(client, agent)

    def queue(name):
        return set(_listed(client.get(f"/tickets?queue={name}")))

    assert queue("mine") == {mine.number}
    assert queue("team") == {team.number}
    assert queue("unassigned") == {team.number, far.number}
    assert queue("breached") == {late.number}
    assert queue("open") == {mine.number, team.number, far.number, late.number}
    assert queue("all") == {mine.number, team.number, far.number, late.number, done.number}
    # no parameter at all: the open tickets, and the queue shown selected
    plain = client.get("/tickets")
    assert set(_listed(plain)) == queue("open")
    assert '<option value="open" selected>' in plain.get_data(as_text=True)


def test_filters_sort_and_paging_are_kept_in_the_url(signed_in, agent):
    incidents = [_open(agent, title=f"printer {i:02}") for i in range(27)]
    requests_ = [_open(agent, "request", title=f"laptop {i}") for i in range(3)]
    r = signed_in.get("/tickets?queue=all&kind=request&sort=number")
    assert _listed(r) == [t.number for t in requests_]
    assert _listed(signed_in.get("/tickets?queue=all&kind=request&sort=-number")) == [t.number for t in requests_][::-1]
    assert _listed(signed_in.get("/tickets?queue=all&q=LAPTOP 1")) == [requests_[1].number]
    assert _listed(signed_in.get(f"/tickets?queue=all&q={incidents[4].number.lower()}")) == [incidents[4].number]

    first = signed_in.get("/tickets?queue=all&kind=incident&sort=number")
    html = first.get_data(as_text=True)
    assert _listed(first) == [t.number for t in incidents[:25]]
    assert "27 tickets" in html
    # the pager's links keep every filter and the sort
    nxt = re.search(r'href="([^"]*page=2[^"]*)"', html).group(1).replace("&amp;", "&")
    for part in ("queue=all", "kind=incident", "sort=number", "page=2"):
        assert part in nxt
    assert _listed(signed_in.get(nxt)) == [t.number for t in incidents[25:]]
    every = signed_in.get("/tickets?queue=all&kind=incident&sort=number&per=50")
    assert _listed(every) == [t.number for t in incidents]
    # a page past the end shows the last one
    assert _listed(signed_in.get("/tickets?queue=all&kind=incident&sort=number&page=9")) == [
        t.number for t in incidents[25:]
    ]

    # htmx asks for the results only; the filter form is not sent again
    fragment = signed_in.get("/tickets?queue=all&kind=request", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and 'id="ticket-filters"' not in body
    assert "HX-Request" in fragment.headers["Vary"]
    assert len(_listed(fragment)) == 3
    assert fragment.headers["HX-Push-Url"] == "/tickets?queue=all&kind=request&sort=priority,resolution_due"
    # without JavaScript the form sends its empty fields too: the address is made short again
    r = signed_in.get("/tickets?queue=all&q=&kind=request&state=&priority=&per=25&page=1")
    assert r.status_code == 302
    assert r.location == "/tickets?queue=all&kind=request&sort=priority,resolution_due"
    # a bad filter asked for by htmx: the message where the results go
    bad = signed_in.get("/tickets?queue=all&priority=7", headers={"HX-Request": "true"})
    assert bad.status_code == 422 and bad.headers["HX-Retarget"] == "#ticket-results"
    assert "priority" in bad.get_data(as_text=True)
    # a history restore asks for the whole page
    restore = signed_in.get("/tickets?queue=all", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert 'id="ticket-filters"' in restore.get_data(as_text=True)


def test_list_filters_by_assignee_team_state_and_priority(signed_in, make, agent):
    team = make.team("Network", members=[agent])
    a = _open(agent, title="a", assignee_id=agent.id, team_id=team.id, impact=1, urgency=1)
    b = _open(agent, title="b")
    _move(b, "in_progress", agent)
    assert _listed(signed_in.get("/tickets?queue=all&assignee=me")) == [a.number]
    assert _listed(signed_in.get("/tickets?queue=all&assignee=none")) == [b.number]
    assert _listed(signed_in.get(f"/tickets?queue=all&team_id={team.id}")) == [a.number]
    assert _listed(signed_in.get("/tickets?queue=all&state=in_progress")) == [b.number]
    assert _listed(signed_in.get("/tickets?queue=all&priority=1")) == [a.number]


def test_the_list_is_for_staff_only(client, make):
    requester = make.user("requester")
    sign_in(client, requester)
    assert client.get("/tickets").status_code == 403
    assert client.get("/tickets/new").status_code == 403


# ---------------------------------------------------------------------------------------------
# The ticket page: workflow moves


def test_ticket_page_offers_exactly_the_moves_the_role_may_make(app, client, make, agent):
    ticket = _open(agent, title="VPN is down")
    sign_in(client, agent)
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ticket.number in html and "VPN is down" in html
    legal = set(services.allowed_moves(ticket, agent))
    assert _moves(page) == legal == {"in_progress", "on_hold", "resolved", "canceled"}
    assert 'id="comment-form"' in html

    _move(ticket, "resolved", agent, note="rebooted", resolution_code="fixed")
    page = client.get(f"/tickets/{ticket.id}")
    assert _moves(page) == {"in_progress", "closed"}
    assert ">Reopen</button>" in page.get_data(as_text=True)

    # auditors read tickets; they move nothing and write nothing
    auditor = app.test_client()
    sign_in(auditor, make.user("auditor"))
    page = auditor.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200 and _moves(page) == set()
    assert 'id="comment-form"' not in page.get_data(as_text=True)
    assert post(auditor, f"/tickets/{ticket.id}/move", {"to": "closed"}).status_code == 403
    assert post(auditor, f"/tickets/{ticket.id}/comments", {"body": "hi"}).status_code == 403
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).state == "resolved"

    # a change waiting for authorisation: only a change manager may schedule it
    start = utcnow() + timedelta(days=2)
    change = _open(agent, "change", title="Patch the core switch", planned_start=start,
                   planned_end=start + timedelta(hours=1))  # fmt: skip
    _move(change, "assess", agent)
    _move(change, "authorize", agent)
    assert "scheduled" not in _moves(client.get(f"/tickets/{change.id}"))
    manager = app.test_client()
    sign_in(manager, make.user("change_manager"))
    assert "scheduled" in _moves(manager.get(f"/tickets/{change.id}"))


def test_resolving_without_a_note_shows_the_error_and_changes_nothing(signed_in, agent):
    ticket = _open(agent, title="Mail is slow")
    before = ticket.version
    r = post(signed_in, f"/tickets/{ticket.id}/move", {"to": "resolved", "version": str(before)})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "needs a note" in html  # the service's message, next to the field
    assert 'id="note-error"' in html and 'aria-invalid="true"' in html
    assert re.search(r'<details class="move" open>\s*<summary class="button">Resolve', html)
    _db.session.expire_all()
    again = _db.session.get(Ticket, ticket.id)
    assert again.state == "new" and again.version == before and again.resolution_note is None


def test_resolving_with_a_note_works(signed_in, agent):
    ticket = _open(agent, title="Mail is slow")
    r = post(
        signed_in,
        f"/tickets/{ticket.id}/move",
        {"to": "resolved", "note": "Queue drained", "resolution_code": "fixed", "version": str(ticket.version)},
    )
    assert r.status_code == 302 and r.location.endswith(f"/tickets/{ticket.id}")
    _db.session.expire_all()
    done = _db.session.get(Ticket, ticket.id)
    assert (done.state, done.resolution_note, done.resolution_code) == ("resolved", "Queue drained", "fixed")
    html = signed_in.get(r.location).get_data(as_text=True)
    assert "is now resolved" in html and "Queue drained" in html


def test_a_hold_needs_its_reason_and_shows_it(signed_in, agent):
    ticket = _open(agent)
    assert post(signed_in, f"/tickets/{ticket.id}/move", {"to": "on_hold"}).status_code == 422
    r = post(signed_in, f"/tickets/{ticket.id}/move", {"to": "on_hold", "note": "Waiting for the vendor"})
    assert r.status_code == 302
    html = signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Waiting for the vendor" in html and "paused while on hold" in html


def test_a_move_on_a_ticket_changed_meanwhile_is_refused(signed_in, agent):
    ticket = _open(agent)
    seen = ticket.version
    _move(ticket, "in_progress", agent)  # someone else, meanwhile
    r = post(signed_in, f"/tickets/{ticket.id}/move", {"to": "on_hold", "note": "x", "version": str(seen)})
    assert r.status_code == 409
    assert "changed by someone else" in r.get_data(as_text=True)
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).state == "in_progress"


def test_a_move_whose_condition_is_unmet_says_what_is_missing(signed_in, agent):
    change = _open(agent, "change", title="Replace the firewall")
    _move(change, "assess", agent)
    r = post(signed_in, f"/tickets/{change.id}/move", {"to": "authorize", "version": str(change.version)})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Plan the window first" in html  # the service's field error, under the workflow buttons
    _db.session.expire_all()
    assert _db.session.get(Ticket, change.id).state == "assess"


# ---------------------------------------------------------------------------------------------
# Comments


def test_internal_note_is_shown_to_agents_marked_internal_and_hidden_from_the_requester(app, client, make, agent):
    requester = make.user("requester")
    ticket = _open(agent, requester_id=requester.id)
    sign_in(client, agent)
    r = post(client, f"/tickets/{ticket.id}/comments", {"body": "Suspect the RAID controller", "internal": "1"})
    assert r.status_code == 302
    r = post(client, f"/tickets/{ticket.id}/comments", {"body": "We are on it"})
    assert r.status_code == 302
    html = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    note = re.search(r'<article class="comment internal" id="comment-\d+">(.*?)</article>', html, re.S)
    assert note and "Suspect the RAID controller" in note.group(1) and "Internal note" in note.group(1)
    public = re.search(r'<article class="comment" id="comment-\d+">(.*?)</article>', html, re.S)
    assert public and "We are on it" in public.group(1)

    theirs = app.test_client()
    sign_in(theirs, requester)
    portal = theirs.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "We are on it" in portal and "RAID controller" not in portal


def test_script_in_a_comment_is_rendered_as_text(signed_in, agent):
    ticket = _open(agent, title="<b>bold</b> title")
    post(signed_in, f"/tickets/{ticket.id}/comments", {"body": "<script>alert('x')</script>"})
    html = signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<b>bold</b>" not in html


def test_comment_posted_with_htmx_comes_back_as_a_fragment(signed_in, agent):
    ticket = _open(agent)
    hx = {"HX-Request": "true"}
    r = post(signed_in, f"/tickets/{ticket.id}/comments", {"body": "first!", "internal": "1"}, headers=hx)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<html" not in html and 'class="comment internal"' in html and "first!" in html
    assert 'id="comment-count" class="count" hx-swap-oob="true">1<' in html  # the count follows
    assert 'id="no-comments" hx-swap-oob="delete"' in html
    # an empty one: its error beside the form (what was typed stays there), and no flash for later
    r = post(signed_in, f"/tickets/{ticket.id}/comments", {"body": ""}, headers=hx)
    assert r.status_code == 422
    assert r.headers["HX-Retarget"] == "#comment-feedback" and r.headers["HX-Reswap"] == "innerHTML"
    assert 'id="body-error"' in r.get_data(as_text=True)
    assert 'class="flash' not in signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert _db.session.query(TicketComment).filter_by(ticket_id=ticket.id).count() == 1


def test_a_closed_ticket_takes_no_comment(signed_in, agent):
    ticket = _open(agent)
    _move(ticket, "canceled", agent, note="duplicate call")
    page = signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert 'id="comment-form"' not in page
    r = post(signed_in, f"/tickets/{ticket.id}/comments", {"body": "late"})
    assert r.status_code == 409 and "takes no more comments" in r.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Attachments


def _upload(client, ticket, data, filename, content_type, token=None):
    return client.post(
        f"/tickets/{ticket.id}/attachments",
        data={
            "csrf_token": token or csrf_token(client, "/account"),
            "file": (io.BytesIO(data), filename, content_type),
        },
        content_type="multipart/form-data",
    )


def test_attachment_upload_and_download_with_safe_headers(app, signed_in, agent):
    ticket = _open(agent)
    r = _upload(signed_in, ticket, PNG, "screen.png", "image/png")
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    html = signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    link = re.search(rf'href="(/tickets/{ticket.id}/attachments/\d+)"[^>]*>screen.png<', html)
    assert link
    got = signed_in.get(link.group(1))
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]

    # an HTML page is never served as HTML
    page = b"<html><script>alert(1)</script></html>"
    assert _upload(signed_in, ticket, page, "evil.html", "text/html").status_code == 302
    evil = _db.session.query(TicketAttachment).filter_by(ticket_id=ticket.id, filename="evil.html").one()
    got = signed_in.get(f"/tickets/{ticket.id}/attachments/{evil.id}")
    assert not got.headers["Content-Type"].startswith("text/html")
    assert got.headers["Content-Disposition"].startswith("attachment")

    # another ticket's attachment is not reachable through this ticket
    other = _open(agent)
    assert signed_in.get(f"/tickets/{other.id}/attachments/{evil.id}").status_code == 404


def test_attachment_caps_and_missing_file(app, signed_in, agent, monkeypatch):
    ticket = _open(agent)
    monkeypatch.setitem(app.config, "CAIRN_ATTACHMENT_MAX_BYTES", 16)
    r = _upload(signed_in, ticket, b"x" * 17, "big.txt", "text/plain")
    assert r.status_code == 413 and "limited to" in r.get_data(as_text=True)
    r = _upload(signed_in, ticket, b"", "empty.txt", "text/plain")
    assert r.status_code == 422
    r = post(signed_in, f"/tickets/{ticket.id}/attachments", {})
    assert r.status_code == 422 and "Choose a file" in r.get_data(as_text=True)
    assert _db.session.query(TicketAttachment).filter_by(ticket_id=ticket.id).count() == 0


# ---------------------------------------------------------------------------------------------
# CSRF


def test_a_forged_post_without_the_csrf_token_is_rejected_and_changes_nothing(signed_in, agent):
    ticket = _open(agent)
    forged = signed_in.post(f"/tickets/{ticket.id}/move", data={"to": "in_progress"})
    assert forged.status_code == 400
    forged = signed_in.post(f"/tickets/{ticket.id}/comments", data={"body": "forged"})
    assert forged.status_code == 400
    forged = signed_in.post("/tickets/new", data={"kind": "incident", "title": "forged"})
    assert forged.status_code == 400
    forged = signed_in.post(f"/tickets/{ticket.id}/move", data={"to": "in_progress", "csrf_token": "not-the-token"})
    assert forged.status_code == 400
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).state == "new"
    assert _db.session.query(TicketComment).count() == 0
    assert _db.session.query(Ticket).filter_by(title="forged").count() == 0


# ---------------------------------------------------------------------------------------------
# Assignment and priority, CIs, links, watchers


def test_edit_assignment_and_priority_inline(signed_in, make, agent):
    team = make.team("Service Desk", members=[agent])
    outsider = make.user("agent")
    ticket = _open(agent, title="Slow VPN")
    r = post(
        signed_in,
        f"/tickets/{ticket.id}/edit",
        {"team_id": str(team.id), "assignee_id": str(agent.id), "impact": "1", "urgency": "2",
         "version": str(ticket.version)},
    )  # fmt: skip
    assert r.status_code == 302
    _db.session.expire_all()
    ticket = _db.session.get(Ticket, ticket.id)
    assert (ticket.team_id, ticket.assignee_id, ticket.priority) == (team.id, agent.id, workflow.priority_of(1, 2))

    # an assignee outside the team: the service's error, nothing saved
    r = post(signed_in, f"/tickets/{ticket.id}/edit", {"team_id": str(team.id), "assignee_id": str(outsider.id)})
    assert r.status_code == 422 and "not a member" in r.get_data(as_text=True)
    # a stale form
    r = post(signed_in, f"/tickets/{ticket.id}/edit", {"impact": "3", "urgency": "3", "version": "1"})
    assert r.status_code == 409
    _db.session.expire_all()
    ticket = _db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == agent.id and ticket.priority == 2

    # unassign, then "assign to me"
    assert post(signed_in, f"/tickets/{ticket.id}/edit", {"assignee_id": ""}).status_code == 302
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).assignee_id is None
    assert post(signed_in, f"/tickets/{ticket.id}/edit", {"assign": "me"}).status_code == 302
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).assignee_id == agent.id


def test_linked_cis_show_their_status_and_the_other_open_tickets_on_them(signed_in, make, agent):
    from relations.services import create_relationship

    switch = make.ci("network_switch", name="core-sw-09", status="deployed")
    server = make.ci("server", name="app-09", status="deployed")
    service = make.ci("business_service", name="Payroll", status="deployed")
    create_relationship({"source_id": server.id, "target_id": switch.id, "type": "connected_to"})
    create_relationship({"source_id": service.id, "target_id": server.id, "type": "depends_on"})
    _db.session.commit()
    ticket = _open(agent, title="Switch dead", ci_ids=[switch.id])
    other = _open(agent, title="Ports flapping", ci_ids=[switch.id], impact=1, urgency=1)
    html = signed_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    cis = html[html.index('id="cis"') : html.index('id="attachments"')]
    assert "core-sw-09" in cis and "status-deployed" in cis
    assert other.number in cis  # what else is open on it
    assert "Payroll" in cis  # a business service that depends on it


def test_link_and_unlink_a_ci_on_the_ticket_page(signed_in, make, agent):
    ci = make.ci("server", name="db-42", asset_tag="SRV-0042")
    ticket = _open(agent)
    # by what a person types (asset tag), without JavaScript
    assert post(signed_in, f"/tickets/{ticket.id}/cis", {"ci": "SRV-0042"}).status_code == 302
    assert _db.session.get(Ticket, ticket.id).ci_ids == [ci.id]
    # the typeahead offers it as a button of the same form
    suggest = signed_in.get("/tickets/suggest/cis?mode=add&ci=db-4").get_data(as_text=True)
    assert f'name="ci_id" value="{ci.id}"' in suggest
    r = post(signed_in, f"/tickets/{ticket.id}/cis", {"ci_id": str(ci.id)})
    assert r.status_code == 409  # already linked
    r = post(signed_in, f"/tickets/{ticket.id}/cis", {"ci": "no such thing"})
    assert r.status_code == 422 and "No CI is called" in r.get_data(as_text=True)
    assert post(signed_in, f"/tickets/{ticket.id}/cis/{ci.id}/remove").status_code == 302
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).ci_ids == []


def test_related_tickets_and_watchers(signed_in, agent):
    incident = _open(agent, title="App errors")
    problem = _open(agent, "problem", title="Memory leak")
    r = post(signed_in, f"/tickets/{incident.id}/links", {"type": "caused_by", "target": problem.number.lower()})
    assert r.status_code == 302
    html = signed_in.get(f"/tickets/{incident.id}").get_data(as_text=True)
    assert "caused by" in html and problem.number in html
    assert "causes" in signed_in.get(f"/tickets/{problem.id}").get_data(as_text=True)
    wrong = post(signed_in, f"/tickets/{incident.id}/links", {"type": "fixes", "target": problem.number})
    assert wrong.status_code == 422  # only a change fixes

    assert post(signed_in, f"/tickets/{incident.id}/watch", {"watch": "start"}).status_code == 302
    assert [w.user_id for w in services.watchers_of(incident)] == [agent.id]
    assert "Stop watching" in signed_in.get(f"/tickets/{incident.id}").get_data(as_text=True)
    assert post(signed_in, f"/tickets/{incident.id}/watch", {"watch": "start"}).status_code == 409
    assert post(signed_in, f"/tickets/{incident.id}/watch", {"watch": "stop"}).status_code == 302
    assert services.watchers_of(incident) == []


def test_history_and_probable_causes(signed_in, make, agent):
    from relations.services import create_relationship

    router = make.ci("router", name="edge-router")
    a, b = make.ci("server", name="a-1"), make.ci("server", name="b-1")
    for ci in (a, b):
        create_relationship({"source_id": ci.id, "target_id": router.id, "type": "connected_to"})
    _db.session.commit()
    first = _open(agent, title="a is down", ci_ids=[a.id])
    _open(agent, title="b is down", ci_ids=[b.id])
    _move(first, "in_progress", agent)
    html = signed_in.get(f"/tickets/{first.id}").get_data(as_text=True)
    history = html[html.index('id="history"') :]
    assert f"{first.number} new → in_progress" in history
    # probable causes load after the page (htmx), or inline without JavaScript
    assert f'hx-get="/tickets/{first.id}/causes"' in html
    fragment = signed_in.get(f"/tickets/{first.id}/causes", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "edge-router" in fragment and "explains 2 incidents" in fragment
    inline = signed_in.get(f"/tickets/{first.id}?causes=1").get_data(as_text=True)
    assert "edge-router" in inline


# ---------------------------------------------------------------------------------------------
# A new ticket


def test_new_ticket_with_a_picked_ci_a_requester_and_the_computed_priority(signed_in, make, agent):
    ci = make.ci("laptop", name="LT-0100", asset_tag="LT-0100")
    printer = make.ci("printer", name="PRN-07")
    requester = make.user("requester", email="grace@example.com", name="Grace Hopper")
    # the CI page's link pre-fills the CI
    form = signed_in.get(f"/tickets/new?ci_id={ci.id}&kind=incident").get_data(as_text=True)
    assert f'name="ci_ids" value="{ci.id}" checked' in form
    r = post(
        signed_in,
        "/tickets/new",
        {"kind": "incident", "title": "Screen flickers", "description": "Since Monday", "ci_ids": str(ci.id),
         "ci": "prn-07", "requester": "GRACE@example.com", "impact": "2", "urgency": "1"},
    )  # fmt: skip
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    ticket = _db.session.query(Ticket).filter_by(title="Screen flickers").one()
    assert r.location.endswith(f"/tickets/{ticket.id}")
    assert sorted(ticket.ci_ids) == sorted([ci.id, printer.id])
    assert ticket.requester_id == requester.id
    assert (ticket.impact, ticket.urgency, ticket.priority) == (2, 1, workflow.priority_of(2, 1))
    assert "is opened" in signed_in.get(r.location).get_data(as_text=True)


def test_new_ticket_errors_keep_what_was_typed(signed_in, make, agent):
    ci = make.ci("server", name="keep-me")
    form = {"kind": "incident", "title": "", "ci_ids": str(ci.id), "description": "Details"}
    r = post(signed_in, "/tickets/new", form)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'id="title-error"' in html and "Details" in html
    assert f'name="ci_ids" value="{ci.id}" checked' in html
    r = post(signed_in, "/tickets/new", {"kind": "incident", "title": "x", "requester": "nobody@nowhere"})
    assert r.status_code == 422 and "Nobody is called" in r.get_data(as_text=True)
    # every mistake at once: the pickers' lookups, the schema's and the service's
    r = post(signed_in, "/tickets/new", {"kind": "incident", "title": "", "requester": "nobody", "ci": "nothing"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'id="title-error"' in html and "Nobody is called" in html and "No CI is called" in html
    assert _db.session.query(Ticket).count() == 0


def test_pickers_suggest_and_pick(signed_in, make, agent):
    ci = make.ci("server", name="mailhub-01")
    person = make.user("requester", name="Linus Requester")
    cis = signed_in.get("/tickets/suggest/cis?ci=mailhub").get_data(as_text=True)
    assert f'hx-get="/tickets/pick/ci/{ci.id}"' in cis
    picked = signed_in.get(f"/tickets/pick/ci/{ci.id}").get_data(as_text=True)
    assert f'name="ci_ids" value="{ci.id}" checked' in picked and 'id="ci" name="ci"' in picked
    people = signed_in.get("/tickets/suggest/users?requester=linus").get_data(as_text=True)
    assert f'hx-get="/tickets/pick/user/{person.id}"' in people
    chosen = signed_in.get(f"/tickets/pick/user/{person.id}").get_data(as_text=True)
    assert f'name="requester_id" value="{person.id}" checked' in chosen
    assert "mailhub" not in signed_in.get("/tickets/suggest/cis?ci=m").get_data(as_text=True)  # two letters first


def test_priority_preview_is_the_workflow_matrix(signed_in):
    for impact in (1, 2, 3):
        for urgency in (1, 2, 3):
            r = signed_in.get(f"/tickets/priority?impact={impact}&urgency={urgency}&kind=incident")
            assert r.status_code == 200
            assert f">P{workflow.priority_of(impact, urgency)}<" in r.get_data(as_text=True)
    assert "respond within 15 minutes" in signed_in.get("/tickets/priority?impact=1&urgency=1").get_data(as_text=True)
    assert signed_in.get("/tickets/priority?impact=0&urgency=1").status_code == 422
    assert signed_in.get("/tickets/priority?impact=x").status_code == 422


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_never_gives_a_500(signed_in, make, agent):
    ticket = _open(agent)
    big = "9" * 40
    gets = [
        "/tickets?priority=9", "/tickets?page=abc", f"/tickets?page={big}", "/tickets?sort=evil",
        "/tickets?q=" + "x" * 300, "/tickets?queue=nope", f"/tickets?team_id={big}", "/tickets?assignee=abc",
        f"/tickets?assignee={big}", "/tickets?open=maybe", "/tickets?kind=incident,nope", "/tickets?per=7",
        f"/tickets/{big}", "/tickets/0", f"/tickets/{ticket.id}/attachments/{big}",
        f"/tickets/{ticket.id}/causes", "/tickets/priority", "/tickets/suggest/cis?ci=" + "%" * 500,
        f"/tickets/suggest/cis?ci={big}", "/tickets/suggest/users?requester=" + "_" * 500, f"/tickets/pick/ci/{big}",
        f"/tickets/pick/user/{big}", f"/tickets/new?ci_id={big}&kind=nope", "/tickets/new?ci_id=abc",
        f"/tickets/{ticket.id}?history=all&causes=1", "/tickets?page=²&team_id=²", "/tickets/suggest/cis?ci=²",
        "/tickets/new?ci_id=²",
    ]  # fmt: skip
    for url in gets:
        r = signed_in.get(url)
        assert r.status_code < 500, (url, r.status_code)
    assert signed_in.get("/tickets?priority=9").status_code == 422
    assert signed_in.get(f"/tickets/{big}").status_code == 404

    posts = [
        (f"/tickets/{ticket.id}/move", {"to": "nowhere"}),
        (f"/tickets/{ticket.id}/move", {}),
        (f"/tickets/{ticket.id}/move", {"to": "resolved", "note": "x" * 5000, "resolution_code": "fixed"}),
        (f"/tickets/{ticket.id}/move", {"to": "resolved", "note": "ok", "resolution_code": "nope"}),
        (f"/tickets/{ticket.id}/move", {"to": "on_hold", "note": "x", "version": "abc"}),
        (f"/tickets/{big}/move", {"to": "in_progress"}),
        (f"/tickets/{ticket.id}/edit", {"impact": "9", "urgency": "x"}),
        (f"/tickets/{ticket.id}/edit", {"team_id": "abc", "assignee_id": big}),
        (f"/tickets/{ticket.id}/edit", {"team_id": "99999999", "assignee_id": "99999999"}),
        (f"/tickets/{ticket.id}/comments", {"body": "x" * 30000}),
        (f"/tickets/{ticket.id}/comments", {"body": "   "}),
        (f"/tickets/{ticket.id}/cis", {"ci_id": big}),
        (f"/tickets/{ticket.id}/cis", {"ci": big}),
        (f"/tickets/{ticket.id}/cis/{big}/remove", {}),
        (f"/tickets/{ticket.id}/cis/12345/remove", {}),
        (f"/tickets/{ticket.id}/links", {"type": "nope", "target": "x"}),
        (f"/tickets/{ticket.id}/links", {"type": "related", "target": big}),
        (f"/tickets/{ticket.id}/links", {"type": "related", "target": ticket.number}),
        (f"/tickets/{ticket.id}/watch", {"watch": "stop"}),
        ("/tickets/new", {}),
        ("/tickets/new", {"kind": "nope", "title": "x"}),
        ("/tickets/new", {"kind": "incident", "title": "x" * 500}),
        ("/tickets/new", {"kind": "incident", "title": "x", "ci_ids": ["abc", big, "0"]}),
        ("/tickets/new", {"kind": "incident", "title": "x", "impact": "high", "urgency": big}),
        ("/tickets/new", {"kind": "incident", "title": "x", "team_id": big, "assignee_id": "me"}),
        ("/tickets/new", {"kind": "incident", "title": "x", "requester_id": "abc"}),
        ("/tickets/new", {"kind": "incident", "title": "x", "ci": "%"}),
        ("/tickets/new", {"kind": "problem", "title": "x", "assignee_id": "0"}),
        ("/tickets/new", {"kind": "incident", "title": "x", "impact": "²", "team_id": "٣", "ci_ids": "¹"}),
        (f"/tickets/{ticket.id}/edit", {"impact": "²", "assignee_id": "٣"}),
        (f"/tickets/{ticket.id}/links", {"type": "related", "target": "²"}),
    ]
    for url, data in posts:
        r = post(signed_in, url, data)
        assert 400 <= r.status_code < 500, (url, data, r.status_code, r.get_data(as_text=True)[:300])
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).state == "new"
    assert _db.session.query(Ticket).count() == 1
    assert _db.session.query(TicketComment).count() == 0


def test_a_new_change_takes_its_type_window_in_the_users_zone_and_plans(signed_in, make, agent):
    from datetime import datetime

    from cairn.auth.services import set_preferences
    from web.shell import available_locales

    set_preferences(agent, "en", "Europe/Berlin", available_locales())
    _db.session.commit()
    switch = make.ci("network_switch", name="core-sw-new-change")
    form = signed_in.get("/tickets/new?kind=change").get_data(as_text=True)
    assert 'id="planned_start"' in form and '<details class="change-fields" open>' in form
    response = post(
        signed_in,
        "/tickets/new",
        {
            "kind": "change", "title": "Upgrade core firmware", "ci_ids": str(switch.id), "change_type": "emergency",
            "planned_start": "2027-03-01T22:00", "planned_end": "2027-03-02T01:30",
            "implementation_plan": "Flash, reboot.", "backout_plan": "Flash the old image.",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    change = _db.session.get(Ticket, int(response.headers["Location"].rsplit("/", 1)[1].split("#")[0]))
    assert change.kind == "change" and change.change_type == "emergency"
    # 22:00 in Berlin (UTC+1 in March before DST) is 21:00 UTC
    assert change.planned_start.replace(tzinfo=None) == datetime(2027, 3, 1, 21, 0)
    assert change.planned_end.replace(tzinfo=None) == datetime(2027, 3, 2, 0, 30)
    assert (change.implementation_plan, change.backout_plan) == ("Flash, reboot.", "Flash the old image.")
    assert change.ci_ids == [switch.id]


def test_a_new_change_with_a_bad_window_or_type_changes_nothing(signed_in, make):
    before = _db.session.query(Ticket).count()
    for data in (
        {"planned_start": "2027-03-02T10:00", "planned_end": "2027-03-01T10:00"},
        {"planned_start": "yesterday"},
        {"change_type": "whenever"},
        {"template_id": "99999999"},
        {"template_id": "²"},
    ):
        response = post(signed_in, "/tickets/new", {"kind": "change", "title": "x", **data})
        assert response.status_code in (404, 409, 422), (data, response.status_code)
        assert "text/html" in response.content_type
    assert _db.session.query(Ticket).count() == before
