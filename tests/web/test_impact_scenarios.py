"""The impact map in Debian's Chromium against gunicorn (two workers) on this run's database: a change
manager opens a core switch's page, sees what goes down and what is degraded up to the business
services, selects a business service and sees why (the path lit up), then adds the second core switch
as a what-if and watches the count change; a big blast radius opens grouped and a group expands;
the ticket page draws its CIs' blast radius. Every page is checked with axe-core and photographed
(1280 px and 390 px) under tests/web/output/."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser import shoot
from tests.web.test_impact_pages import build_estate
from tests.web.test_scenarios import _check, _sign_in


def _ready(page, scope: str = "") -> None:
    expect(page.locator(f"{scope} .map-frame".strip())).to_have_attribute("data-ready", "1")


def _click_node(page, node_id: str) -> None:
    """A real mouse click where Cytoscape drew the node."""
    x, y = page.evaluate(
        """(id) => {
            const node = window.cairnMap.getElementById(id);
            const at = node.renderedPosition();
            const box = window.cairnMap.container().getBoundingClientRect();
            return [box.x + at.x, box.y + at.y];
        }""",
        node_id,
    )
    page.mouse.click(x, y)


def _states(page) -> dict:
    return page.evaluate(
        """() => {
            const cy = window.cairnMap;
            return {
                nodes: cy.nodes().length,
                failed: cy.nodes('.failed').map((n) => n.data('name')),
                down: cy.nodes('.down').length,
                degraded: cy.nodes('.degraded').length,
                services: cy.nodes('.service').map((n) => n.data('name')).sort(),
                incidents: cy.nodes('.incident').map((n) => n.data('name')),
            };
        }"""
    )


def _on_path(page) -> set[str]:
    return set(page.evaluate("() => window.cairnMap.elements('.on-path').map((e) => e.id())"))


def test_a_change_manager_sees_a_core_switchs_blast_radius_and_asks_what_if(page, web_server):
    ids = web_server.seed(build_estate, "s1")
    _sign_in(page, web_server.user("change_manager", name="Cora Change"))

    # the core switch's page draws its blast radius
    page.goto(f"/cis/{ids['core1']}")
    _ready(page, "#impact-map")
    states = _states(page)
    assert states["failed"] == ["core-sw-01-s1"]
    assert (states["nodes"], states["down"], states["degraded"]) == (14, 6, 7)
    assert states["services"] == ["Payroll-s1", "Web Shop-s1"]
    assert states["incidents"] == ["payroll-app-s1"]
    _check(page, "ci-page-map")

    # select a business service: the path that explains it is lit, the panel says why
    _click_node(page, f"ci-{ids['payroll']}")
    path = ["core1", "tor1", "host1", "vm5", "app_a", "payroll"]
    lit = _on_path(page)
    assert {f"ci-{ids[k]}" for k in path} <= lit
    assert len([e for e in lit if e.startswith("r-")]) == len(path) - 1  # the relationships between them
    assert f"ci-{ids['shop']}" not in lit
    details = page.locator("#impact-map .map-details")
    expect(details).to_contain_text("Payroll-s1")
    expect(details.locator(".why-path li")).to_have_text([f"{n}-s1" for n in (
        "core-sw-01", "tor-sw-01", "esx-01", "vm-solo", "payroll-app", "Payroll")])  # fmt: skip
    _check(page, "service-path-highlighted")
    page.get_by_role("button", name="Clear highlight").click()
    assert _on_path(page) == set()

    # the full map: the same answer, and the table beside it
    page.get_by_role("link", name=re.compile("Full map")).click()
    _ready(page)
    expect(page.locator("#count-total")).to_have_text("13")
    expect(page.locator(".impact-table tbody tr")).to_have_count(13)
    _check(page, "full-map")

    # what-if: the second core switch joins the failure set through the picker
    page.get_by_label("Add a CI to the failure set (what-if)").fill("core-sw-02-s1")
    suggestion = page.locator("#what-if-results").get_by_role("button", name=re.compile("core-sw-02-s1"))
    expect(suggestion).to_be_visible()
    _check(page, "what-if-picker")
    suggestion.click()
    expect(page).to_have_url(re.compile(rf"/impact\?ci={ids['core1']}&ci={ids['core2']}$"))
    _ready(page)
    expect(page.locator("#count-total")).to_have_text("15")
    states = _states(page)
    assert sorted(states["failed"]) == ["core-sw-01-s1", "core-sw-02-s1"] and states["nodes"] == 17
    cluster = page.evaluate(f"() => window.cairnMap.getElementById('ci-{ids['cluster']}').classes()")
    assert "down" in cluster  # losing both switches leaves the cluster no member up
    _check(page, "what-if-both-cores")

    # the PNG export is drawn in the browser
    with page.expect_download() as download:
        page.locator("#map-png").click()
    assert download.value.suggested_filename == "impact-map.png"

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)  # the map fits itself to the new width
    shoot(page, "what-if-phone")


def test_a_big_blast_radius_opens_grouped_and_a_group_expands(page, web_server):
    ids = web_server.seed(build_estate, "s2", vms=170)
    _sign_in(page, web_server.user("agent", name="Ted Tech"))

    page.goto(f"/impact?ci={ids['edge']}")
    _ready(page)
    states = _states(page)
    assert states["nodes"] == 2  # the switch and one group of 170 VMs
    _check(page, "grouped")

    _click_node(page, "g-class-virtual_machine")
    page.wait_for_function("() => window.cairnMapExpanded !== undefined")
    children = page.evaluate("() => window.cairnMap.getElementById('g-class-virtual_machine').children().length")
    assert children == 81  # 80 CIs and the "90 more are in the table" node
    expect(page.locator(".map-details")).to_contain_text("Virtual machine")
    _check(page, "group-expanded")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    shoot(page, "group-expanded-phone")

    # the ticket page draws its CIs' blast radius
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/tickets/{ids['incident']}")
    _ready(page, "#impact-map")
    states = _states(page)
    assert states["failed"] == ["payroll-app-s2"] and states["services"] == ["Payroll-s2"]
    _check(page, "ticket-page-map")
