"""Affected CIs: add/remove recorded in the CI's history, the CI's tickets open first, figures."""

from datetime import UTC, datetime, timedelta

import time_machine


def test_add_and_remove_ci_are_in_the_ci_history(client, desk, agent, make):
    ci = make.ci("server", name="db-01")
    t = desk.open(title="db slow")
    url = f"/api/v1/tickets/{t['id']}/cis"
    r = client.post(url, json={"ci_id": ci.id}, headers=agent.headers)
    assert r.status_code == 201 and r.json["ci"]["name"] == "db-01"
    assert client.post(url, json={"ci_id": ci.id}, headers=agent.headers).status_code == 409
    assert client.post(url, json={"ci_id": 999999}, headers=agent.headers).status_code == 422
    client.post(f"/api/v1/tickets/{t['id']}/comments", json={"body": "checked the disks"}, headers=agent.headers)
    desk.move(t, "in_progress")
    assert client.delete(f"{url}/{ci.id}", headers=agent.headers).status_code == 204
    assert client.delete(f"{url}/{ci.id}", headers=agent.headers).status_code == 404
    assert desk.get(t)["ci_ids"] == []
    history = client.get(f"/api/v1/cis/{ci.id}/history", headers=agent.headers).json
    ticket_rows = [(h["kind"], h["object_type"], h["action"]) for h in history if h["kind"] == "ticket"]
    assert ticket_rows == [
        ("ticket", "ticket_ci", "update"),  # removed
        ("ticket", "ticket", "transition"),
        ("ticket", "ticket", "comment"),
        ("ticket", "ticket_ci", "create"),  # added
    ]
    assert "removed from" in history[0]["summary"] and t["number"] in history[0]["summary"]
    assert history[-1]["kind"] == "change" and history[-1]["action"] == "create"  # the CI's own creation
    # adding it again reopens the link and is recorded again
    assert client.post(url, json={"ci_id": ci.id}, headers=agent.headers).status_code == 201
    assert desk.get(t)["ci_ids"] == [ci.id]


def test_ci_tickets_open_first(client, desk, agent, requester, make):
    ci = make.ci("application")
    old_closed = desk.open(title="old", ci_ids=[ci.id], impact=1, urgency=1)
    desk.move(old_closed, "resolved", note="ok", resolution_code="fixed")
    low = desk.open(title="low", ci_ids=[ci.id])
    high = desk.open(title="high", ci_ids=[ci.id], impact=1, urgency=2)
    desk.open(title="elsewhere")
    r = client.get(f"/api/v1/cis/{ci.id}/tickets", headers=agent.headers)
    assert r.status_code == 200
    assert [t["id"] for t in r.json] == [high["id"], low["id"], old_closed["id"]]
    assert client.get("/api/v1/cis/999999/tickets", headers=agent.headers).status_code == 404
    # a requester sees only its own tickets, on its own CIs
    assert client.get(f"/api/v1/cis/{ci.id}/tickets", headers=requester.headers).status_code == 404
    laptop = make.ci("laptop", assigned_to_id=requester.id)
    mine = desk.open(headers=requester.headers, ci_ids=[laptop.id])
    desk.open(ci_ids=[laptop.id], title="agent's own")
    r = client.get(f"/api/v1/cis/{laptop.id}/tickets", headers=requester.headers)
    assert [t["id"] for t in r.json] == [mine["id"]]


def test_ci_figures(client, desk, agent, make):
    ci = make.ci("server")
    t0 = datetime(2030, 5, 1, 8, tzinfo=UTC)
    with time_machine.travel(t0 - timedelta(days=200), tick=False):
        desk.open(ci_ids=[ci.id], title="ancient")
    with time_machine.travel(t0, tick=False):
        a = desk.open(ci_ids=[ci.id])
        b = desk.open(ci_ids=[ci.id])
        desk.open("request", ci_ids=[ci.id])
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        desk.move(a, "on_hold", note="vendor")
    with time_machine.travel(t0 + timedelta(hours=3), tick=False):
        desk.move(a, "resolved", note="fixed", resolution_code="fixed")  # 3 h, 2 h of it on hold
    with time_machine.travel(t0 + timedelta(hours=5), tick=False):
        desk.move(b, "resolved", note="fixed", resolution_code="fixed")  # 5 h
        figures = client.get(f"/api/v1/cis/{ci.id}/ticket-figures", headers=agent.headers).json
    assert figures["open_tickets"] == 2  # the ancient incident and the request
    assert figures["incidents_last_90_days"] == 2
    assert figures["mean_time_to_resolve_seconds"] == (1 * 3600 + 5 * 3600) // 2


def test_ci_with_tickets_cannot_be_deleted(client, desk, agent, admin, make):
    ci = make.ci("server")
    desk.open(ci_ids=[ci.id])
    assert client.delete(f"/api/v1/cis/{ci.id}", headers=admin).status_code == 409
