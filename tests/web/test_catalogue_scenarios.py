"""The service catalogue in Debian's Chromium against gunicorn: a requester orders a laptop with the
form, the manager approves it, the technician works the two tasks (the first deploys a laptop from
stock), and the requester sees the order fulfilled and the laptop among its equipment. Every page is
checked with axe-core and photographed; the admin defines an item through its page."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.browser import sign_in
from tests.web.test_scenarios import _check


def test_order_a_laptop_from_the_portal_to_a_deployed_ci(new_page, web_server):
    tag = "7301"
    requester = web_server.user("requester", name=f"Rob Requester {tag}")
    manager = web_server.user("requester", name=f"Mia Manager {tag}")
    tech = web_server.user("agent", name=f"Tia Tech {tag}")

    def make():
        from cairn.auth.services import create_team
        from cairn.db import db
        from cairn.directory.models import DirectoryProfile
        from cmdb.custom_fields.services import create_definition
        from cmdb.services import create_ci
        from tickets.catalogue.services import save_item

        db.session.add(DirectoryProfile(user_id=requester.id, dn=f"cn=rob{tag}", manager_id=manager.id))
        create_definition(
            {
                "name": f"keyboard_layout_{tag}",
                "label": "Keyboard layout",
                "type": "choice",
                "choices": ["US", "UK", "DE"],
                "applies_to": {"ticket_kinds": ["request"]},
            }
        )
        team = create_team(f"End-user computing {tag}", member_ids=[tech.id])
        create_ci({"name": f"LT-{tag}-01", "ci_class": "laptop", "status": "in_stock", "asset_tag": f"A{tag}"})
        item = save_item(
            {
                "name": f"Standard laptop {tag}",
                "description": "A 14-inch laptop with a dock, imaged and enrolled.",
                "category": "Hardware",
                "active": True,
                "audience": {},
                "approval_mode": "sequential",
                "form": [{"field": f"keyboard_layout_{tag}", "required": True}],
                "approval_steps": [{"kind": "manager"}],
                "tasks": [
                    {"title": "Image and enrol the laptop", "team_id": team.id, "delivers_ci": True},
                    {"title": "Hand it over", "team_id": team.id},
                ],
                "deliver_ci_class": "laptop",
            }
        )
        return item.id

    item_id = web_server.seed(make)

    # the requester finds the item, sends the form without a layout (refused), then with one
    page = new_page()
    sign_in(page, requester)
    page.get_by_role("link", name="Order from the catalogue").click()
    expect(page.get_by_role("heading", name="Hardware")).to_be_visible()
    _check(page, "catalogue")
    page.locator(f'li[data-item="{item_id}"]').get_by_role("link", name="Order").click()
    expect(page.get_by_role("heading", name=f"Standard laptop {tag}")).to_be_visible()
    page.get_by_role("button", name="Place the order").click()
    expect(page.get_by_text("Missing data for required field.")).to_be_visible()
    _check(page, "order-form-refused", status=422)
    page.get_by_label("Keyboard layout *").select_option("UK")
    page.get_by_label("Anything else").fill("For the new starter on Monday")
    page.get_by_role("button", name="Place the order").click()
    expect(page.locator("#order-stage")).to_contain_text("awaiting approval")
    _check(page, "order-placed")

    # the manager approves it
    approver = new_page()
    sign_in(approver, manager)
    approver.get_by_role("link", name="Approvals").click()
    card = approver.locator("section.approval").filter(has_text=f"Standard laptop {tag}")
    expect(card).to_contain_text(f"Rob Requester {tag}")
    expect(card).to_contain_text("UK")
    _check(approver, "approvals")
    card.get_by_label("Comment").fill("Fine")
    card.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Nothing is waiting for your approval.")).to_be_visible()

    # the technician works the tasks in order: the first deploys the laptop from stock
    desk = new_page()
    sign_in(desk, tech)
    desk.get_by_role("link", name="Fulfilment", exact=True).click()
    row = desk.locator("tr").filter(has_text="Image and enrol the laptop")
    expect(row).to_be_visible()
    expect(desk.locator("tr").filter(has_text="Hand it over")).to_have_count(0)
    _check(desk, "fulfilment-tasks")
    row.get_by_label("CI to deliver").select_option(label=f"LT-{tag}-01 (A{tag})")
    row.get_by_role("button", name="Done").click()
    expect(desk.get_by_text("Task Image and enrol the laptop is done.")).to_be_visible()
    second = desk.locator("tr").filter(has_text="Hand it over")
    second.get_by_role("button", name="Done").click()
    expect(desk.get_by_text("No fulfilment task is waiting.")).to_be_visible()
    _check(desk, "fulfilment-done")

    # the requester sees it fulfilled, the delivery noted, and the laptop as its own
    page.reload()
    expect(page.locator("#order-stage")).to_contain_text("fulfilled")
    expect(page.get_by_text(f"Delivered LT-{tag}-01")).to_be_visible()
    _check(page, "order-fulfilled")
    page.goto("/portal")
    expect(page.get_by_text(f"LT-{tag}-01")).to_be_visible()
    _check(page, "portal-with-laptop")


def test_the_admin_defines_an_item(page, web_server):
    admin = web_server.user("admin", name="Ada Admin 7302")
    sign_in(page, admin)
    page.goto("/admin")
    page.get_by_role("link", name="Service catalogue").click()
    page.get_by_role("link", name="New item").click()
    page.get_by_label("Name").fill("VPN access 7302")
    page.get_by_label("Category").fill("Access")
    page.get_by_label("Approval steps (JSON)").fill('[{"kind": "team"}]')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("0.team_id: A team step names an existing team.")).to_be_visible()
    _check(page, "admin-item-refused", status=422)
    page.get_by_label("Approval steps (JSON)").fill('[{"kind": "manager"}]')
    page.get_by_label("Active (offered in the catalogue)").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="VPN access 7302")).to_be_visible()
    _check(page, "admin-catalogue")
