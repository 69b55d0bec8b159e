"""Service levels administered in Debian's Chromium against gunicorn (two workers, inline jobs): an
admin adds a calendar with its hours and holidays, imports closures from an iCalendar file, adds an
SLA policy (a bad target refused next to its field first), changes it (the open tickets' clocks are
recomputed by the durable job) and adds then deletes an escalation rule through its confirmation.
Each page checked with axe-core and photographed under tests/web/output/."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@test\r\nSUMMARY:Founders' day\r\nDTSTART;VALUE=DATE:20310315\r\n"
    "DTEND;VALUE=DATE:20310316\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_an_admin_sets_up_a_calendar_a_policy_and_an_escalation(page, web_server, tmp_path):
    tag = "9107"
    admin = web_server.user("admin", name=f"Ada Admin {tag}")
    caller = web_server.user("requester", name=f"Carla Caller {tag}")

    def make():
        from cairn.auth.services import create_team
        from tickets.services import create_ticket

        # Only this team's requesters match the policy: the server's other tests keep their clocks.
        team = create_team(f"Payroll {tag}", member_ids=[caller.id])
        ticket = create_ticket({"kind": "incident", "title": f"Payslips late {tag}", "requester_id": caller.id}, None)
        return team.id, ticket.id

    team_id, ticket_id = web_server.seed(make)
    _sign_in(page, admin)
    page.goto("/admin")
    page.locator(".admin-index").get_by_role("link", name="Service levels").click()
    expect(page.get_by_role("heading", name="Service levels", exact=True)).to_be_visible()
    page.get_by_role("link", name="New calendar").click()
    page.get_by_label("Name", exact=True).fill(f"Berlin office {tag}")
    page.get_by_label("Time zone (IANA, e.g. Europe/Berlin)").fill("Europe/Berlin")
    page.get_by_label("Friday").fill("09:00-13:00")
    page.get_by_label("Holidays and closures", exact=False).fill("2030-12-24 | 2030-12-26 | Christmas\n")
    _check(page, "calendar-new")
    page.get_by_role("button", name="Add calendar").click()
    expect(page.get_by_text(f"The calendar Berlin office {tag} is added.")).to_be_visible()
    # a bad interval: refused next to its day, nothing saved
    page.get_by_label("Monday").fill("17:00-09:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#hours\\.mon-error")).to_be_visible()
    _check(page, "calendar-refused", status=422)
    page.get_by_label("Monday").fill("09:00-17:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"The calendar Berlin office {tag} is saved.")).to_be_visible()
    ics = tmp_path / "holidays.ics"
    ics.write_text(ICS)
    page.get_by_label("iCalendar file").set_input_files(str(ics))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("1 closures added from the file")).to_be_visible()
    expect(page.get_by_label("Holidays and closures", exact=False)).to_contain_text("Founders' day")
    _check(page, "calendar-imported")

    page.goto("/admin/slas")
    page.get_by_role("link", name="New SLA policy").click()
    page.get_by_label("Name", exact=True).fill(f"Payroll incidents {tag}")
    page.get_by_label("Calendar").select_option(label=f"Berlin office {tag} (Europe/Berlin)")
    page.get_by_label("Response target (business hours)").fill("soon")
    page.get_by_label("Resolution target (business hours)").fill("16")
    page.get_by_label("Kind").select_option("incident")
    page.get_by_label("Team (SLA: the requester's", exact=False).select_option(str(team_id))
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("#response_hours-error")).to_be_visible()
    _check(page, "policy-refused", status=422)
    page.get_by_label("Response target (business hours)").fill("2")
    page.get_by_role("button", name="Add policy").click()
    expect(page.get_by_text(f"The policy Payroll incidents {tag} is added.")).to_be_visible()
    expect(page.get_by_text("recomputed in the background")).to_be_visible()
    expect(page.get_by_text("1 open ticket is timed by it.")).to_be_visible()  # the inline job ran
    _check(page, "policy")
    page.get_by_label("Resolution target (business hours)").fill("24")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"The policy Payroll incidents {tag} is saved.")).to_be_visible()

    def resolution_seconds():
        from datetime import UTC

        from cairn.db import db
        from tickets.models import Ticket
        from tickets.slas import clocks

        ticket = db.session.get(Ticket, ticket_id)
        created = ticket.created_at.replace(tzinfo=UTC)
        due = ticket.resolution_due.replace(tzinfo=UTC)
        policy = ticket.sla_policy_id and clocks.all_policies()
        return bool(policy), (due - created).total_seconds() > 24 * 3600

    assert web_server.seed(resolution_seconds) == (True, True)  # 24 business hours: days away

    page.goto("/admin/slas")
    page.get_by_role("link", name="New escalation rule").click()
    page.get_by_label("Name", exact=True).fill(f"Breached payroll {tag}")
    page.get_by_label("Fires on").select_option("breach")
    page.get_by_label("Notify (comma-separated", exact=False).fill("assignee, payroll-lead@example.com")
    page.get_by_label("Raise the priority one step").check()
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_text(f"The escalation rule Breached payroll {tag} is added.")).to_be_visible()
    _check(page, "escalation-rule")
    page.goto("/admin/slas")
    expect(page.get_by_role("link", name=f"Breached payroll {tag}")).to_be_visible()
    expect(page.locator("table.sla-jobs")).to_be_visible()
    _check(page, "service-levels")
    page.get_by_role("link", name=f"Breached payroll {tag}").click()
    page.get_by_role("link", name="Delete rule…").click()
    expect(page.get_by_role("heading", name=f"Delete the escalation rule Breached payroll {tag}?")).to_be_visible()
    _check(page, "escalation-rule-delete")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"The escalation rule Breached payroll {tag} is deleted.")).to_be_visible()
    expect(page.get_by_role("link", name=f"Breached payroll {tag}")).to_have_count(0)
