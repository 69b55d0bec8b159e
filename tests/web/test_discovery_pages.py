"""The discovery page through Flask's test client as a signed-in browser: the sources with their last
run, the runs and what each changed, the conflicts waiting for a person (an item matching two CIs, a
value a manual edit holds back) and the unmanaged hosts of a scan; accepting a held value and adding
an unmanaged host (each refusal changing nothing), and who may open or settle what."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.models import ConfigurationItem
from integrations.agents.models import AgentDevice
from tests.integrations.agents.conftest import compressed, fixture_xml
from tests.web.pages import post, sign_in

RUNS = "/api/v1/discovery/runs"
SCAN = """<?xml version="1.0"?><!DOCTYPE nmaprun><nmaprun scanner="nmap">
<host><status state="up"/><address addr="10.20.0.5" addrtype="ipv4"/>
  <address addr="00:1A:2B:3C:4D:5E" addrtype="mac" vendor="Acme NICs"/>
  <hostnames><hostname name="printer-3.example.net" type="PTR"/></hostnames>
  <ports>
  <port protocol="tcp" portid="9100"><state state="open"/>
    <service name="jetdirect" product="HP JetDirect"/></port></ports>
  <os><osmatch name="HP printer firmware" accuracy="93"/></os></host>
<host><status state="up"/><address addr="10.20.0.9" addrtype="ipv4"/></host>
<host><status state="down"/><address addr="10.20.0.10" addrtype="ipv4"/></host>
</nmaprun>"""


def _text(response) -> str:
    return response.get_data(as_text=True)


def _section(html: str, heading_id: str) -> str:
    match = re.search(rf'<section class="card" aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert match, f"no section {heading_id}"
    return match.group(1)


def _count(db, model=ConfigurationItem) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def estate(client, make, db):
    """Two CIs sharing a host name (an ambiguous item), a server whose OS version was typed by hand
    after the feed set it (a held value), and a scan with one known and one unknown host."""
    feed = make.headers("integration")
    make.ci("server", name="dup-a", attributes={"hostname": "dup"})
    make.ci("virtual_machine", name="dup-b", attributes={"hostname": "dup"})
    known = make.ci("server", name="known-host", attributes={"ip_addresses": ["10.20.0.9"]})
    item = {"ci_class": "server", "serial_number": "SRV-9", "vendor": "Dell", "attributes": {"os_version": "12.1"}}
    first = client.post(RUNS, headers=feed, json={"source": "sccm", "items": [item]}).json
    server_id = first["results"][0]["ci_id"]
    client.patch(f"/api/v1/cis/{server_id}", headers=feed, json={"attributes": {"os_version": "12.0-pinned"}})
    items = [{**item, "attributes": {"os_version": "12.4"}}, {"ci_class": "server", "hostname": "dup"}]
    second = client.post(RUNS, headers=feed, json={"source": "sccm", "items": items}).json
    scan = client.post("/api/v1/discovery/nmap", headers=feed, data=SCAN, content_type="application/xml").json
    return {"server": server_id, "known": known.id, "run": second["id"], "scan": scan["id"], "feed": feed}


@pytest.fixture
def site_token(db):
    from integrations.agents.services import create_token

    _, secret = create_token("hq")
    db.session.commit()
    return secret


@pytest.fixture
def technician(client, make):
    sign_in(client, make.user("agent", name="Tech Nician"))
    return client


def test_the_overview_shows_sources_conflicts_unmanaged_hosts_and_runs(technician, estate):
    html = _text(technician.get("/discovery"))
    figures = re.findall(r'<span class="figure[^"]*">([\d,]+)</span>', html)
    assert figures[:4] == ["2", "3", "2", "1"], figures  # sources, runs today, conflicts, unmanaged
    conflicts = _section(html, "conflicts-h")
    assert "matches 2 CIs" in conflicts and "dup-a" in conflicts and "dup-b" in conflicts
    assert "held back by a manual edit" in conflicts and "12.4" in conflicts and "12.0-pinned" in conflicts
    unmanaged = _section(html, "unmanaged-h")
    assert "10.20.0.5" in unmanaged and "00:1a:2b:3c:4d:5e" in unmanaged and "printer-3.example.net" in unmanaged
    assert "9100/tcp jetdirect" in unmanaged and "HP printer firmware" in unmanaged
    assert "10.20.0.9" not in unmanaged and "10.20.0.10" not in unmanaged, "matched and down hosts are not listed"
    sources = _section(html, "sources-h")
    assert "sccm" in sources and "nmap scans" in sources
    runs = " ".join(re.sub(r"<[^>]+>", " ", _section(html, "runs-h")).split())
    assert f"run {estate['scan']}" in runs and "2 hosts · 1 matched · 1 unmanaged" in runs
    assert '<a href="/discovery"' in html and 'aria-current="page">Discovery<' in html, "in the menu"


def test_a_run_page_lists_what_it_changed_by_status(technician, estate):
    html = _text(technician.get(f"/discovery/runs/{estate['run']}"))
    assert "Discovery run" in html and "1 held back" in html and "1 ambiguous" in html
    held = _text(technician.get(f"/discovery/runs/{estate['run']}", query_string={"status": "held"}))
    assert "os_version → 12.4" in held and "dup-a" not in held
    ambiguous = _text(technician.get(f"/discovery/runs/{estate['run']}", query_string={"status": "ambiguous"}))
    assert "dup-a" in ambiguous and "12.4" not in ambiguous
    scan = _text(technician.get(f"/discovery/runs/{estate['scan']}"))
    assert "nmap scan" in scan and "known-host" in scan and "Add to the CMDB" in scan
    assert technician.get("/discovery/runs/999999").status_code == 404
    assert technician.get("/discovery/runs/99999999999999").status_code == 404


def test_accepting_a_held_value_writes_it_and_hands_the_field_back_to_the_source(technician, estate, client, db):
    logged = _count(db, ChangeLog)
    response = post(technician, f"/discovery/runs/{estate['run']}/held/1/accept")
    assert response.status_code == 302
    db.session.expire_all()
    server = db.session.get(ConfigurationItem, estate["server"])
    assert server.attributes["os_version"] == "12.4"
    assert _count(db, ChangeLog) == logged + 1, "the edit is in the change log"
    assert "held back by a manual edit" not in _section(_text(technician.get("/discovery")), "conflicts-h")
    # the source owns the field again: its next report updates it
    item = {"ci_class": "server", "serial_number": "SRV-9", "vendor": "Dell", "attributes": {"os_version": "12.5"}}
    client.post(RUNS, headers=estate["feed"], json={"source": "sccm", "items": [item]})
    db.session.expire_all()
    assert db.session.get(ConfigurationItem, estate["server"]).attributes["os_version"] == "12.5"
    # accepting twice, or an item that held nothing back, is refused and changes nothing
    logged = _count(db, ChangeLog)
    again = post(technician, f"/discovery/runs/{estate['run']}/held/1/accept", follow_redirects=True)
    assert "holds back no value" in _text(again)
    assert post(technician, f"/discovery/runs/{estate['run']}/held/2/accept").status_code == 302
    assert _count(db, ChangeLog) == logged


def test_an_unmanaged_host_is_added_and_the_next_scan_matches_it(technician, estate, client, db):
    before = _count(db)
    wrong = post(technician, f"/discovery/runs/{estate['scan']}/hosts/1/add", {"ci_class": "software"})
    assert "Choose a class that has IP addresses" in _text(technician.get(wrong.headers["Location"]))
    form = {"ci_class": "printer", "name": "Printer 3"}
    response = post(technician, f"/discovery/runs/{estate['scan']}/hosts/1/add", form, follow_redirects=True)
    assert "Printer 3 is now in the CMDB" in _text(response)
    ci = db.session.scalar(select(ConfigurationItem).where(ConfigurationItem.name == "Printer 3"))
    assert ci is not None and _count(db) == before + 1
    assert ci.attributes["ip_addresses"] == ["10.20.0.5"]
    assert ci.attributes.get("mac_addresses") == ["00:1a:2b:3c:4d:5e"]
    assert "10.20.0.5" not in _section(_text(technician.get("/discovery")), "unmanaged-h")
    rescan = client.post("/api/v1/discovery/nmap", headers=estate["feed"], data=SCAN, content_type="application/xml")
    assert rescan.json["counts"]["matched"] == 2 and "unmanaged" not in rescan.json["counts"]
    # the same host twice, a matched host, a host the scan does not have: nothing is created
    for index, data, message in (
        (1, {"ci_class": "server"}, "lists no unmanaged host"),
        (2, {"ci_class": "software"}, "lists no unmanaged host"),
        (8, {"ci_class": "server"}, "lists no unmanaged host"),
    ):
        refused = post(technician, f"/discovery/runs/{estate['scan']}/hosts/{index}/add", data, follow_redirects=True)
        assert message in _text(refused)
    assert _count(db) == before + 1


def test_a_name_the_api_refuses_creates_nothing(technician, estate, db):
    before = _count(db)
    form = {"ci_class": "server", "name": "x" * 400}
    response = post(technician, f"/discovery/runs/{estate['scan']}/hosts/1/add", form, follow_redirects=True)
    assert "Some fields are invalid" in _text(response) and "name" in _text(response)
    assert _count(db) == before


def test_readers_see_it_writers_settle_it_requesters_do_not_open_it(client, make, estate, db):
    sign_in(client, make.user("auditor"))
    html = _text(client.get("/discovery"))
    assert "12.0-pinned" in html and "Accept discovered" not in html and "Add to the CMDB" not in html
    assert post(client, f"/discovery/runs/{estate['run']}/held/1/accept").status_code == 403
    assert post(client, f"/discovery/runs/{estate['scan']}/hosts/1/add", {"ci_class": "server"}).status_code == 403
    assert db.session.get(ConfigurationItem, estate["server"]).attributes["os_version"] == "12.0-pinned"
    other = client.application.test_client()
    sign_in(other, make.user("requester"))
    assert other.get("/discovery").status_code == 403
    assert "/discovery" not in _text(other.get("/portal"))


def test_the_devices_page_lists_what_the_agents_reported(technician, client, db, site_token, make):
    response = client.post(
        f"/api/v1/agent-inventory/{site_token}",
        data=compressed(fixture_xml("fusioninventory")),
        headers={"Content-Type": "application/x-compress"},
    )
    assert response.status_code == 200
    device = db.session.scalar(select(AgentDevice))
    ci = db.session.get(ConfigurationItem, device.ci_id)
    html = _text(technician.get("/discovery/devices"))
    assert device.device_id in html and ci.name in html and "hq" in html
    assert device.device_id not in _text(technician.get("/discovery/devices", query_string={"site": "other"}))
    overview = _text(technician.get("/discovery"))
    assert "Inventory agents" in overview and "1 device" in overview


def test_an_empty_estate_says_how_to_start(technician):
    html = _text(technician.get("/discovery"))
    assert "No source has reported yet" in html and "cairn agents token create SITE" in html
    assert "Nothing waits" in html
