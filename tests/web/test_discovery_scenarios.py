"""A technician settles what discovery left for a person, in Debian's Chromium against gunicorn (two
workers): a feed's value held back by a manual edit is accepted, a host the scan found is added to
the CMDB, the run's page shows what it changed. Every page is checked with axe-core and photographed
under tests/web/output/, at a desktop's width and at a phone's."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser import check_page as _check
from tests.web.browser import sign_in as _sign_in


def _scan(tag: str) -> bytes:
    return f"""<?xml version="1.0"?><!DOCTYPE nmaprun><nmaprun scanner="nmap">
<host><status state="up"/><address addr="10.77.{tag[:2]}.{tag[2:]}" addrtype="ipv4"/>
  <address addr="02:77:00:00:{tag[:2]}:{tag[2:]}" addrtype="mac" vendor="Acme NICs"/>
  <hostnames><hostname name="printer-{tag}.example.net" type="PTR"/></hostnames>
  <ports>
  <port protocol="tcp" portid="9100"><state state="open"/>
    <service name="jetdirect" product="HP JetDirect"/></port>
  <port protocol="tcp" portid="443"><state state="open"/>
    <service name="https" product="nginx" version="1.22"/></port></ports>
  <os><osmatch name="HP embedded" accuracy="91"/></os></host>
</nmaprun>""".encode()


def _estate(server, tag: str) -> dict:
    """Two CIs sharing a host name, a feed whose OS version a person pinned by hand, a scan."""
    technician = server.user("agent", name=f"Tech {tag}")

    def make():
        from cmdb.services import create_ci, get_ci, update_ci
        from integrations import discovery
        from integrations.agents import nmap

        for name, ci_class in ((f"dup-{tag}-a", "server"), (f"dup-{tag}-b", "virtual_machine")):
            create_ci({"name": name, "ci_class": ci_class, "attributes": {"hostname": f"dup-{tag}"}})
        item = {"ci_class": "server", "name": f"db-{tag}", "serial_number": f"SN-{tag}", "vendor": "Dell",
                "attributes": {"os_version": "12.1"}}  # fmt: skip
        first = discovery.start_run(f"sccm-{tag}", [item], dry_run=False)
        server_id = first.results[0]["ci_id"]
        update_ci(get_ci(server_id), {"attributes": {"os_version": "12.0-pinned"}})
        items = [{**item, "attributes": {"os_version": "12.4"}}, {"ci_class": "server", "hostname": f"dup-{tag}"}]
        run = discovery.start_run(f"sccm-{tag}", items, dry_run=False)
        scan = nmap.import_scan(_scan(tag))
        return {"server": server_id, "run": run.id, "scan": scan.id}

    return {"technician": technician, **server.seed(make)}


def test_a_technician_settles_a_held_value_and_adds_an_unmanaged_host(page, web_server):
    tag = "4217"
    estate = _estate(web_server, tag)
    _sign_in(page, estate["technician"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Discovery").click()
    expect(page.get_by_role("heading", name="Discovery", exact=True)).to_be_visible()
    conflicts = page.locator("table.conflicts")
    ambiguous = conflicts.locator("tr.ambiguous", has_text=f"dup-{tag}-a")
    expect(ambiguous).to_contain_text("matches 2 CIs")
    expect(ambiguous).to_contain_text(f"dup-{tag}-b")
    held = conflicts.locator("tr.held", has_text=f"db-{tag}")
    expect(held).to_contain_text("12.4")
    expect(held).to_contain_text("12.0-pinned")
    host = page.locator("table.unmanaged tr", has_text="10.77.42.17")
    expect(host).to_contain_text("9100/tcp jetdirect")
    expect(host).to_contain_text("HP embedded")
    _check(page, "discovery-overview", phone=True)

    # the feed's value is accepted: the CI takes it and the conflict leaves the list
    page.get_by_role("button", name=f"Accept discovered values for db-{tag}").click()
    expect(page.locator(".flash.success")).to_contain_text(f"now db-{tag}'s")
    expect(page.locator("table.conflicts tr.held", has_text=f"db-{tag}")).to_have_count(0)

    # the unknown host becomes a printer in the CMDB
    host = page.locator("table.unmanaged tr", has_text="10.77.42.17")
    host.get_by_label(f"Class of printer-{tag}.example.net").select_option(label="Printer")
    host.get_by_label(f"Name of printer-{tag}.example.net").fill(f"Printer {tag}")
    _check(page, "discovery-add-host")
    host.get_by_role("button", name=f"Add to the CMDB: printer-{tag}.example.net").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Printer {tag} is now in the CMDB.")
    expect(page.locator("#unmanaged-h").locator("..")).not_to_contain_text("10.77.42.17")

    # the run's page: what it changed, item by item, and the accepted values
    page.goto(f"/discovery/runs/{estate['run']}")
    expect(page.get_by_role("heading", name=f"Discovery run {estate['run']}")).to_be_visible()
    expect(page.locator("table.results")).to_contain_text("accepted: attributes.os_version")
    expect(page.locator("table.results")).to_contain_text(f"dup-{tag}-a")
    _check(page, "discovery-run", phone=True)
    page.goto(f"/discovery/runs/{estate['scan']}")
    added = page.locator("table.results tr", has_text="10.77.42.17")
    expect(added).to_contain_text("added")
    added.get_by_role("link", name=f"Printer {tag}").click()
    expect(page).to_have_url(re.compile(r"/cis/\d+$"))
    expect(page.get_by_role("heading", name=f"Printer {tag}", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("10.77.42.17")
