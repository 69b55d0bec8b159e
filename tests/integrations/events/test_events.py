"""Events in, incidents out (inline jobs): intake, binding, correlation, life cycle, maintenance."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from integrations.events.models import EventGroup, EventOccurrence, MonitoringEvent
from tests.integrations.events.conftest import build_estate
from tickets.models import Ticket


def _event(fingerprint, status="firing", **extra):
    return {"source": "nagios", "fingerprint": fingerprint, "status": status, "summary": f"{fingerprint} down", **extra}


def _post(client, headers, events):
    response = client.post("/api/v1/events", json=events, headers=headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _incidents(db):
    return list(db.session.scalars(select(Ticket).where(Ticket.kind == "incident").order_by(Ticket.id)))


def test_one_event_is_stored_deduplicated_and_kept_in_its_history(client, db, make, sender, admin):
    host = make.ci("server", name="web-1")
    body = _post(client, sender, _event("web-1-ping", ci={"hostname": "web-1.example.com"}))
    assert body["accepted"] == 1
    _post(client, sender, [_event("web-1-ping", ci={"hostname": "web-1"})])
    alerts = client.get(f"/api/v1/events?ci_id={host.id}", headers=admin).get_json()
    assert len(alerts) == 1 and alerts[0]["occurrences"] == 2 and alerts[0]["bound_by"] == "ci.hostname"
    detail = client.get(f"/api/v1/events/{alerts[0]['id']}", headers=admin).get_json()
    assert [h["outcome"] for h in detail["history"]] == ["repeat", "new"]
    incident = _incidents(db)[0]
    assert incident.ci_ids == [host.id] and alerts[0]["ticket_id"] == incident.id


def test_a_storm_behind_a_switch_is_one_incident_on_the_switch(client, db, make, sender, admin):
    switch, hosts, business = build_estate(make, 20)
    _post(client, sender, [_event(f"{h.name}-down", ci={"id": h.id}, severity="warning") for h in hosts[:10]])
    incidents = _incidents(db)
    assert len(incidents) == 1 and incidents[0].ci_ids == [switch.id], "the silent switch explains the hosts"
    group = db.session.scalar(select(EventGroup))
    assert group.rule == "widest_blast_radius" and group.root_ci_id == switch.id
    _post(client, sender, [_event("core-sw-1-down", ci={"hostname": "core-sw-1"}, severity="critical")])
    _post(client, sender, [_event(f"{h.name}-down", ci={"id": h.id}) for h in hosts[10:]])
    assert len(_incidents(db)) == 1
    answer = client.get(f"/api/v1/tickets/{incidents[0].id}/events", headers=admin).get_json()
    assert len(answer["events"]) == 21
    reasoning = answer["groups"][0]["reasoning"]
    assert answer["groups"][0]["rule"] == "alerting_ancestor" and reasoning["root_ci_id"] == switch.id
    assert reasoning["business_services"] == [{"id": business.id, "name": "Pay staff"}]
    db.session.refresh(incidents[0])
    assert incidents[0].impact == 1 and incidents[0].urgency == 1, "critical service, critical alert"


def test_unrelated_hosts_get_their_own_incidents(client, db, make, sender):
    a, b = make.ci("server", name="lonely-a"), make.ci("server", name="lonely-b")
    _post(client, sender, [_event("a", ci={"id": a.id}), _event("b", ci={"id": b.id})])
    assert sorted(i.ci_ids[0] for i in _incidents(db)) == [a.id, b.id]


def test_binding_rules_strip_the_port_and_unbound_events_are_listed(client, db, make, sender, admin):
    host = make.ci("server", name="db-7", attributes={"ip_addresses": ["192.0.2.7"]})
    app_ci = make.ci("application", name="Billing")
    rules = client.get("/api/v1/event-bindings", headers=admin).get_json()
    assert [r["label"] for r in rules][:2] == ["instance", "hostname"]
    created = client.post(
        "/api/v1/event-bindings", json={"label": "app", "ci_field": "name", "ci_class": "application", "position": 5},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201
    _post(
        client,
        sender,
        [
            _event("by-ip", labels={"instance": "192.0.2.7:9100"}),
            _event("by-name", labels={"app": "billing"}),
            _event("nobody", labels={"instance": "unknown-host:9100"}),
        ],
    )
    by_fp = {a["fingerprint"]: a for a in client.get("/api/v1/events", headers=admin).get_json()}
    assert by_fp["by-ip"]["ci_id"] == host.id and "instance -> hostname_or_ip" in by_fp["by-ip"]["bound_by"]
    assert by_fp["by-name"]["ci_id"] == app_ci.id
    unbound = client.get("/api/v1/events?bound=false", headers=admin).get_json()
    assert [a["fingerprint"] for a in unbound] == ["nobody"] and unbound[0]["disposition"] == "unbound"
    rule_id = created.get_json()["id"]
    assert client.delete(f"/api/v1/event-bindings/{rule_id}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/event-bindings/{rule_id}", headers=admin).status_code == 404


def test_all_resolved_resolves_the_incident_with_a_note(client, db, make, sender, admin):
    switch, hosts, _ = build_estate(make, 3, service=False)
    _post(client, sender, [_event(h.name, ci={"id": h.id}) for h in hosts])
    incident = _incidents(db)[0]
    _post(client, sender, [_event(h.name, "resolved", ci={"id": h.id}) for h in hosts[:2]])
    db.session.refresh(incident)
    assert incident.state == "new"
    _post(client, sender, [_event(hosts[2].name, "resolved", ci={"id": hosts[2].id})])
    db.session.refresh(incident)
    assert incident.state == "resolved" and "All 3 alerts" in incident.resolution_note
    assert client.get(f"/api/v1/events?status=firing&ci_id={hosts[0].id}", headers=admin).get_json() == []


def test_flapping_reopens_once_then_waits_for_quiet(client, db, make, sender, app):
    host = make.ci("server", name="flappy")
    firing, resolved = _event("flap", ci={"id": host.id}), _event("flap", "resolved", ci={"id": host.id})
    with time_machine.travel("2026-12-02 10:00:00+00:00", tick=False) as clock:
        _post(client, sender, firing)
        incident = _incidents(db)[0]
        clock.shift(30)
        _post(client, sender, resolved)
        db.session.refresh(incident)
        assert incident.state == "resolved"
        clock.shift(30)
        _post(client, sender, firing)  # within 5 minutes: the same incident, back in progress
        db.session.refresh(incident)
        assert incident.state == "in_progress" and len(_incidents(db)) == 1
        for _ in range(3):
            clock.shift(30)
            _post(client, sender, resolved)
            clock.shift(30)
            _post(client, sender, firing)
        clock.shift(30)
        _post(client, sender, resolved)
        db.session.refresh(incident)
        assert incident.state == "in_progress", "a flapping alert holds the incident open"
        assert len(_incidents(db)) == 1
        from integrations.events.incidents import settle

        clock.shift(timedelta(minutes=4))
        assert settle() == 0
        clock.shift(timedelta(minutes=2))
        assert settle() == 1
        db.session.refresh(incident)
        assert incident.state == "resolved"


def test_events_in_a_change_window_are_suppressed_into_the_change(client, db, make, sender, admin):
    from cairn.db import utcnow
    from tickets.services import create_ticket
    from tickets.services import transition as move

    switch, hosts, _ = build_estate(make, 2, service=False)
    now = utcnow()
    change = create_ticket(
        {"kind": "change", "title": "Reboot the core switch", "change_type": "emergency", "ci_ids": [switch.id],
         "planned_start": now - timedelta(minutes=5), "planned_end": now + timedelta(hours=1)},
        None,
    )  # fmt: skip
    move(change, "implement", {}, None, system=True)
    db.session.commit()
    _post(client, sender, [_event(h.name, ci={"id": h.id}) for h in hosts] + [_event("sw", ci={"id": switch.id})])
    assert _incidents(db) == []
    answer = client.get(f"/api/v1/tickets/{change.id}/events", headers=admin).get_json()
    assert len(answer["events"]) == 3 and {e["disposition"] for e in answer["events"]} == {"maintenance"}


def test_bad_events_are_422_naming_the_field_and_store_nothing(client, db, sender):
    bad = client.post("/api/v1/events", json=[_event("ok"), _event("x", status="burning")], headers=sender)
    assert bad.status_code == 422 and bad.get_json()["errors"] == {
        "1": {"status": ["Must be one of: firing, resolved."]}
    }
    labels = {f"k{i}": "v" for i in range(65)}
    assert client.post("/api/v1/events", json=_event("y", labels=labels), headers=sender).status_code == 422
    assert client.post("/api/v1/events", json=[], headers=sender).status_code == 422
    assert db.session.scalar(select(func.count()).select_from(EventOccurrence)) == 0
    assert db.session.scalar(select(func.count()).select_from(MonitoringEvent)) == 0


def test_the_body_is_capped(client, app, sender):
    app.config["CAIRN_EVENTS_MAX_BYTES"] = 2000
    try:
        big = [_event(f"e{i}") for i in range(100)]
        assert client.post("/api/v1/events", json=big, headers=sender).status_code == 413
    finally:
        app.config.pop("CAIRN_EVENTS_MAX_BYTES")


def test_the_events_scope_sends_events_and_nothing_else(client, sender):
    assert client.post("/api/v1/tickets", json={"kind": "incident", "title": "x"}, headers=sender).status_code == 403
    assert client.post("/api/v1/events", json=_event("scoped"), headers=sender).status_code == 202


def test_the_incident_follows_the_root_when_a_sibling_alert_moves_it(client, db, make, sender, admin):
    from tickets.models import TicketComment

    switch, hosts, _ = build_estate(make, 3, service=False)
    _post(client, sender, _event("first", ci={"id": hosts[0].id}))
    incident = _incidents(db)[0]
    assert incident.ci_ids == [hosts[0].id]
    _post(client, sender, _event("second", ci={"id": hosts[1].id}))
    db.session.expire_all()
    assert [i.id for i in _incidents(db)] == [incident.id]
    assert db.session.get(Ticket, incident.id).ci_ids == [switch.id]
    notes = db.session.scalars(select(TicketComment.body).where(TicketComment.ticket_id == incident.id)).all()
    assert any("Root cause moved from host-000 to core-sw-1" in n for n in notes)
    group = client.get(f"/api/v1/tickets/{incident.id}/events", headers=admin).get_json()["groups"][0]
    assert group["rule"] == "widest_blast_radius" and "covers 2 of the 2 alerting CIs" in group["reasoning"]["text"]


def test_an_alert_that_connects_two_groups_merges_them(client, db, make, sender, app):
    from relations.services import create_relationship

    router = make.ci("router", name="edge-router")
    left, right = make.ci("network_switch", name="sw-left"), make.ci("network_switch", name="sw-right")
    for switch in (left, right):
        create_relationship({"source_id": switch.id, "type": "connected_to", "target_id": router.id})
    db.session.commit()
    app.config["CAIRN_EVENTS_WINDOW_SECONDS"] = 0  # siblings minutes apart: two groups
    try:
        _post(client, sender, _event("left", ci={"id": left.id}))
        _post(client, sender, _event("right", ci={"id": right.id}))
        assert len(_incidents(db)) == 2
        _post(client, sender, _event("router", ci={"id": router.id}))  # upstream of both roots
    finally:
        app.config.pop("CAIRN_EVENTS_WINDOW_SECONDS")
    db.session.expire_all()
    first, second = _incidents(db)
    assert first.state == "new" and first.ci_ids == [router.id]
    assert second.state == "resolved" and second.resolution_code == "duplicate"
    answer = client.get(f"/api/v1/tickets/{first.id}/events", headers=make.headers("agent")).get_json()
    assert sorted(e["fingerprint"] for e in answer["events"]) == ["left", "right", "router"]


def test_an_older_occurrence_processed_late_changes_nothing(db, make):
    from integrations.events import services

    host = make.ci("server", name="raced")
    firing, resolved = services.accept(
        [_event("race", ci={"id": host.id}), _event("race", "resolved", ci={"id": host.id})]
    )
    services.process_batch([resolved])  # a second worker got the newer one first
    services.process_batch([firing])
    alert = db.session.scalar(select(MonitoringEvent).where(MonitoringEvent.fingerprint == "race"))
    assert alert.status == "resolved" and (firing.outcome, resolved.outcome) == ("stale", "new")
    assert _incidents(db) == []


def test_events_stored_while_redis_is_down_are_swept_and_processed(client, db, make, sender, app):
    from cairn.jobs import execute
    from cairn.jobs.durable import sweep

    host = make.ci("server", name="swept")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        _post(client, sender, [_event("swept", ci={"id": host.id})])
    finally:
        app.config["REDIS_URL"] = None
    db.session.expire_all()
    row = db.session.scalar(select(EventOccurrence))
    assert (row.processing, row.enqueued_at) == ("queued", None), "stored, in no queue"
    assert _incidents(db) == []
    assert sweep(only="events") == {"events": 1}
    db.session.commit()  # the sweep's jobs run after the commit (inline here)
    db.session.expire_all()
    assert db.session.scalar(select(EventOccurrence)).processing == "processed"
    assert [i.ci_ids for i in _incidents(db)] == [[host.id]]
    assert execute("cairn.jobs.durable.sweep")["events"] == 0


def test_times_are_checked_and_go_zero_time_is_none(client, db, sender):
    late = client.post("/api/v1/events", json=_event("late", starts_at="9999-12-31T23:59:59-23:59"), headers=sender)
    assert late.status_code == 422 and "starts_at" in late.get_json()["errors"]
    body = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "cairn",
            "alerts": [{"status": "firing", "labels": {"alertname": "A"}, "annotations": {}, "fingerprint": "zero",
                        "startsAt": "2026-12-02T07:40:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z"}]}  # fmt: skip
    assert client.post("/api/v1/events/alertmanager", json=body, headers=sender).status_code == 202
    row = db.session.scalar(select(EventOccurrence))
    assert row.ends_at is None and row.starts_at.year == 2026 and row.summary == "A"
    # What is not a time is refused (Alertmanager sends Go's zero time, never an empty string).
    body["alerts"][0].update(fingerprint="wrong", endsAt="yesterday")
    wrong = client.post("/api/v1/events/alertmanager", json=body, headers=sender)
    assert wrong.status_code == 422 and "endsAt" in wrong.get_json()["errors"]["alerts"]["0"]
