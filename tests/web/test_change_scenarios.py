"""The change manager's board in Debian's Chromium against gunicorn: a change manager opens a change on
a core switch, plans its window, sees another change on the same switch in the same window as a
collision (on the change page and on the calendar) and is refused approving their own change; a second
change manager approves it from the approval queue; the first schedules it and finds it on the calendar
in each day of its window. Every page is checked with axe-core and photographed at 1280 and 390 px."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in


def _estate(server, tag: str, start: datetime, end: datetime) -> dict:
    """A core switch that a server and a business service depend on, another change on the switch in
    the same window, and a blackout a few days later."""
    other_owner = server.user("change_manager", name=f"Olga Other {tag}")

    def make():
        from cmdb.services import create_ci
        from relations.services import create_relationship
        from tickets.services import create_blackout, create_ticket

        switch = create_ci({"name": f"core-sw-{tag}", "ci_class": "network_switch", "status": "deployed",
                            "criticality": "critical"})  # fmt: skip
        server_ci = create_ci({"name": f"erp-db-{tag}", "ci_class": "server", "status": "deployed"})
        service = create_ci({"name": f"ERP {tag}", "ci_class": "business_service", "status": "deployed"})
        create_relationship({"source_id": server_ci.id, "target_id": switch.id, "type": "connected_to"})
        create_relationship({"source_id": service.id, "target_id": server_ci.id, "type": "depends_on"})
        other = create_ticket(
            {"kind": "change", "title": f"Re-cable core-sw-{tag}", "ci_ids": [switch.id],
             "planned_start": start + timedelta(hours=2), "planned_end": start + timedelta(hours=4)},
            None,
        )  # fmt: skip
        other.requester_id = other_owner.id
        create_blackout({"name": f"Payroll run {tag}", "starts_at": end + timedelta(days=3),
                         "ends_at": end + timedelta(days=4)})  # fmt: skip
        return {"switch": switch.id, "other": other.id, "other_number": other.number}

    return server.seed(make)


def _phone(page, name: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _check(page, f"{name}-390px")
    page.set_viewport_size({"width": 1280, "height": 800})


def test_a_change_on_a_core_switch_collides_is_approved_by_another_manager_and_lands_on_the_calendar(
    page, new_page, web_server
):
    tag = "7301"
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=20, minute=0, second=0, microsecond=0)
    start, end = day, day + timedelta(days=1, hours=6)  # 20:00 one day to 02:00 two days later
    estate = _estate(web_server, tag, start, end)
    cora = web_server.user("change_manager", name=f"Cora Change {tag}")
    max_ = web_server.user("change_manager", name=f"Max Approver {tag}")

    _sign_in(page, cora)
    page.get_by_role("link", name="Changes", exact=True).click()
    expect(page.get_by_role("heading", name="Changes", level=1)).to_be_visible()
    _check(page, "board")

    # a new change on the core switch
    page.get_by_role("link", name="New change").click()
    expect(page.get_by_label("Kind")).to_have_value("change")
    page.get_by_label("Title").fill(f"Upgrade core-sw-{tag} firmware")
    page.get_by_label("Find a CI").fill(f"core-sw-{tag}")
    page.get_by_role("button", name="Open ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    change_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#cis")).to_contain_text(f"core-sw-{tag}")

    # its window: the blackout check says it is clear, and the other change shows as a collision
    page.get_by_label("Starts").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Ends").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Save window").click()
    expect(page.locator(".flash.success")).to_contain_text("window")
    expect(page.locator("#change-window")).to_contain_text("No blackout meets this window.")
    collisions = page.locator("#change-collisions")
    expect(collisions).to_contain_text(estate["other_number"])
    expect(collisions).to_contain_text("both changes change it")
    expect(collisions.get_by_role("link", name=f"core-sw-{tag}")).to_have_attribute("href", f"/cis/{estate['switch']}")
    expect(page.locator("#change-risk")).to_contain_text("other changes overlap and meet this one")
    number = page.locator(".ticket-head .number").inner_text()
    _check(page, "change-with-collision")

    # the other change links back to this one
    collisions.get_by_role("link", name=estate["other_number"]).click()
    expect(page.locator("#change-collisions")).to_contain_text(number)
    page.go_back()

    # through assessment to authorisation; Cora requested it, so she may not approve it
    page.get_by_role("button", name="Assess", exact=True).click()
    expect(page.locator(".ticket-head .badges")).to_contain_text("assess")
    page.get_by_role("button", name="Ask for authorisation").click()
    expect(page.locator(".ticket-head .badges")).to_contain_text("authorize")
    approvals = page.locator("#change-approvals")
    expect(approvals).to_contain_text("separation of duties")
    expect(approvals.get_by_role("button", name="Record decision")).to_have_count(0)
    _check(page, "refused-own-approval")
    _phone(page, "change")

    # on the calendar, in the change's first day, marked as colliding
    month = f"{start:%Y-%m}"
    page.goto(f"/changes?month={month}")
    cell = page.locator(f'td[data-day="{start:%Y-%m-%d}"]')
    entry = cell.locator("li.cal-change", has_text=number)
    expect(entry).to_have_class(re.compile(r"\bcollides\b"))
    expect(entry).to_contain_text("collides with 1 other change")
    _check(page, "calendar-collision")

    # Max approves it from his queue, in his own browser
    other = new_page()
    _sign_in(other, max_)
    other.goto("/changes")
    queue = other.locator("#awaiting")
    expect(queue).to_contain_text(number)
    _check(other, "max-board")
    queue.get_by_role("link", name=number).click()
    other.get_by_label("Approve").check()
    other.get_by_label("Decision comment").fill("Firmware tested in the lab; go.")
    other.get_by_role("button", name="Record decision").click()
    expect(other.locator(".flash.success")).to_contain_text(f"You approved {number}")
    expect(other.locator("#change-approvals")).to_contain_text("Firmware tested in the lab; go.")
    expect(other.locator("#change-approvals")).to_contain_text("1 of 1 approvals")
    _check(other, "approved")
    other.goto("/changes")
    expect(other.locator("#awaiting")).not_to_contain_text(number)

    # Cora schedules it and finds it on the calendar in each day of its window
    page.goto(f"/tickets/{change_id}")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator(".ticket-head .badges")).to_contain_text("scheduled")
    page.goto(f"/changes?month={month}")
    days = [start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)]
    for when in days:
        if f"{when:%Y-%m}" != month:
            page.goto(f"/changes?month={when:%Y-%m}")
        expect(page.locator(f'td[data-day="{when:%Y-%m-%d}"] li.cal-change', has_text=number)).to_have_count(1)
    page.goto(f"/changes?month={month}")
    before = start.date() - timedelta(days=1)
    if f"{before:%Y-%m}" == month:
        expect(page.locator(f'td[data-day="{before:%Y-%m-%d}"] li.cal-change', has_text=number)).to_have_count(0)
    _check(page, "calendar-scheduled")
    _phone(page, "calendar")
