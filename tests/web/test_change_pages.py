"""The change manager's board and a change's sections on its ticket page, through Flask's test client:
the approval queue (separation of duties), this week, the month calendar (multi-day windows, blackout
shading, collisions), filters by team and risk, the window with its blackout check, approvals and
refusals, plans, linked incidents and problems; bad input and roles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from cairn.db import db as _db
from cairn.db import utcnow
from tests.web.pages import post, sign_in
from tickets import services
from tickets.models import Ticket, TicketApproval

DAY = re.compile(r'data-day="(\d{4}-\d{2}-\d{2})">(.*?)</td>', re.S)


def _change(user, title, start=None, end=None, **fields) -> Ticket:
    data = {"kind": "change", "title": title, **fields}
    if start is not None:
        data.update(planned_start=start, planned_end=end)
    ticket = services.create_ticket(data, user)
    _db.session.commit()
    return ticket


def _to_authorize(ticket, user) -> Ticket:
    services.transition(ticket, "assess", {}, user)
    services.transition(ticket, "authorize", {}, user)
    _db.session.commit()
    return ticket


def _days(html: str) -> dict[str, str]:
    return dict(DAY.findall(html))


def _cell_class(html: str, day: str) -> str:
    return re.search(rf'<td class="([^"]*)" data-day="{day}">', html).group(1)


def _text(response, status=200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def _at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def managers(make):
    return make.user("change_manager", name="Cora Requesting"), make.user("change_manager", name="Max Approving")


# ---------------------------------------------------------------------------------------------
# The board


def test_awaiting_my_approval_lists_what_i_may_approve_and_not_what_i_requested(client, make, managers):
    requesting, approving = managers
    switch = make.ci("network_switch", name="core-sw-1")
    start = utcnow() + timedelta(days=3)
    waiting = _to_authorize(_change(requesting, "Upgrade core-sw-1", start, start + timedelta(hours=2),
                                    ci_ids=[switch.id]), requesting)  # fmt: skip
    _change(requesting, "Still being assessed", start, start + timedelta(hours=1))
    sign_in(client, approving)
    awaiting = _text(client.get("/changes")).split('id="awaiting"', 1)[1].split("</section>", 1)[0]
    assert waiting.number in awaiting
    assert "Still being assessed" not in awaiting

    # the one who requested it may not approve it: not in their queue
    client.post("/logout", data={})
    client2 = client.application.test_client()
    sign_in(client2, requesting)
    mine = _text(client2.get("/changes")).split('id="awaiting"', 1)[1].split("</section>", 1)[0]
    assert waiting.number not in mine
    assert "Nothing waits for your approval." in mine

    # once approved (one approval needed by default) it waits no more
    services.decide_approval(waiting, "approve", "fine", approving)
    _db.session.commit()
    after = _text(client.get("/changes")).split('id="awaiting"', 1)[1].split("</section>", 1)[0]
    assert waiting.number not in after


def test_this_week_lists_the_changes_whose_window_falls_in_it(signed_in, agent):
    now = utcnow()
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    inside = _change(
        agent, "Patch the mail relay", monday + timedelta(days=2, hours=1), monday + timedelta(days=2, hours=3)
    )
    later = _change(agent, "Next month's work", monday + timedelta(days=35), monday + timedelta(days=35, hours=1))
    no_window = _change(agent, "Not planned yet")
    week = _text(signed_in.get("/changes")).split('id="this-week"', 1)[1].split("</section>", 1)[0]
    assert inside.number in week
    assert later.number not in week and no_window.number not in week
    # an agent does not decide on approvals: no approval queue
    assert 'id="awaiting"' not in _text(signed_in.get("/changes"))


def test_the_calendar_places_each_change_in_the_days_of_its_window(signed_in, agent, make):
    one_day = _change(agent, "One evening", _at(2030, 3, 4, 18), _at(2030, 3, 4, 20))
    three_days = _change(agent, "Over the weekend", _at(2030, 3, 8, 22), _at(2030, 3, 10, 6))
    to_midnight = _change(agent, "Until midnight", _at(2030, 3, 14, 20), _at(2030, 3, 15, 0))
    elsewhere = _change(agent, "April work", _at(2030, 4, 14, 20), _at(2030, 4, 14, 22))
    html = _text(signed_in.get("/changes?month=2030-03"))
    assert "March 2030" in html
    days = _days(html)
    assert one_day.number in days["2030-03-04"] and one_day.number not in days["2030-03-05"]
    for day in ("2030-03-08", "2030-03-09", "2030-03-10"):
        assert three_days.number in days[day], day
    assert three_days.number not in days["2030-03-07"] and three_days.number not in days["2030-03-11"]
    # a window ending at midnight does not run into the next day
    assert to_midnight.number in days["2030-03-14"] and to_midnight.number not in days["2030-03-15"]
    assert elsewhere.number not in html
    # the grid is whole weeks, Monday first: 25 Feb .. 31 Mar 2030, the days of other months marked
    assert list(days)[0] == "2030-02-25" and list(days)[-1] == "2030-03-31"
    assert "other-month" in _cell_class(html, "2030-02-25") and "other-month" not in _cell_class(html, "2030-03-01")
    # accessible: a table with column headers and a caption
    assert '<th scope="col"><abbr title="Monday">' in html and "<caption" in html
    # prev/next months are in the URL
    assert 'href="/changes?month=2030-02"' in html and 'href="/changes?month=2030-04"' in html
    assert elsewhere.number in _text(signed_in.get("/changes?month=2030-04"))


def test_the_calendar_follows_the_readers_time_zone(client, make):
    reader = make.user("change_manager", name="Tokyo Reader")
    reader.timezone = "Asia/Tokyo"
    _db.session.commit()
    # 20:00 UTC on the 4th is 05:00 on the 5th in Tokyo
    late = _change(reader, "Late in UTC", _at(2030, 3, 4, 20), _at(2030, 3, 4, 22))
    sign_in(client, reader)
    days = _days(_text(client.get("/changes?month=2030-03")))
    assert late.number in days["2030-03-05"] and late.number not in days["2030-03-04"]


def test_blackouts_are_shaded_and_named_and_collisions_marked(signed_in, agent, make):
    services.create_blackout(
        {"name": "Quarter close", "starts_at": _at(2030, 3, 28, 18), "ends_at": _at(2030, 3, 30, 6)}
    )
    switch = make.ci("network_switch", name="core-sw-9")
    lonely = make.ci("server", name="lonely-1")
    first = _change(agent, "Firmware on core-sw-9", _at(2030, 3, 12, 22), _at(2030, 3, 13, 2), ci_ids=[switch.id])
    second = _change(agent, "Cabling at core-sw-9", _at(2030, 3, 13, 0), _at(2030, 3, 13, 4), ci_ids=[switch.id])
    alone = _change(agent, "Reboot lonely-1", _at(2030, 3, 13, 1), _at(2030, 3, 13, 3), ci_ids=[lonely.id])
    html = _text(signed_in.get("/changes?month=2030-03"))
    for day in ("2030-03-28", "2030-03-29", "2030-03-30"):
        assert "blackout" in _cell_class(html, day).split(), day
    assert "blackout" not in _cell_class(html, "2030-03-27").split()
    assert "blackout" not in _cell_class(html, "2030-03-31").split()
    assert "Blackout: Quarter close" in _days(html)["2030-03-29"]
    day = _days(html)["2030-03-13"]
    items = {
        n: li
        for li, n in re.findall(
            r'<li class="(cal-change[^"]*)">\s*<a href="/tickets/\d+">(?:<span[^>]*>… </span>)?([A-Z]+\d+)', day
        )
    }
    assert "collides" in items[first.number] and "collides" in items[second.number]
    assert "collides" not in items[alone.number]
    assert "collides with 1 other change" in day


def test_filters_by_team_and_risk_are_kept_in_the_url(signed_in, agent, make):
    network = make.team("Network")
    desk = make.team("Desk")
    ours = _change(agent, "Network work", _at(2030, 5, 6, 20), _at(2030, 5, 6, 22), team_id=network.id)
    theirs = _change(agent, "Desk work", _at(2030, 5, 7, 20), _at(2030, 5, 7, 22), team_id=desk.id)
    theirs.risk = "high"
    _db.session.commit()
    html = _text(signed_in.get(f"/changes?month=2030-05&team_id={network.id}"))
    assert ours.number in html and theirs.number not in html
    # the month links keep the filter
    assert f'href="/changes?team_id={network.id}&amp;month=2030-06"' in html
    assert f'<option value="{network.id}" selected>' in html
    html = _text(signed_in.get("/changes?month=2030-05&risk=high"))
    assert theirs.number in html and ours.number not in html
    assert '<option value="high" selected>' in html


# ---------------------------------------------------------------------------------------------
# The change's sections on its ticket page


def test_the_change_page_shows_window_collisions_risk_plans_and_linked_tickets(signed_in, agent, make):
    switch = make.ci("network_switch", name="core-sw-2", criticality="critical")
    start = utcnow() + timedelta(days=10)
    change = _change(agent, "Replace core-sw-2 PSU", start, start + timedelta(hours=3), ci_ids=[switch.id],
                     implementation_plan="Swap PSU B first.", backout_plan="Put the old PSU back.")  # fmt: skip
    other = _change(
        agent, "Reboot core-sw-2", start + timedelta(hours=1), start + timedelta(hours=2), ci_ids=[switch.id]
    )
    problem = services.create_ticket({"kind": "problem", "title": "PSU failures on core switches"}, agent)
    _db.session.flush()
    services.add_link(change, problem.id, "fixes", agent)
    _db.session.commit()
    html = _text(signed_in.get(f"/tickets/{change.id}"))
    collisions = html.split('id="change-collisions"', 1)[1].split("</section>", 1)[0]
    assert f'href="/tickets/{other.id}"' in collisions and other.number in collisions
    assert f'href="/cis/{switch.id}"' in collisions and "core-sw-2" in collisions
    assert "both changes change it" in collisions
    risk = html.split('id="change-risk"', 1)[1].split("</section>", 1)[0]
    assert "most critical CI changed: critical" in risk
    assert "1 other changes overlap and meet this one" in risk
    plans = html.split('id="change-plans"', 1)[1].split("</section>", 1)[0]
    assert "Swap PSU B first." in plans and "Put the old PSU back." in plans
    linked = html.split('id="change-linked"', 1)[1].split("</section>", 1)[0]
    assert problem.number in linked and "fixes" in linked
    assert "No blackout meets this window." in html
    # and the other change shows the collision the other way round
    assert change.number in _text(signed_in.get(f"/tickets/{other.id}")).split('id="change-collisions"', 1)[1]
    # an incident's page has none of it
    incident = services.create_ticket({"kind": "incident", "title": "not a change"}, agent)
    _db.session.commit()
    assert 'id="change-window"' not in _text(signed_in.get(f"/tickets/{incident.id}"))


def test_the_window_is_edited_in_the_readers_zone_and_checked_against_blackouts(client, make):
    agent = make.user("agent", name="Berlin Agent")
    agent.timezone = "Europe/Berlin"
    _db.session.commit()
    services.create_blackout({"name": "Freeze", "starts_at": _at(2030, 12, 20), "ends_at": _at(2030, 12, 27)})
    _db.session.commit()
    change = _change(agent, "Move the core router")
    sign_in(client, agent)
    window = {"planned_start": "2030-06-03T22:00", "planned_end": "2030-06-04T01:30", "version": str(change.version)}
    r = post(client, f"/changes/{change.id}/window", window)
    assert r.status_code == 302 and r.location.endswith(f"/tickets/{change.id}#change-window")
    _db.session.expire_all()
    saved = _db.session.get(Ticket, change.id)
    assert saved.planned_start == _at(2030, 6, 3, 20) and saved.planned_end == _at(2030, 6, 3, 23, 30)
    page = _text(client.get(f"/tickets/{change.id}"))
    assert 'value="2030-06-03T22:00"' in page and "Europe/Berlin" in page

    # into the freeze: saved, but the page says it can't be scheduled and names the blackout
    r = post(
        client, f"/changes/{change.id}/window", {"planned_start": "2030-12-22T10:00", "planned_end": "2030-12-22T12:00"}
    )
    assert r.status_code == 302
    page = _text(client.get(f"/tickets/{change.id}"))
    assert "meets a blackout (Freeze)" in page
    check = page.split('id="change-window"', 1)[1].split("</section>", 1)[0]
    assert "This window meets a blackout." in check and "Freeze" in check

    # an end before the start, or not a time: refused, nothing changed
    for start, end in (("2030-06-05T10:00", "2030-06-05T09:00"), ("tomorrow", "2030-06-05T09:00"), ("9" * 5000, "")):
        r = post(client, f"/changes/{change.id}/window", {"planned_start": start, "planned_end": end})
        assert r.status_code == 422, start[:20]
        assert 'aria-invalid="true"' in r.get_data(as_text=True)
    _db.session.expire_all()
    assert _db.session.get(Ticket, change.id).planned_start == _at(2030, 12, 22, 9)


def test_plans_are_saved_and_a_stale_form_is_refused(signed_in, agent):
    change = _change(agent, "Plans")
    plans = {"implementation_plan": "1. drain\n2. patch", "backout_plan": "revert", "version": str(change.version)}
    r = post(signed_in, f"/changes/{change.id}/plans", plans)
    assert r.status_code == 302
    _db.session.expire_all()
    saved = _db.session.get(Ticket, change.id)
    assert saved.implementation_plan == "1. drain\n2. patch" and saved.backout_plan == "revert"
    stale = post(signed_in, f"/changes/{change.id}/plans", {"implementation_plan": "other", "version": "1"})
    assert stale.status_code == 409
    huge = post(signed_in, f"/changes/{change.id}/plans", {"implementation_plan": "x" * 20001})
    assert huge.status_code == 422
    _db.session.expire_all()
    assert _db.session.get(Ticket, change.id).implementation_plan == "1. drain\n2. patch"


def test_approve_and_reject_with_a_comment(client, make, managers):
    requesting, approving = managers
    start = utcnow() + timedelta(days=2)
    change = _to_authorize(_change(requesting, "Approve me", start, start + timedelta(hours=1)), requesting)
    sign_in(client, approving)
    page = _text(client.get(f"/tickets/{change.id}"))
    assert "Record decision" in page and "0 of 1 approvals in this round." in page
    r = post(client, f"/changes/{change.id}/approvals", {"decision": "approve", "comment": "Looks safe"})
    assert r.status_code == 302 and r.location.endswith("#change-approvals")
    approval = _db.session.query(TicketApproval).filter_by(ticket_id=change.id).one()
    assert (approval.decision, approval.comment, approval.approver_id) == ("approve", "Looks safe", approving.id)
    page = _text(client.get(f"/tickets/{change.id}"))
    assert "You approved" in page and "Looks safe" in page and "1 of 1 approvals" in page
    # deciding twice in a round: refused with the reason
    again = post(client, f"/changes/{change.id}/approvals", {"decision": "reject", "comment": "no"})
    assert again.status_code == 409 and "in this round already" in again.get_data(as_text=True)

    other = _to_authorize(_change(requesting, "Reject me", start, start + timedelta(hours=1)), requesting)
    r = post(client, f"/changes/{other.id}/approvals", {"decision": "reject", "comment": "Window too short"})
    assert r.status_code == 302
    _db.session.expire_all()
    rejected = _db.session.get(Ticket, other.id)
    assert rejected.state == "assess" and rejected.approval_round == 2
    page = _text(client.get(f"/tickets/{other.id}"))
    assert "Earlier rounds" in page and "Window too short" in page


def test_separation_of_duties_is_refused_explained_and_changes_nothing(client, make, managers):
    requesting, _approving = managers
    start = utcnow() + timedelta(days=2)
    change = _to_authorize(_change(requesting, "My own change", start, start + timedelta(hours=1)), requesting)
    sign_in(client, requesting)
    page = _text(client.get(f"/tickets/{change.id}"))
    approvals = page.split('id="change-approvals"', 1)[1].split("</section>", 1)[0]
    assert "Record decision" not in approvals
    assert "approve this change." in approvals and "separation of duties" in approvals
    r = post(client, f"/changes/{change.id}/approvals", {"decision": "approve", "comment": "sneaky"})
    body = _text(r, 403)
    assert "someone else approves it (separation of duties)" in body
    assert _db.session.query(TicketApproval).filter_by(ticket_id=change.id).count() == 0
    _db.session.expire_all()
    assert _db.session.get(Ticket, change.id).state == "authorize"


def test_bad_input_never_breaks_a_page(client, make, managers):
    requesting, approving = managers
    change = _change(requesting, "Target")
    incident = services.create_ticket({"kind": "incident", "title": "not a change"}, requesting)
    _db.session.commit()
    sign_in(client, approving)
    for query in ("month=2030-13", "month=abc", "month=" + "9" * 3000, "month=0000-01", "month=2030-1x"):
        assert client.get(f"/changes?{query}").status_code == 200, query
    for query in ("team_id=abc", "team_id=-1", "team_id=" + "9" * 40, "risk=extreme", "risk=" + "x" * 5000):
        r = client.get(f"/changes?{query}")
        assert r.status_code == 422, query
        assert 'class="field-error"' in r.get_data(as_text=True)
    assert client.get("/changes?team_id=999999").status_code == 200  # a team nobody is in: nothing listed
    cases = [
        (f"/changes/{change.id}/approvals", {"decision": "maybe"}, 422),
        (f"/changes/{change.id}/approvals", {}, 422),
        (f"/changes/{change.id}/approvals", {"decision": "approve", "comment": "x" * 2001}, 422),
        (f"/changes/{change.id}/approvals", {"decision": "approve"}, 409),  # not in authorize
        (f"/changes/{incident.id}/approvals", {"decision": "approve"}, 422),
        (f"/changes/{incident.id}/window", {"planned_start": "2030-01-01T10:00"}, 422),
        ("/changes/99999999/window", {"planned_start": "2030-01-01T10:00"}, 404),
        ("/changes/99999999999/plans", {"implementation_plan": "x"}, 404),
        (f"/changes/{change.id}/window", {"planned_start": "2030-01-01T10:00", "version": "abc"}, 409),
    ]
    for path, data, status in cases:
        r = post(client, path, data, headers={"Accept": "text/html"})
        assert r.status_code == status, (path, data, r.status_code)
        assert "text/html" in r.content_type
    assert client.get("/changes/1/window").status_code == 405


def test_roles(client, make, managers):
    requesting, _approving = managers
    start = utcnow() + timedelta(days=2)
    change = _to_authorize(_change(requesting, "Roles", start, start + timedelta(hours=1)), requesting)
    requester = make.user("requester")
    sign_in(client, requester)
    assert client.get("/changes").status_code == 403
    assert post(client, f"/changes/{change.id}/window", {"planned_start": ""}).status_code == 403

    auditor_client = client.application.test_client()
    auditor = make.user("auditor")
    sign_in(auditor_client, auditor)
    assert auditor_client.get("/changes").status_code == 200
    page = _text(auditor_client.get(f"/tickets/{change.id}"))
    assert 'id="change-risk"' in page and "Save window" not in page and "Record decision" not in page
    assert post(auditor_client, f"/changes/{change.id}/plans", {"backout_plan": "x"}).status_code == 403

    agent_client = client.application.test_client()
    agent = make.user("agent")
    sign_in(agent_client, agent)
    assert post(agent_client, f"/changes/{change.id}/approvals", {"decision": "approve"}).status_code == 403
    assert "Change managers decide on it." in _text(agent_client.get(f"/tickets/{change.id}"))
    assert _db.session.query(TicketApproval).filter_by(ticket_id=change.id).count() == 0
