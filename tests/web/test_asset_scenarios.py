"""The asset manager at work, in Debian's Chromium against gunicorn (two workers): from the licence
shortfall to the devices, then a laptop retired (requested and approved), wiped and disposed of, and
gone from the register's active count. Every page is checked with axe-core and photographed under
tests/web/output/, at a desktop's width and at a phone's."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser import check_page as _check
from tests.web.browser import sign_in as _sign_in


def _estate(server, tag: str) -> dict:
    """An asset manager; a product with one per-device licence installed on two laptops (one short)."""
    manager = server.user("asset_manager", name=f"Asa Manager {tag}")

    def make():
        from datetime import timedelta
        from decimal import Decimal

        from cairn.db import utcnow
        from cmdb.assets.services import create_licence
        from cmdb.services import create_ci
        from relations.services import create_relationship

        product = create_ci(
            {"name": f"Visio {tag}", "ci_class": "software", "status": "deployed",
             "attributes": {"publisher": "Microsoft", "version": tag}}
        )  # fmt: skip
        laptops = [
            create_ci(
                {
                    "name": f"LT-{tag}-{n}",
                    "ci_class": "laptop",
                    "status": "deployed",
                    "asset_tag": f"LAP-{tag}-{n}",
                    "purchase_cost": "1400.00",
                    "currency": "EUR",
                }
            )  # fmt: skip
            for n in (1, 2)
        ]
        for laptop in laptops:
            create_relationship({"source_id": product.id, "type": "installed_on", "target_id": laptop.id})
        create_licence(
            {"software_id": product.id, "model": "per_device", "quantity": 1, "cost": Decimal("250.00"),
             "currency": "EUR", "start_date": utcnow().date() - timedelta(days=30), "reference": f"VIS-{tag}"}
        )  # fmt: skip
        return {"product": product.id, "laptops": [laptop.id for laptop in laptops]}

    return {"manager": manager, **server.seed(make)}


def _active(page) -> int:
    page.goto("/assets/register")
    return int(page.locator("#active-count .figure").inner_text().replace(",", ""))


def test_an_asset_manager_retires_a_laptop_found_through_a_licence_shortfall(page, web_server):
    estate = _estate(web_server, "6021")
    product, laptop = "Visio 6021", "LT-6021-2"
    _sign_in(page, estate["manager"])
    active_before = _active(page)
    _check(page, "register", phone=True)

    # the home shows the shortfall; the compliance page has its figures
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Assets").click()
    expect(page.get_by_role("heading", name="Asset management")).to_be_visible()
    expect(page.locator("#compliance-h").locator("..")).to_contain_text(product)
    _check(page, "assets-home", phone=True)
    page.get_by_role("navigation", name="Asset management").get_by_role("link", name="Licence compliance").click()
    row = page.locator("table.compliance-table tr", has_text=product)
    expect(row).to_contain_text("Under-licensed")
    expect(row.locator("td").nth(5)).to_have_text("1")  # shortfall
    expect(row.locator("td").nth(6)).to_have_text("250.00 EUR")  # true-up cost
    _check(page, "compliance", phone=True)

    # drill down to the devices
    row.get_by_role("link", name=product).click()
    expect(page.get_by_role("heading", name=product)).to_be_visible()
    devices = page.locator("table.device-table")
    expect(devices).to_contain_text("LT-6021-1")
    expect(devices).to_contain_text(laptop)
    _check(page, "product-devices", phone=True)

    # ask for the retirement of one laptop, then approve it
    page.get_by_role("link", name=f"Retire {laptop}").click()
    page.get_by_label("Why retire it?").fill("Keyboard and hinge broken; replaced by a new laptop.")
    _check(page, "retirement-request")
    page.get_by_role("button", name="Request retirement").click()
    expect(page).to_have_url(re.compile(r"/assets/retirement$"))
    expect(page.locator(".flash.success")).to_contain_text(f"Retirement of {laptop} requested.")
    _check(page, "queue-request", phone=True)
    page.get_by_role("button", name=f"Approve retirement of {laptop}").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Approved: {laptop} is retired.")

    # record the wipe
    page.locator("#wipes li", has_text=laptop).get_by_label("Certificate number").fill("WIPE-6021")
    _check(page, "queue-wipe")
    page.get_by_role("button", name=f"Record the wipe of {laptop}").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Data wipe of {laptop} recorded.")

    # dispose of it (the form asks for confirmation first)
    disposal = page.locator("#disposals li", has_text=laptop)
    disposal.get_by_label("How", exact=True).select_option(label="Resell")
    disposal.get_by_label(re.compile("Proceeds")).fill("120.00")
    disposal.get_by_label("Recipient").fill("Refurb Co")
    _check(page, "queue-disposal", phone=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Dispose of {laptop}").click()
    expect(page.locator(".flash.success")).to_contain_text(f"{laptop} is disposed of.")
    expect(page.locator("#disposals")).not_to_contain_text(laptop)
    _check(page, "queue-done")

    # gone from the register's active count; its seat is free
    assert _active(page) == active_before - 1
    page.get_by_role("link", name="Disposed", exact=True).click()
    expect(page.locator("table.register-table")).to_contain_text(laptop)
    _check(page, "register-disposed")
    page.goto(f"/assets/compliance/{estate['product']}")
    expect(page.locator("table.compliance-table")).to_contain_text("Compliant")
    expect(page.locator("table.device-table tr", has_text=laptop)).to_contain_text("could be reclaimed")
    _check(page, "product-after")

    # the laptop's own page: its costs and where it went
    page.get_by_role("link", name=laptop).click()
    costs = page.locator("#costs")
    expect(costs).to_contain_text("Total cost of ownership")
    expect(costs).to_contain_text("1,400.00 EUR")
    expect(costs).to_contain_text("Disposed of (Resell)")
    _check(page, "laptop-costs", phone=True)


def test_a_report_page_shows_its_chart_from_the_session(page, web_server):
    estate = _estate(web_server, "6022")
    _sign_in(page, estate["manager"])
    page.goto("/assets/reports")
    _check(page, "reports")
    page.locator(".report-list").get_by_role("link", name="Licence compliance", exact=True).click()
    chart = page.get_by_role("img", name=re.compile("Chart of the report Licence compliance"))
    expect(chart).to_be_visible()
    # the chart loaded (drawn by the session-authenticated endpoint, not a broken image)
    page.wait_for_function("() => { const i = document.querySelector('img.chart'); return i && i.complete; }")
    assert page.evaluate("() => document.querySelector('img.chart').naturalWidth") > 0
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("licence-compliance-")
    _check(page, "report-licence-compliance", phone=True)
