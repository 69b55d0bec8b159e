"""A technician reads an alert storm in Debian's Chromium against gunicorn (two workers): the event
console shows the storm as one incident on the switch (its hosts by CI, the rule and the reasoning)
and the alerts no rule bound; the incident's page shows its alerts. Pages are checked with axe-core
and photographed under tests/web/output/, at a desktop's width and at a phone's."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser import check_page as _check
from tests.web.browser import sign_in as _sign_in


def _storm(server, tag: str) -> dict:
    technician = server.user("agent", name=f"Tech {tag}")

    def make():
        from cmdb.services import create_ci
        from integrations.events import services
        from relations.services import create_relationship

        switch = create_ci({"name": f"sw-{tag}", "ci_class": "network_switch"})
        hosts = [create_ci({"name": f"srv-{tag}-{i}", "ci_class": "server"}) for i in range(4)]
        for host in hosts:
            create_relationship({"source_id": host.id, "type": "connected_to", "target_id": switch.id})
        app_ci = create_ci({"name": f"shop-{tag}", "ci_class": "application"})
        service = create_ci({"name": f"Web shop {tag}", "ci_class": "business_service", "criticality": "high"})
        create_relationship({"source_id": app_ci.id, "type": "runs_on", "target_id": hosts[0].id})
        create_relationship({"source_id": service.id, "type": "uses", "target_id": app_ci.id})
        events = [
            {"source": "prometheus", "fingerprint": f"{tag}-{h.name}", "status": "firing", "severity": "warning",
             "summary": f"{h.name} is unreachable", "labels": {"instance": f"{h.name}:9100"}}
            for h in hosts
        ] + [
            {"source": "prometheus", "fingerprint": f"{tag}-switch", "status": "firing", "severity": "critical",
             "summary": f"sw-{tag} does not answer SNMP", "labels": {"instance": f"sw-{tag}:9116"}},
            {"source": "prometheus", "fingerprint": f"{tag}-stray", "status": "firing", "severity": "warning",
             "summary": f"stray-{tag} disk full", "labels": {"instance": f"stray-{tag}:9100"}},
        ]  # fmt: skip
        rows = services.accept(events)
        services.process_range(rows[0].id, rows[-1].id)
        return {"switch": switch.id}

    return {"technician": technician, **server.seed(make)}


def test_an_alert_storm_reads_as_one_incident_on_the_switch(page, web_server):
    tag = "5310"
    storm = _storm(web_server, tag)
    _sign_in(page, storm["technician"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Event console")).to_be_visible()
    group = page.locator("section.card", has=page.get_by_role("heading", name=re.compile(f"sw-{tag}")))
    expect(group).to_contain_text("5 alerts")
    expect(group).to_contain_text("alerting CI the others depend on")
    expect(group).to_contain_text(f"Web shop {tag}")
    for i in range(4):
        expect(group.locator("table.alerts")).to_contain_text(f"srv-{tag}-{i} is unreachable")
    expect(page.locator("table.unbound")).to_contain_text(f"stray-{tag} disk full")
    _check(page, "event-console", phone=True)

    group.get_by_role("link", name=re.compile(r"^INC\d{7}$")).click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    alerts = page.locator("#events")
    expect(alerts.get_by_role("heading", name=re.compile("Monitoring alerts"))).to_be_visible()
    expect(alerts).to_contain_text(f"sw-{tag} does not answer SNMP")
    expect(alerts.locator("tr.alert")).to_have_count(5)
    expect(alerts).to_contain_text(f"sw-{tag} is alerting and the other 4 alerting CIs depend on it")
    _check(page, "incident-with-alerts")

    # The switch's impact map marks the CIs whose alerts are firing.
    page.goto(f"/impact?ci={storm['switch']}")
    expect(page.locator(".map-frame")).to_have_attribute("data-ready", "1")
    alerting = page.evaluate("() => window.cairnMap.nodes('.alerting').map((n) => n.data('name')).sort()")
    assert alerting == sorted([f"sw-{tag}", *(f"srv-{tag}-{i}" for i in range(4))])
    expect(page.locator(".map-legend")).to_contain_text("firing alert")
    _check(page, "impact-map-alerting")
