"""An escalation rule's notification goes out through the notification outbox to a real SMTP
server (aiosmtpd), once, however often the scan runs."""

from __future__ import annotations

import time

from cairn.jobs import execute
from tests.integrations.email.test_notify import dispatch

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def test_a_breach_escalation_mails_its_recipients_once(app, committed_db, committed_make, smtp_sink):
    client = app.test_client()
    admin = committed_make.headers("admin")
    agent = committed_make.user("agent", email="oncall@example.com")
    team = committed_make.team("Service desk", members=[agent])
    agent_headers = committed_make.headers(user=agent)
    calendar = client.post(
        "/api/v1/calendars", json={"name": "24x7", "time_zone": "UTC", "hours": EVERY_DAY}, headers=admin
    ).get_json()
    r = client.post(
        "/api/v1/sla-policies",
        json={"name": "instant", "calendar_id": calendar["id"], "response_seconds": 3600, "resolution_seconds": 1},
        headers=admin,
    )
    assert r.status_code == 201, r.get_json()
    r = client.post(
        "/api/v1/escalation-rules",
        json={"name": "tell the duty manager", "on": "breach", "actions": [{"notify": ["duty@example.com", "team"]}]},
        headers=admin,
    )
    assert r.status_code == 201, r.get_json()
    r = client.post(
        "/api/v1/tickets",
        json={"kind": "incident", "title": "Payroll is down", "team_id": team.id, "assignee_id": agent.id},
        headers=agent_headers,
    )
    assert r.status_code == 201, r.get_json()
    ticket = r.get_json()
    dispatch()
    before = len(smtp_sink.messages)
    time.sleep(1.5)
    execute("tickets.tasks.mark_sla_breaches")
    execute("tickets.tasks.mark_sla_breaches")
    dispatch()
    new = smtp_sink.wait_for(before + 2)[before:]
    assert sorted(m["To"] for m in new) == ["duty@example.com", "oncall@example.com"]
    assert all(m["Subject"] == f"[{ticket['number']}] Payroll is down" for m in new)
    assert (
        "escalated by the rule tell the duty manager (sla.resolution.breach)"
        in new[0].get_body(("plain",)).get_content()
    )
    execute("tickets.tasks.mark_sla_breaches")
    dispatch()
    time.sleep(0.5)
    assert len(smtp_sink.messages) == before + 2
