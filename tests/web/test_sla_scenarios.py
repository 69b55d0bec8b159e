"""A ticket under a business-hours SLA in Debian's Chromium against gunicorn: the agent sees the
policy, the calendar, the business time left and the warning the scan fired; checked with axe-core
and photographed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def test_an_agent_sees_the_business_clock_and_its_warning(page, web_server):
    tag = "8401"
    agent = web_server.user("agent", name=f"Sam Support {tag}")
    caller = web_server.user("requester", name=f"Carla Caller {tag}")

    def make():
        from cairn.auth.services import create_team
        from tickets.services import create_ticket
        from tickets.slas import scan
        from tickets.slas import services as sla_services

        # Only this team's requesters get the policy: the server's other tests keep the wall clock.
        team = create_team(f"Finance {tag}", member_ids=[caller.id])
        calendar = sla_services.save_calendar(
            {"name": f"Round the clock {tag}", "time_zone": "UTC", "hours": EVERY_DAY}
        )
        sla_services.save_policy(
            {"name": f"Finance incidents {tag}", "calendar_id": calendar.id, "match": {"team_id": team.id},
             "response_seconds": 8 * 3600, "resolution_seconds": 4 * 3600, "warn_at": 0.75, "order": 0}
        )  # fmt: skip
        ticket = create_ticket(
            {"kind": "incident", "title": f"Ledger export fails {tag}", "requester_id": caller.id}, None
        )
        ticket.created_at = datetime.now(UTC) - timedelta(hours=3, minutes=30)
        sla_services.recompute(ticket_ids=[ticket.id])
        scan.scan()
        return ticket.id

    ticket_id = web_server.seed(make)
    _sign_in(page, agent)
    page.goto(f"/tickets/{ticket_id}")
    expect(page.get_by_text("SLA warning", exact=True)).to_be_visible()
    expect(page.get_by_text("sla warning:")).to_be_visible()  # the history names the warning
    clock = page.locator(".business-clock")
    expect(clock).to_contain_text(f"Finance incidents {tag}")
    expect(clock).to_contain_text(f"(Round the clock {tag})")
    expect(clock).to_contain_text("min of business time left")
    _check(page, "ticket-with-business-clock")
