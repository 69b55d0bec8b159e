"""A technician saves the CI list's filters as a view for their team and opens it again, in Debian's
Chromium against gunicorn (two workers); the bar is checked with axe-core and photographed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser import check_page
from tests.web.browser import sign_in as _sign_in


def test_a_technician_saves_and_reopens_a_view(page, web_server):
    tech = web_server.user("agent", name="Vera View")

    def make():
        from cairn.auth.services import create_team
        from cmdb.services import create_ci

        create_team("Views 5113", member_ids=[tech.id])
        for name, status in (("vw-5113-a", "deployed"), ("vw-5113-b", "in_stock")):
            create_ci({"name": name, "ci_class": "router", "status": status})

    web_server.seed(make)
    _sign_in(page, tech)
    page.goto("/cis?ci_class=router&status=deployed&q=vw-5113")
    results = page.locator("#ci-results")
    expect(results).to_contain_text("vw-5113-a")
    expect(results).not_to_contain_text("vw-5113-b")
    bar = page.locator("#views-bar")
    bar.locator("summary").click()
    bar.get_by_label("Save these filters as").fill("Deployed routers")
    bar.get_by_label("for").select_option(label="team Views 5113")
    check_page(page, "views-save", phone=True)
    bar.get_by_role("button", name="Save view").click()
    expect(page.locator(".flash.success")).to_contain_text("View “Deployed routers” saved and shared with Views 5113.")
    expect(page).to_have_url(re.compile(r"/cis\?view=\d+"))
    expect(page.locator("#views-bar summary")).to_contain_text("Deployed routers")
    check_page(page, "views-open")

    # later: from the bare list, the view gives the same answer
    page.goto("/cis")
    page.locator("#views-bar summary").click()
    page.locator("#views-bar").get_by_role("link", name="Deployed routers").click()
    expect(page.locator("#ci-results")).to_contain_text("vw-5113-a")
    expect(page.locator("#ci-results")).not_to_contain_text("vw-5113-b")
