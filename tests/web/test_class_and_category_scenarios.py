"""Custom CI classes and ticket categories in Debian's Chromium against gunicorn (two workers): an
admin adds an infusion pump class on the admin page, a technician creates a pump at once (the other
worker accepts the class) and finds it by class; deleting the class in use is refused. The admin
builds a category tree, a technician opens an incident in a subcategory (its default team takes it),
and a deactivated category leaves the form. Screenshots under tests/web/output/."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in


def test_an_admin_adds_a_class_and_a_technician_uses_it_at_once(page, new_page, web_server):
    admin = web_server.user("admin", name="Ada Admin 1803")
    tech = web_server.user("agent", name="Tom Tech 1803")
    _sign_in(page, admin)
    page.goto("/admin/ci-classes")
    expect(page.get_by_role("heading", name="CI classes", exact=True)).to_be_visible()
    _check(page, "ci-classes")
    page.get_by_label("Name (lower case, digits, _)").fill("infusion_pump_1803")
    page.get_by_label("Label").fill("Infusion pump 1803")
    page.get_by_label("Parent class (its attributes are inherited)").select_option("printer")
    page.get_by_role("button", name="Add class").click()
    expect(page.get_by_text("The class infusion_pump_1803 is added")).to_be_visible()
    _check(page, "ci-class")

    def rules():
        from cmdb.classes import REGISTRY

        return REGISTRY["infusion_pump_1803"].relationship_types

    assert web_server.seed(rules) is None  # the box left unticked: its parent's rules
    page.get_by_label("Label").fill("Infusion pump (IV) 1803")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The class infusion_pump_1803 is saved.")).to_be_visible()

    # a bad name: refused next to the field, nothing added
    page.goto("/admin/ci-classes")
    page.get_by_label("Name (lower case, digits, _)").fill("server")
    page.get_by_label("Label").fill("Another server")
    page.get_by_label("Parent class (its attributes are inherited)").select_option("printer")
    page.get_by_role("button", name="Add class").click()
    expect(page.get_by_text("'server' is the name of a built-in class.")).to_be_visible()
    _check(page, "ci-class-refused", status=409)

    # the technician, in another browser (and likely the other worker), creates a pump through the API
    # the desk calls, then finds it in the CI list by the new class
    def make_pump():
        from cmdb.services import create_ci

        return create_ci({"name": "pump-1803", "ci_class": "infusion_pump_1803"}).id

    pump_id = web_server.seed(make_pump)
    tech_page = new_page()
    _sign_in(tech_page, tech)
    tech_page.goto("/cis?ci_class=infusion_pump_1803")
    expect(tech_page.get_by_role("link", name="pump-1803")).to_be_visible()
    _check(tech_page, "cis-of-a-custom-class")
    tech_page.goto(f"/cis/{pump_id}")
    expect(tech_page.get_by_text("Infusion pump (IV) 1803").first).to_be_visible()
    _check(tech_page, "ci-of-a-custom-class")

    # in use: the admin's delete is refused, saying how many
    page.goto("/admin/ci-classes/infusion_pump_1803")
    page.get_by_role("button", name="Delete class").click()
    expect(page.get_by_text("1 CIs are of class 'infusion_pump_1803'")).to_be_visible()


def test_an_admin_builds_categories_and_a_ticket_takes_one(page, new_page, web_server):
    admin = web_server.user("admin", name="Ada Admin 1804")
    tech = web_server.user("agent", name="Tom Tech 1804")

    def make_team():
        from cairn.auth.services import create_team

        return create_team("Desktop support 1804").id

    web_server.seed(make_team)
    _sign_in(page, admin)
    page.goto("/admin/ticket-categories")
    for label, name, parent in (
        ("Hardware 1804", "hardware-1804", None),
        ("Laptop 1804", "laptop-1804", "Hardware 1804"),
    ):
        page.get_by_label("Ticket kind").select_option("incident")
        if parent:
            page.get_by_label("Subcategory of (same kind)").select_option(label=parent)
        else:
            page.get_by_label("Default team (a new ticket without a team goes to it)").select_option(
                label="Desktop support 1804"
            )
        page.get_by_label("Label").fill(label)
        page.get_by_label("Name (lower case, digits, _ or -)").fill(name)
        page.get_by_role("button", name="Add category").click()
        expect(page.get_by_text("is added.")).to_be_visible()
    page.get_by_label("Ticket kind").select_option("request")
    page.get_by_label("Label").fill("Old printers 1804")
    page.get_by_label("Name (lower case, digits, _ or -)").fill("old-printers-1804")
    page.get_by_role("button", name="Add category").click()
    incidents = page.locator("#kind-incident")
    expect(incidents.get_by_role("link", name="Laptop 1804")).to_be_visible()
    _check(page, "ticket-categories")

    # deactivate the request category: the form stops offering it
    page.locator("#kind-request").get_by_role("link", name="Old printers 1804").click()
    page.get_by_label("Active (offered on new tickets)").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The category Old printers 1804 is saved.")).to_be_visible()
    _check(page, "ticket-category")

    tech_page = new_page()
    _sign_in(tech_page, tech)
    tech_page.goto("/tickets/new")
    category = tech_page.get_by_label("Category", exact=True)
    expect(category.locator("option", has_text="Old printers 1804")).to_have_count(0)
    tech_page.get_by_label("Title").fill("Laptop hinge broken 1804")
    category.select_option(label="Hardware 1804 › Laptop 1804")
    _check(tech_page, "new-ticket-with-category")
    tech_page.get_by_role("button", name="Open ticket").click()
    expect(tech_page).to_have_url(re.compile(r"/tickets/\d+"))
    details = tech_page.locator("dl").first
    expect(details).to_contain_text("Hardware 1804 › Laptop 1804")
    expect(details).to_contain_text("Desktop support 1804")
    _check(tech_page, "ticket-with-category")

    # the category in use can't be deleted
    page.goto("/admin/ticket-categories")
    page.locator("#kind-incident").get_by_role("link", name="Laptop 1804").click()
    page.get_by_role("button", name="Delete category").click()
    expect(page.get_by_text("1 tickets are in this category; deactivate it instead")).to_be_visible()
