"""The real Alertmanager (Debian's prometheus-alertmanager, `make test` installs it when root), on
free ports of 127.0.0.1, its webhook receiver pointed at a live test server: alerts posted to its
own API as Prometheus would post them, for a core switch and the 200 hosts behind it, become one
incident on the switch with the 201 alerts attached; resolved through Alertmanager, the incident
resolves. Jobs run inline in the live server, as in the other live-server tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from integrations.events.models import EventGroup, MonitoringEvent
from tests.integrations.events.conftest import build_estate
from tests.peers import free_port
from tickets.models import Ticket

HOSTS = 200


@pytest.fixture
def live_server(app, committed_db):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def alertmanager(live_server, committed_make):
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail(
            "prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager (.ci/services.sh)"
        )
    user = committed_make.user("integration")
    token = committed_make.token(user, scopes=["events:write"])
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cairn-alertmanager-") as directory:
        config = Path(directory) / "alertmanager.yml"
        config.write_text(
            f"""
route:
  receiver: cairn
  group_by: [job]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: cairn
    webhook_configs:
      - url: {live_server}/api/v1/events/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""
        )
        log = open(Path(directory) / "alertmanager.log", "w+")  # noqa: SIM115 - read when it fails to start
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={directory}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"Alertmanager did not start: {log.read()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()


def _alerts(switch, hosts, *, ends_at=None) -> list[dict]:
    started = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    alerts = [
        {"labels": {"alertname": "SwitchDown", "job": "snmp", "instance": f"{switch.name}:9116",
                    "severity": "critical"},
         "annotations": {"summary": f"{switch.name} is not answering SNMP"}, "startsAt": started}
    ] + [
        {"labels": {"alertname": "HostDown", "job": "snmp", "instance": f"{host.name}:9100", "severity": "warning"},
         "annotations": {"summary": f"{host.name} is unreachable"}, "startsAt": started}
        for host in hosts
    ]  # fmt: skip
    for alert in alerts:
        alert["generatorURL"] = "http://prometheus.example/graph"
        if ends_at is not None:
            alert["endsAt"] = ends_at.isoformat()
    return alerts


def _wait_for(db, predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.remove()
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_an_alertmanager_storm_is_one_incident_on_the_switch_and_resolves_with_it(
    alertmanager, committed_db, committed_make
):
    db = committed_db
    switch, hosts, _ = build_estate(committed_make, HOSTS, service=False)
    posted = httpx.post(f"{alertmanager}/api/v2/alerts", json=_alerts(switch, hosts), timeout=10)
    assert posted.status_code == 200, posted.text

    def attached():
        alerts = list(db.session.scalars(select(MonitoringEvent).where(MonitoringEvent.ticket_id.is_not(None))))
        return alerts if len(alerts) == HOSTS + 1 else None

    alerts = _wait_for(db, attached, 60, f"{HOSTS + 1} alerts attached to an incident")
    incidents = list(db.session.scalars(select(Ticket).where(Ticket.kind == "incident")))
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.ci_ids == [switch.id]
    assert {a.ticket_id for a in alerts} == {incident.id}
    assert {a.ci_id for a in alerts} == {switch.id} | {h.id for h in hosts}
    assert all(a.source == "alertmanager" and a.status == "firing" for a in alerts)
    group = db.session.scalar(select(EventGroup))
    assert (group.root_ci_id, group.rule, group.alert_count) == (switch.id, "alerting_ancestor", HOSTS + 1)

    resolved = httpx.post(
        f"{alertmanager}/api/v2/alerts",
        json=_alerts(switch, hosts, ends_at=datetime.now(UTC) - timedelta(seconds=1)),
        timeout=10,
    )
    assert resolved.status_code == 200, resolved.text

    def incident_resolved():
        ticket = db.session.get(Ticket, incident.id)
        return ticket if ticket.state == "resolved" else None

    ticket = _wait_for(db, incident_resolved, 60, "the incident to resolve")
    assert f"All {HOSTS + 1} alerts" in ticket.resolution_note
    db.session.remove()
    states = set(db.session.scalars(select(MonitoringEvent.status)))
    assert states == {"resolved"}
    assert len(list(db.session.scalars(select(Ticket).where(Ticket.kind == "incident")))) == 1
