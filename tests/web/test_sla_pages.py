"""The ticket page shows the business-hours clocks: the policy and calendar, the business time
left (or overdue), paused while on hold, the warning and the breach; the OLA of the assigned team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from cairn.db import db as _db
from tests.web.pages import sign_in
from tickets import services
from tickets.slas import scan
from tickets.slas import services as sla_services

MONDAY_9 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def _page(client, agent, ticket) -> str:
    # A fresh sign-in inside the travelled time: a session from another moment has expired.
    client.delete_cookie(client.application.config.get("SESSION_COOKIE_NAME", "session"))
    sign_in(client, agent)
    response = client.get(f"/tickets/{ticket.id}")
    assert response.status_code == 200
    return " ".join(response.get_data(as_text=True).split())


def test_the_ticket_page_shows_business_time_left_warning_pause_and_ola(client, make, agent):
    network = make.team("Network", members=[agent])
    calendar = sla_services.save_calendar({"name": "Berlin office", "time_zone": "Europe/Berlin", "hours": OFFICE})
    sla_services.save_policy(
        {"name": "Incidents", "calendar_id": calendar.id, "match": {}, "response_seconds": 3600,
         "resolution_seconds": 4 * 3600, "warn_at": 0.75, "order": 0, "type": "sla"}
    )  # fmt: skip
    sla_services.save_policy(
        {"name": "Network OLA", "calendar_id": calendar.id, "match": {"team_id": network.id}, "type": "ola",
         "response_seconds": 3600, "resolution_seconds": 8 * 3600, "warn_at": 0.75, "order": 0}
    )  # fmt: skip
    _db.session.commit()
    with time_machine.travel(MONDAY_9, tick=False):
        ticket = services.create_ticket({"kind": "incident", "title": "VPN down", "team_id": network.id}, agent)
        services.transition(ticket, "in_progress", {}, agent)
        _db.session.commit()
    with time_machine.travel(MONDAY_9 + timedelta(hours=3, minutes=30), tick=False):
        scan.scan()
        _db.session.commit()
        page = _page(client, agent, ticket)
    assert "Incidents" in page and "(Berlin office)" in page
    assert "0 h 30 min of business time left" in page
    assert "SLA warning" in page and "SLA breached" not in page
    assert "Network OLA" in page and "4 h 30 min of business time left" in page
    with time_machine.travel(MONDAY_9 + timedelta(hours=4), tick=False):
        services.transition(ticket, "on_hold", {"note": "waiting for the vendor"}, agent)
        _db.session.commit()
    with time_machine.travel(MONDAY_9 + timedelta(days=1), tick=False):
        page = _page(client, agent, ticket)
    assert "SLA paused" in page and "paused, 0 h 0 min of business time left" in page
    with time_machine.travel(MONDAY_9 + timedelta(days=1, hours=1), tick=False):
        services.transition(ticket, "in_progress", {}, agent)
        _db.session.commit()
    with time_machine.travel(MONDAY_9 + timedelta(days=1, hours=2), tick=False):
        scan.scan()
        _db.session.commit()
        page = _page(client, agent, ticket)
    assert "SLA breached" in page and "1 h 0 min overdue" in page
