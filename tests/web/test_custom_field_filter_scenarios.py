"""cf_<name> filters on the web lists in Debian's Chromium against gunicorn (two workers): a
technician opens the CI list as the API's ``/cis?cf_pci_scope=true&sort=cf_rack_unit`` would answer
it, adds a filter from the field picker (htmx), removes a chip, and does the same on the ticket list.
Screenshots under tests/web/output/."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _new_errors, _sign_in

NOISE = (
    # Chromium gives the form's inputs an empty style attribute; htmx's settle step copies it onto
    # the swapped-in #ci-sort, which the CSP (style-src 'self') refuses and logs. Every htmx swap of
    # the CI list logs it, with or without custom fields.
    "Applying inline style violates",
    # The ticket filter form syncs with hx-sync="this:replace": the value's change event sends a
    # request that the submit right after replaces; htmx logs the aborted one.
    "htmx:sendAbort",
    "htmx:afterRequest",
)


def _drop_settle_noise(page) -> None:
    """Drop the console errors known before this feature (NOISE); fail on any other."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # a swap's settle step runs after its request ends
    others = [e for e in _new_errors(page) if not any(n in e for n in NOISE)]
    assert others == [], others


def _seed():
    from cmdb.custom_fields.services import create_definition
    from cmdb.services import create_ci
    from tickets.services import create_ticket

    create_definition(
        {"name": "pci_scope_1818", "label": "PCI scope", "type": "boolean", "group": "Compliance",
         "applies_to": {"ci_classes": ["server"]}}
    )  # fmt: skip
    create_definition(
        {"name": "rack_unit_1818", "label": "Rack unit", "type": "integer", "applies_to": {"ci_classes": ["server"]}}
    )
    create_definition(
        {"name": "store_1818", "label": "Store", "type": "choice", "choices": ["north", "south"],
         "applies_to": {"ticket_kinds": ["incident"]}}
    )  # fmt: skip
    for name, scope, unit in (("pay-db-1818", True, 30), ("pay-app-1818", True, 4), ("wiki-1818", False, 12)):
        create_ci(
            {"name": name, "ci_class": "server", "status": "deployed",
             "custom_fields": {"pci_scope_1818": scope, "rack_unit_1818": unit}}
        )  # fmt: skip
    for n, store in enumerate(("north", "south", "north")):
        create_ticket({"kind": "incident", "title": f"Till {n} 1818", "custom_fields": {"store_1818": store}}, None)


def _remove_fields():
    """The server is shared by the session's browser tests: take this test's fields away again."""
    from sqlalchemy import select

    from cairn.db import db
    from cmdb.custom_fields.models import CustomField
    from cmdb.custom_fields.services import delete_definition

    for field in db.session.scalars(select(CustomField).where(CustomField.name.like("%\\_1818", escape="\\"))):
        delete_definition(field, force=True)


def test_a_technician_filters_the_lists_by_custom_fields(page, web_server):
    tech = web_server.user("agent", name="Tom Tech 1818")
    web_server.seed(_seed)
    try:
        _scenario(page, tech)
    finally:
        web_server.seed(_remove_fields)


def _scenario(page, tech):
    _sign_in(page, tech)
    page.goto("/cis?cf_pci_scope_1818=true&sort=cf_rack_unit_1818")
    rows = page.locator("table.ci-list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("pay-app-1818")
    expect(rows.nth(1)).to_contain_text("pay-db-1818")
    chips = page.locator("#cf-chips")
    expect(chips).to_contain_text("PCI scope: Yes")
    expect(chips).to_contain_text("sorted by Rack unit ▲")
    expect(rows.nth(0).locator('[data-field="rack_unit_1818"]')).to_have_text("4")
    _check(page, "ci-list-cf-filter-and-sort")

    # the picker (htmx): a field, a value, Enter; the chip appears and the list narrows
    page.get_by_label("Filter by a custom field").select_option(label="Rack unit · Whole number")
    page.get_by_label("equal to").fill("30")
    page.get_by_label("equal to").press("Enter")
    expect(page.locator('#cf-chips [data-filter="cf_rack_unit_1818"]')).to_contain_text("Rack unit: 30")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("pay-db-1818")
    assert "cf_rack_unit_1818=30" in page.url and "add_field" not in page.url
    _drop_settle_noise(page)
    _check(page, "ci-list-cf-added")

    # another filter of the form keeps the custom ones
    page.get_by_label("Status").select_option("deployed")
    expect(page.locator("#ci-count")).to_contain_text("1 CI")
    _drop_settle_noise(page)
    # removing a chip drops that filter alone
    page.get_by_role("link", name="Remove the filter PCI scope").click()
    expect(page.locator('#cf-chips [data-filter="cf_pci_scope_1818"]')).to_have_count(0)
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Remove the filter Rack unit").click()
    expect(rows.filter(has_text="1818")).to_have_count(3)
    _drop_settle_noise(page)
    _check(page, "ci-list-cf-removed")

    # a wrong value is said on its chip
    page.goto("/cis?cf_rack_unit_1818=high")
    expect(page.locator('#cf-chips [data-filter="cf_rack_unit_1818"]')).to_contain_text("Not a valid number.")
    _check(page, "ci-list-cf-wrong", status=422)

    # the ticket list
    page.goto("/tickets?queue=all&kind=incident")
    page.get_by_label("Filter by a custom field").select_option(label="Store · Choice (north, south)")
    page.get_by_label("equal to").fill("north")
    page.get_by_role("button", name="Add filter").click()
    expect(page.locator('#cf-chips [data-filter="cf_store_1818"]')).to_contain_text("Store: north")
    ticket_rows = page.locator("table.tickets-table tbody tr")
    expect(ticket_rows).to_have_count(2)
    expect(ticket_rows.nth(0).locator('[data-field="store_1818"]')).to_have_text("north")
    _drop_settle_noise(page)
    _check(page, "ticket-list-cf-filter")
    page.get_by_role("link", name="Remove the filter Store").click()
    expect(page.locator('#cf-chips [data-filter="cf_store_1818"]')).to_have_count(0)
    expect(ticket_rows.filter(has_text="1818")).to_have_count(3)
