"""SLA due times from the priority, on-hold time excluded, and the breach job; the clock is driven."""

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cairn.jobs import enqueue_now

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def at(offset: timedelta):
    return time_machine.travel(T0 + offset, tick=False)


def sla_of(desk, ticket):
    sla = desk.get(ticket)["sla"]
    return {k: datetime.fromisoformat(v) if k.endswith("_due") else v for k, v in sla.items()}


def run_breach_job():
    enqueue_now("tickets.tasks.mark_sla_breaches")


def test_default_targets_per_priority(desk):
    expected = {1: (15, 4 * 60), 2: (60, 8 * 60), 3: (4 * 60, 3 * 24 * 60), 4: (24 * 60, 10 * 24 * 60),
                5: (2 * 24 * 60, 20 * 24 * 60)}  # fmt: skip
    combos = {1: (1, 1), 2: (1, 2), 3: (2, 2), 4: (2, 3), 5: (3, 3)}
    with at(timedelta()):
        for priority, (impact, urgency) in combos.items():
            sla = sla_of(desk, desk.open(impact=impact, urgency=urgency))
            response, resolution = expected[priority]
            assert sla["response_due"] == T0 + timedelta(minutes=response)
            assert sla["resolution_due"] == T0 + timedelta(minutes=resolution)


def test_configured_policy_overrides_the_default(app, desk):
    app.config["CAIRN_SLA_POLICIES"] = {"request": {"5": {"resolution": 60}}}
    try:
        with at(timedelta()):
            sla = sla_of(desk, desk.open("request"))
            other = sla_of(desk, desk.open("incident"))
    finally:
        app.config.pop("CAIRN_SLA_POLICIES")
    assert sla["resolution_due"] == T0 + timedelta(hours=1)
    assert sla["response_due"] == T0 + timedelta(days=2)
    assert other["resolution_due"] == T0 + timedelta(days=20)


def test_time_on_hold_does_not_count(desk):
    with at(timedelta()):
        t = desk.open(impact=1, urgency=1)  # P1: respond in 15 min, resolve in 4 h
    with at(timedelta(minutes=10)):
        desk.move(t, "in_progress")
    with at(timedelta(hours=1)):
        desk.move(t, "on_hold", note="awaiting vendor")
    with at(timedelta(hours=6)):
        sla = sla_of(desk, t)
        assert sla["paused"] is True and sla["breached"] is False
        assert sla["resolution_due"] == T0 + timedelta(hours=9)  # 4 h + 5 h held so far
        run_breach_job()
        assert desk.get(t)["sla"]["breached"] is False
    with at(timedelta(hours=7)):
        desk.move(t, "in_progress")  # held 6 h in all
    with at(timedelta(hours=9, minutes=59)):
        sla = sla_of(desk, t)
        assert sla["resolution_due"] == T0 + timedelta(hours=10)
        assert sla["on_hold_seconds"] == 6 * 3600
        run_breach_job()
        assert desk.get(t)["sla"]["breached"] is False
    with at(timedelta(hours=10, minutes=1)):
        assert sla_of(desk, t)["resolution_breached"] is True
        run_breach_job()
    final = desk.get(t)
    assert final["sla"]["breached"] is True


def test_breach_job_marks_late_tickets_once_and_records_the_event(desk, db):
    with at(timedelta()):
        late = desk.open(impact=1, urgency=1, title="not answered")
        answered = desk.open(impact=1, urgency=1, title="answered")
    with at(timedelta(minutes=5)):
        desk.move(answered, "in_progress")
    with at(timedelta(minutes=16)):
        run_breach_job()
        run_breach_job()
    assert desk.get(late)["sla"]["breached"] is True
    assert desk.get(answered)["sla"]["breached"] is False
    rows = db.session.scalars(
        select(ChangeLog).where(
            ChangeLog.object_type == "ticket", ChangeLog.object_id == late["id"], ChangeLog.summary.like("%breached%")
        )  # fmt: skip
    ).all()
    assert len(rows) == 1
    assert rows[0].changes["sla_breached"] == [False, True] and rows[0].changes["sla_breach"] == [None, "response"]
    assert rows[0].actor == "job:tickets.tasks.mark_sla_breaches"
    breached = desk.client.get("/api/v1/tickets?breached=true", headers=desk.headers).json
    assert [t["id"] for t in breached] == [late["id"]]


def test_resolved_tickets_are_not_marked(desk):
    with at(timedelta()):
        t = desk.open(impact=1, urgency=1)
        desk.move(t, "resolved", note="quick fix", resolution_code="fixed")
    with at(timedelta(days=1)):
        run_breach_job()
        assert desk.get(t)["sla"]["breached"] is False


def test_a_change_is_due_by_the_end_of_its_window(client, desk, agent, make):
    ci = make.ci("server")
    with at(timedelta()):
        change = desk.change([ci.id], T0 + timedelta(days=30), T0 + timedelta(days=30, hours=2))
        assert sla_of(desk, change)["resolution_due"] == T0 + timedelta(days=30, hours=2)
        later = (T0 + timedelta(days=40)).isoformat()
        r = client.patch(f"/api/v1/tickets/{change['id']}", json={"planned_end": later}, headers=agent.headers)
        assert datetime.fromisoformat(r.json["sla"]["resolution_due"]) == T0 + timedelta(days=40)
        desk.move(change, "assess")
    with at(timedelta(days=25)):
        run_breach_job()  # long before the window ends: not late, even past the P5 resolution clock
        assert desk.get(change)["sla"]["breached"] is False
    with at(timedelta(days=41)):
        run_breach_job()
        assert desk.get(change)["sla"]["breached"] is True
