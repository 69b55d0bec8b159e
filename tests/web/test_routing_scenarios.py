"""Routing in Debian's Chromium against gunicorn: an admin adds a rule on the routing page, sets
the team's round-robin rota, tries a ticket in the dry run, and a new ticket then lands in the team
with a member assigned and "routed by rule" in its history. Checked with axe-core, photographed."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in


def test_an_admin_routes_printer_tickets_to_a_rota(page, web_server):
    tag = "8501"
    admin = web_server.user("admin", name=f"Ada Admin {tag}")
    ann = web_server.user("agent", name=f"Ann Agent {tag}")
    bob = web_server.user("agent", name=f"Bob Agent {tag}")

    def make_team():
        from cairn.auth.services import create_team

        return create_team(f"Print {tag}", member_ids=[ann.id, bob.id]).id

    team_id = web_server.seed(make_team)
    _sign_in(page, admin)
    page.goto("/admin/routing")
    expect(page.get_by_role("heading", name="Routing", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill(f"Printers {tag}")
    page.get_by_label("Words in the title (comma-separated; any of them, whole words)").fill(
        f"printer{tag}, toner{tag}"
    )
    page.get_by_label("Team", exact=True).select_option(label=f"Print {tag}")
    page.get_by_label("Priority", exact=True).select_option("2")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_text(f"The routing rule Printers {tag} is added.")).to_be_visible()
    expect(page.locator("table.list").first).to_contain_text(f"printer{tag}, toner{tag}")
    _check(page, "routing-rules")

    # an empty rule is refused next to the form, nothing added
    page.get_by_label("Name", exact=True).fill(f"Empty {tag}")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_text("A rule sets at least one of team_id, priority, category_id, assignee_id.")).to_be_visible()
    _check(page, "routing-rule-refused", status=422)

    page.goto(f"/admin/routing/teams/{team_id}")
    page.get_by_label("Mode").select_option("round_robin")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"The assignment of Print {tag} is saved.")).to_be_visible()
    expect(page.locator("table.list")).to_contain_text("yes")
    _check(page, "routing-team")

    page.goto("/admin/routing/dry-run")
    page.get_by_label("Title").fill(f"Printer{tag} on floor 3 jammed")
    page.get_by_role("button", name="Try it").click()
    expect(page.locator(".dry-run-winner")).to_contain_text(f"Rule Printers {tag}")
    expect(page.locator(".dry-run-team")).to_have_text(f"Print {tag}")
    expect(page.locator(".dry-run-assignee")).to_contain_text(f"Ann Agent {tag}")
    _check(page, "routing-dry-run")

    def open_ticket():
        from tickets.services import create_ticket

        first = create_ticket({"kind": "incident", "title": f"toner{tag} empty"}, None)
        second = create_ticket({"kind": "incident", "title": f"printer{tag} offline"}, None)
        return [(t.id, t.team_id, t.assignee_id, t.priority) for t in (first, second)]

    (first_id, *first), (_second_id, *second) = web_server.seed(open_ticket)
    assert first == [team_id, ann.id, 2] and second == [team_id, bob.id, 2]
    page.goto(f"/tickets/{first_id}")
    expect(page.get_by_text(f"routed by rule Printers {tag}")).to_be_visible()
    _check(page, "ticket-routed")
