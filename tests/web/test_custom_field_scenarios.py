"""Custom fields in Debian's Chromium against gunicorn (two workers): an admin adds a PCI scope and a
rack unit to servers on the admin page, a technician fills them in on a server's page (a value out
of range refused), and the admin deletes the field, confirming that the values go with it.
Screenshots under tests/web/output/."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in


def test_an_admin_adds_fields_and_a_technician_fills_them_in(page, new_page, web_server):
    admin = web_server.user("admin", name="Ada Admin 1801")
    tech = web_server.user("agent", name="Tom Tech 1801")

    def make():
        from cmdb.services import create_ci

        return create_ci({"name": "pay-db-1801", "ci_class": "server", "status": "deployed"}).id

    ci_id = web_server.seed(make)
    _sign_in(page, admin)
    page.goto("/admin/custom-fields")
    expect(page.get_by_role("heading", name="Custom fields", exact=True)).to_be_visible()
    for name, label, kind, group in (
        ("pci_scope_1801", "PCI scope", "Yes / no", "Compliance"),
        ("rack_unit_1801", "Rack unit", "Whole number", "Placement"),
    ):
        page.goto("/admin/custom-fields")
        page.get_by_label("Name (lower case, digits, _)").fill(name)
        page.get_by_label("Type").select_option(label=kind)
        page.get_by_label("Label").fill(label)
        page.get_by_label("Group (a heading on the forms)").fill(group)
        page.get_by_label("CI classes (and their subclasses)").select_option("server")
        if name.startswith("rack"):
            page.get_by_label("Minimum (number, or length of text)").fill("1")
            page.get_by_label("Maximum (number, or length of text)").fill("60")
        page.get_by_role("button", name="Add field").click()
        expect(page.get_by_text(f"The custom field {name} is added.")).to_be_visible()
    page.goto("/admin/custom-fields")
    # (other scenarios of the session may have left fields of their own on the shared server)
    expect(page.locator("table.custom-fields tbody tr", has_text="_1801")).to_have_count(2)
    _check(page, "custom-fields-list")

    # the technician, in another browser, fills them in on the server's page
    tech_page = new_page()
    _sign_in(tech_page, tech)
    tech_page.goto(f"/cis/{ci_id}")
    tech_page.get_by_text("Edit custom fields").click()
    tech_page.get_by_label("PCI scope").select_option(label="Yes")
    tech_page.get_by_label("Rack unit").fill("99")
    tech_page.get_by_role("button", name="Save fields").click()
    expect(tech_page.get_by_text("Rack unit: Must be at most 60.")).to_be_visible()
    tech_page.get_by_text("Edit custom fields").click()
    tech_page.get_by_label("PCI scope").select_option(label="Yes")
    tech_page.get_by_label("Rack unit").fill("12")
    tech_page.get_by_role("button", name="Save fields").click()
    expect(tech_page.get_by_text("The custom fields of pay-db-1801 are saved.")).to_be_visible()
    section = tech_page.locator("#custom-fields")
    expect(section.locator('[data-field="rack_unit_1801"]')).to_have_text("12")
    expect(section.locator('[data-field="pci_scope_1801"]')).to_have_text("Yes")
    _check(tech_page, "server-with-custom-fields")

    # the admin deletes the PCI field: asked again, the value goes with it
    page.goto("/admin/custom-fields")
    page.get_by_role("link", name="PCI scope").click()
    page.get_by_role("button", name="Delete field").click()
    expect(page.get_by_text("1 CI or ticket holds a value of pci_scope_1801")).to_be_visible()
    _check(page, "delete-confirmation", status=409)
    page.get_by_role("button", name="Delete the field and its values").click()
    expect(page.get_by_text("The custom field pci_scope_1801 is deleted.")).to_be_visible()
    tech_page.goto(f"/cis/{ci_id}")
    expect(tech_page.locator('#custom-fields [data-field="pci_scope_1801"]')).to_have_count(0)
    expect(tech_page.locator('#custom-fields [data-field="rack_unit_1801"]')).to_have_text("12")
