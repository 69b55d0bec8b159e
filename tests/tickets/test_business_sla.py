"""Business-hours SLAs through the API, with the clock driven (time-machine): weekends, holidays,
DST, holds, calendar edits, warnings then breaches, OLAs and escalations, each fired once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cairn.jobs import enqueue_now
from tickets.models import Ticket, TicketWatcher

HOUR = 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
# Monday 7 January 2030, 09:00 in Berlin (CET, UTC+1).
MONDAY_9 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def office_hours(days=WEEKDAYS, start="09:00", end="17:00"):
    return {day: [[start, end]] for day in days}


@pytest.fixture
def setup(client, admin):
    """POSTs a calendar and a policy as an admin; returns their answers."""

    def build(*, hours=None, closures=(), zone="Europe/Berlin", response=2 * HOUR, resolution=8 * HOUR, **policy):
        r = client.post(
            "/api/v1/calendars",
            json={
                "name": f"cal {policy.get('name', 'default')}",
                "time_zone": zone,
                "hours": hours or office_hours(),
                "closures": list(closures),
            },
            headers=admin,
        )
        assert r.status_code == 201, r.json
        calendar = r.json
        body = {
            "name": "default",
            "calendar_id": calendar["id"],
            "response_seconds": response,
            "resolution_seconds": resolution,
            **policy,
        }
        r = client.post("/api/v1/sla-policies", json=body, headers=admin)
        assert r.status_code == 201, r.json
        return calendar, r.json

    return build


def due(sla, key):
    return datetime.fromisoformat(sla[key]) if sla[key] else None


def scan():
    enqueue_now("tickets.tasks.mark_sla_breaches")


def history(db, ticket_id, key):
    rows = db.session.scalars(
        select(ChangeLog).where(ChangeLog.object_type == "ticket", ChangeLog.object_id == ticket_id)
    ).all()
    return [row.changes[key][1] for row in rows if row.changes and key in row.changes]


def test_a_friday_evening_ticket_is_due_on_monday(setup, desk):
    _, policy = setup()
    friday_16 = MONDAY_9 + timedelta(days=4, hours=7)
    with at(friday_16):
        ticket = desk.open()
        sla = desk.get(ticket)["sla"]
    assert sla["policy"] == {"id": policy["id"], "name": "default"}
    assert sla["calendar"]["name"] == "cal default"
    assert sla["response_remaining_seconds"] == 2 * HOUR
    # One hour on Friday, one on Monday: 10:00 Berlin.
    assert due(sla, "response_due_at") == MONDAY_9 + timedelta(days=7, hours=1)
    assert due(sla, "response_due") == due(sla, "response_due_at")
    with at(friday_16 + timedelta(days=1)):  # Saturday: one hour gone, the weekend does not count
        sla = desk.get(ticket)["sla"]
    assert sla["response_remaining_seconds"] == HOUR
    assert sla["paused"] is False and sla["breached"] is False


def test_a_holiday_does_not_count(setup, desk):
    setup(closures=[{"name": "Holiday", "start": "2030-01-14"}])
    with at(MONDAY_9 + timedelta(days=4, hours=7)):
        sla = desk.get(desk.open())["sla"]
    # Monday the 14th is closed: Tuesday 10:00.
    assert due(sla, "response_due_at") == MONDAY_9 + timedelta(days=8, hours=1)


def test_office_hours_follow_berlin_wall_time_across_spring_forward(setup, desk):
    setup(hours=office_hours(("mon", "tue", "wed", "thu", "fri", "sat", "sun")), response=2 * HOUR)
    saturday_16 = datetime(2030, 3, 30, 15, 0, tzinfo=UTC)  # 16:00 CET; clocks go forward that night
    with at(saturday_16):
        sla = desk.get(desk.open())["sla"]
    # One hour on Saturday, then Sunday 09:00 CEST (07:00Z) plus one hour.
    assert due(sla, "response_due_at") == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)


def test_a_24x7_calendar_counts_the_fall_back_hour(setup, desk):
    every_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    setup(hours=every_day, resolution=24 * HOUR)
    saturday_noon = datetime(2030, 10, 26, 10, 0, tzinfo=UTC)  # 12:00 CEST; clocks go back that night
    with at(saturday_noon):
        sla = desk.get(desk.open())["sla"]
    # 24 real hours later it is 11:00 CET on Sunday: the same UTC instant plus a day.
    assert due(sla, "resolution_due_at") == saturday_noon + timedelta(hours=24)


def test_hold_pauses_the_clock_and_is_stored_for_recomputation(setup, desk, db):
    setup()
    with at(MONDAY_9):
        ticket = desk.open()
        desk.move(ticket, "in_progress")
    with at(MONDAY_9 + timedelta(hours=1)):
        desk.move(ticket, "on_hold", note="awaiting vendor")
    with at(MONDAY_9 + timedelta(hours=3)):
        sla = desk.get(ticket)["sla"]
        assert sla["paused"] is True
        assert sla["resolution_remaining_seconds"] == 7 * HOUR
        assert sla["resolution_due_at"] is None
    with at(MONDAY_9 + timedelta(hours=4)):
        desk.move(ticket, "in_progress")
    with at(MONDAY_9 + timedelta(hours=5)):
        sla = desk.get(ticket)["sla"]
    assert sla["paused"] is False
    assert sla["resolution_remaining_seconds"] == 6 * HOUR
    # 6 more business hours from 14:00 Berlin: 3 today, 3 on Tuesday (12:00 Berlin).
    assert due(sla, "resolution_due_at") == MONDAY_9 + timedelta(days=1, hours=3)
    stored = db.session.get(Ticket, ticket["id"])
    db.session.refresh(stored)
    assert len(stored.hold_intervals) == 1


def test_a_calendar_edit_recomputes_open_tickets(setup, desk, client, admin):
    calendar, _ = setup()
    with at(MONDAY_9):
        ticket = desk.open()
        desk.move(ticket, "in_progress")
    with at(MONDAY_9 + timedelta(hours=3)):
        before = desk.get(ticket)["sla"]
        r = client.patch(
            f"/api/v1/calendars/{calendar['id']}",
            json={"closures": [{"name": "All-hands", "start": "2030-01-07T10:00", "end": "2030-01-07T11:00"}]},
            headers=admin,
        )
        assert r.status_code == 200, r.json
        after = desk.get(ticket)["sla"]
    assert before["resolution_remaining_seconds"] == 5 * HOUR
    assert after["resolution_remaining_seconds"] == 6 * HOUR
    assert due(before, "resolution_due_at") == MONDAY_9 + timedelta(hours=8)  # 17:00 Berlin
    # The hour closed moves it past closing time, to Tuesday 10:00 Berlin.
    assert due(after, "resolution_due_at") == MONDAY_9 + timedelta(days=1, hours=1)


def test_warning_then_breach_each_fire_once(setup, desk, db):
    setup(response=10 * HOUR, resolution=4 * HOUR, warn_at=0.75)
    with at(MONDAY_9):
        ticket = desk.open()
        desk.move(ticket, "in_progress")
    with at(MONDAY_9 + timedelta(hours=2, minutes=59)):
        scan()
        assert desk.get(ticket)["sla"]["warned"] is False
    with at(MONDAY_9 + timedelta(hours=3, minutes=1)):
        scan()
        scan()
        assert desk.get(ticket)["sla"]["warned"] is True
    assert history(db, ticket["id"], "sla_warning") == ["resolution"]
    with at(MONDAY_9 + timedelta(hours=4, minutes=1)):
        scan()
        scan()
        sla = desk.get(ticket)["sla"]
    assert sla["breached"] is True and sla["resolution_breached"] is True
    assert sla["resolution_remaining_seconds"] == -60
    assert history(db, ticket["id"], "sla_warning") == ["resolution"]
    assert history(db, ticket["id"], "sla_breach") == ["resolution"]
    assert desk.get(ticket)["sla"]["breached"] is True
    with at(MONDAY_9 + timedelta(days=3)):
        scan()
    assert history(db, ticket["id"], "sla_breach") == ["resolution"]


def test_no_warning_over_the_weekend(setup, desk, db):
    setup(response=10 * HOUR, resolution=4 * HOUR)
    friday_16 = MONDAY_9 + timedelta(days=4, hours=7)
    with at(friday_16):
        ticket = desk.open()
        desk.move(ticket, "in_progress")
    with at(friday_16 + timedelta(days=2)):  # Sunday: one business hour gone
        scan()
    assert history(db, ticket["id"], "sla_warning") == []
    with at(MONDAY_9 + timedelta(days=7, hours=2, minutes=1)):  # Monday 11:01: 3 h gone
        scan()
    assert history(db, ticket["id"], "sla_warning") == ["resolution"]


def test_escalation_on_breach_acts_once(setup, desk, db, make, client, admin):
    setup(response=10 * HOUR, resolution=HOUR)
    lead = make.user("agent", email="lead@example.com")
    first_line = make.team("First line", members=[lead])
    second_line = make.team("Second line")
    r = client.post(
        "/api/v1/escalation-rules",
        json={
            "name": "breach to second line",
            "on": "breach",
            "match": {"kind": "incident"},
            "actions": [
                {"notify": ["assignee", "duty@example.com"]},
                {"reassign_team_id": second_line.id},
                {"raise_priority": True},
                {"add_watcher_id": lead.id},
            ],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.json
    rule = r.json
    with at(MONDAY_9):
        ticket = desk.open(team_id=first_line.id, assignee_id=lead.id)
        desk.move(ticket, "in_progress")
    with at(MONDAY_9 + timedelta(hours=1, minutes=1)):
        scan()
        scan()
        answer = desk.get(ticket)
    assert answer["team"]["id"] == second_line.id
    assert answer["priority"] == 4
    escalations = history(db, ticket["id"], "escalation")
    assert len(escalations) == 1
    assert escalations[0]["rule_id"] == rule["id"]
    assert escalations[0]["notify"] == ["duty@example.com", "lead@example.com"]
    assert db.session.scalar(select(TicketWatcher.user_id).where(TicketWatcher.ticket_id == ticket["id"])) == lead.id
    with at(MONDAY_9 + timedelta(days=2)):
        scan()
    assert len(history(db, ticket["id"], "escalation")) == 1


def test_idle_rule_counts_business_hours_and_fires_once(setup, desk, db, client, admin):
    setup(response=100 * HOUR, resolution=100 * HOUR)
    r = client.post(
        "/api/v1/escalation-rules",
        json={"name": "idle", "on": "idle", "idle_business_hours": 4, "actions": [{"notify": ["desk@example.com"]}]},
        headers=admin,
    )
    assert r.status_code == 201, r.json
    friday_15 = MONDAY_9 + timedelta(days=4, hours=6)
    with at(friday_15):
        ticket = desk.open()
    with at(friday_15 + timedelta(days=2)):  # two wall days, two business hours
        scan()
    assert history(db, ticket["id"], "escalation") == []
    with at(MONDAY_9 + timedelta(days=7, hours=2, minutes=1)):  # Monday 11:01: four business hours
        scan()
        scan()
    assert [e["condition"] for e in history(db, ticket["id"], "escalation")] == ["idle"]


def test_ola_clock_starts_when_the_team_gets_the_ticket(setup, desk, make, client, admin):
    calendar, _ = setup()
    network = make.team("Network")
    r = client.post(
        "/api/v1/sla-policies",
        json={
            "name": "network ola",
            "type": "ola",
            "calendar_id": calendar["id"],
            "match": {"team_id": network.id},
            "response_seconds": HOUR,
            "resolution_seconds": 4 * HOUR,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.json
    with at(MONDAY_9):
        ticket = desk.open()
        assert desk.get(ticket)["ola"] is None
    with at(MONDAY_9 + timedelta(hours=2)):
        r = desk.client.patch(f"/api/v1/tickets/{ticket['id']}", json={"team_id": network.id}, headers=desk.headers)
        assert r.status_code == 200, r.json
    with at(MONDAY_9 + timedelta(hours=3)):
        answer = desk.get(ticket)
    assert answer["ola"]["policy"]["name"] == "network ola"
    assert datetime.fromisoformat(answer["ola"]["started_at"]) == MONDAY_9 + timedelta(hours=2)
    assert answer["ola"]["resolution_remaining_seconds"] == 3 * HOUR
    assert answer["sla"]["resolution_remaining_seconds"] == 5 * HOUR


def test_the_most_specific_policy_wins_then_the_order(setup, desk, client, admin):
    calendar, generic = setup()
    body = {"calendar_id": calendar["id"], "response_seconds": HOUR, "resolution_seconds": HOUR}
    specific = client.post(
        "/api/v1/sla-policies",
        json={**body, "name": "P5 incidents", "match": {"kind": "incident", "priority": 5}, "order": 9},
        headers=admin,
    ).json
    first = client.post(
        "/api/v1/sla-policies",
        json={**body, "name": "requests A", "match": {"kind": "request"}, "order": 1},
        headers=admin,
    ).json
    client.post(
        "/api/v1/sla-policies",
        json={**body, "name": "requests B", "match": {"kind": "request"}, "order": 2},
        headers=admin,
    )
    with at(MONDAY_9):
        assert desk.get(desk.open())["sla"]["policy"]["id"] == specific["id"]
        assert desk.get(desk.open(urgency=1))["sla"]["policy"]["id"] == generic["id"]
        assert desk.get(desk.open("request"))["sla"]["policy"]["id"] == first["id"]


def test_a_ticket_without_a_policy_keeps_the_wall_clock(desk):
    with at(MONDAY_9):
        sla = desk.get(desk.open(impact=1, urgency=1))["sla"]
    assert sla["policy"] is None and sla["calendar"] is None
    assert due(sla, "response_due") == MONDAY_9 + timedelta(minutes=15)
    assert sla["response_remaining_seconds"] == 15 * 60


def test_deleting_the_policy_returns_its_tickets_to_the_wall_clock(setup, desk, client, admin):
    _, policy = setup()
    with at(MONDAY_9):
        ticket = desk.open()
        assert client.delete(f"/api/v1/sla-policies/{policy['id']}", headers=admin).status_code == 204
        sla = desk.get(ticket)["sla"]
    assert sla["policy"] is None
    assert due(sla, "response_due") == MONDAY_9 + timedelta(days=2)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"hours": {"mon": [["22:00", "06:00"]]}}, "hours"),
        ({"hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "hours"),
        ({"hours": {"mon": [["9:00", "12:00"]]}}, "hours"),
        ({"closures": [{"name": "x", "start": "2030-02-30"}]}, "closures"),
        ({"closures": [{"name": "x", "start": "2030-01-02", "end": "2030-01-01"}]}, "closures"),
    ],
)
def test_bad_calendars_are_422_naming_the_field(client, admin, body, field):
    base = {"name": "c", "time_zone": "UTC", "hours": office_hours()}
    r = client.post("/api/v1/calendars", json={**base, **body}, headers=admin)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]
    assert client.get("/api/v1/calendars", headers=admin).json == []


def test_policy_and_rule_rules_across_fields(client, admin, setup, make):
    calendar, policy = setup()
    r = client.post(
        "/api/v1/sla-policies",
        json={
            "name": "x",
            "type": "ola",
            "calendar_id": calendar["id"],
            "response_seconds": 1,
            "resolution_seconds": 1,
        },
        headers=admin,
    )
    assert r.status_code == 422 and "match" in r.json["errors"]
    r = client.post(
        "/api/v1/sla-policies",
        json={"name": "x", "calendar_id": 999999, "response_seconds": 1, "resolution_seconds": 1},
        headers=admin,
    )
    assert r.status_code == 422 and "calendar_id" in r.json["errors"]
    r = client.post(
        "/api/v1/escalation-rules",
        json={"name": "r", "on": "idle", "actions": [{"raise_priority": True}]},
        headers=admin,
    )
    assert r.status_code == 422 and "idle_business_hours" in r.json["errors"]
    r = client.post(
        "/api/v1/escalation-rules",
        json={"name": "r", "on": "breach", "actions": [{"raise_priority": True, "add_watcher_id": 1}]},
        headers=admin,
    )
    assert r.status_code == 422
    assert client.delete(f"/api/v1/calendars/{calendar['id']}", headers=admin).status_code == 409
    agent = make.headers("agent")
    assert client.get("/api/v1/sla-policies", headers=agent).status_code == 200
    assert client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"order": 3}, headers=agent).status_code == 403
    r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"warn_at": 0.5}, headers=admin)
    assert r.status_code == 200 and r.json["warn_at"] == 0.5


ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:1\r
DTSTART;VALUE=DATE:20301225\r
DTEND;VALUE=DATE:20301227\r
SUMMARY:Christmas\\, both days\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2\r
DTSTART:20300301T130000Z\r
DTEND:20300301T150000Z\r
SUMMARY:Move to the \r
 new office\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:3\r
DTSTART;VALUE=DATE:20300101\r
RRULE:FREQ=YEARLY\r
SUMMARY:New year\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ical_import_adds_closures_once(client, admin):
    calendar = client.post(
        "/api/v1/calendars", json={"name": "c", "time_zone": "Europe/Berlin", "hours": office_hours()}, headers=admin
    ).json
    url = f"/api/v1/calendars/{calendar['id']}/ical"
    import io

    for expected in (2, 0):
        r = client.post(url, data={"file": (io.BytesIO(ICS), "holidays.ics")}, headers=admin)
        assert r.status_code == 200, r.json
        assert r.json["imported"] == expected
        assert r.json["skipped_recurring"] == 1
    assert r.json["calendar"]["closures"] == [
        {"name": "Christmas, both days", "start": "2030-12-25", "end": "2030-12-26"},
        {"name": "Move to the new office", "start": "2030-03-01T14:00", "end": "2030-03-01T16:00"},
    ]
    for bad in (
        b"not a calendar",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2030\r\nEND:VEVENT\r\nEND:VCALENDAR",
        b"\xff\xfe",
    ):
        r = client.post(url, data={"file": (io.BytesIO(bad), "bad.ics")}, headers=admin)
        assert r.status_code == 422, r.json
        assert "file" in r.json["errors"]
    assert len(client.get(f"/api/v1/calendars/{calendar['id']}", headers=admin).json["closures"]) == 2


def test_a_bulk_edit_moves_each_ticket_to_its_policy_as_one_edit_would(setup, desk, client, admin, db):
    """PATCH /tickets re-matches every ticket's policy and due times exactly as PATCH /tickets/{id};
    the policies and fired conditions are read once for the whole edit, not per ticket."""
    from sqlalchemy import event

    setup(name="P2 incidents", match={"kind": "incident", "priority": 2}, response=HOUR, resolution=4 * HOUR)
    with at(MONDAY_9):
        made = [desk.open(title=f"printer {n}") for n in range(12)]
        one, *rest = made
        single = client.patch(f"/api/v1/tickets/{one['id']}", json={"impact": 1, "urgency": 2}, headers=admin)
        assert single.status_code == 200, single.json
        reads: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):
            if "FROM sla_policy" in statement or "FROM sla_firing" in statement:
                reads.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            body = {"ids": [t["id"] for t in rest], "set": {"impact": 1, "urgency": 2}}
            bulk = client.patch("/api/v1/tickets", json=body, headers=admin)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert bulk.status_code == 200 and {r["status"] for r in bulk.json} == {"updated"}, bulk.json
        assert len(reads) <= 4, f"{len(reads)} reads of policies and firings for {len(rest)} tickets"
        expected = single.json["sla"]
        assert expected["policy"]["name"] == "P2 incidents"
        for ticket in rest:
            sla = client.get(f"/api/v1/tickets/{ticket['id']}", headers=admin).json["sla"]
            assert sla["policy"] == expected["policy"]
            assert (sla["response_due_at"], sla["resolution_due_at"]) == (
                expected["response_due_at"],
                expected["resolution_due_at"],
            )
