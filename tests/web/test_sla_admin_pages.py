"""The service-level admin pages with Flask's test client: only admins; calendars, policies and
escalation rules are created, edited and deleted through the API's services; bad input is a 422
(or 409) with the field's message next to its input and nothing written, never a 500."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from tests.web.pages import post, sign_in
from tickets.slas.models import BusinessCalendar, EscalationRule, SLAPolicy, SLARecompute

PAGES = ("/admin/slas", "/admin/calendars/new", "/admin/sla-policies/new", "/admin/escalation-rules/new")
WEEK = {f"hours_{d}": "09:00-12:30, 13:30-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def as_admin(client, make):
    sign_in(client, make.user("admin"))
    return client


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(name)}-error">([^<]*)</p>', html)
    assert found, f"no inline error for {name}: {html[:2000]}"
    return found.group(1)


def _calendar(as_admin, db, name="Office", **fields) -> BusinessCalendar:
    body = {"name": name, "time_zone": "Europe/Berlin", **WEEK, **fields}
    r = post(as_admin, "/admin/calendars", body)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return db.session.scalar(select(BusinessCalendar).where(BusinessCalendar.name == name))


@pytest.mark.parametrize("role", ["agent", "change_manager", "auditor", "requester", "asset_manager"])
def test_only_admins(client, make, db, role):
    sign_in(client, make.user(role))
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    assert post(client, "/admin/calendars", {"name": "x", "time_zone": "UTC", **WEEK}).status_code == 403
    assert _count(db, BusinessCalendar) == 0


def test_a_calendar_is_created_edited_imported_and_deleted(as_admin, db):
    for path in PAGES:
        assert as_admin.get(path).status_code == 200, path
    calendar = _calendar(
        as_admin, db, closures="2030-12-25 | 2030-12-26 | Christmas\n2030-03-01T14:00 | 2030-03-01T16:00 | Move"
    )
    assert calendar.hours["mon"] == [["09:00", "12:30"], ["13:30", "17:00"]] and calendar.hours["sat"] == []
    assert calendar.closures == [
        {"name": "Christmas", "start": "2030-12-25", "end": "2030-12-26"},
        {"name": "Move", "start": "2030-03-01T14:00", "end": "2030-03-01T16:00"},
    ]
    page = as_admin.get(f"/admin/calendars/{calendar.id}").get_data(as_text=True)
    assert "09:00-12:30, 13:30-17:00" in page and "2030-12-25 | 2030-12-26 | Christmas" in page
    # bad input: 422, the message by its input, nothing written
    for fields, name in (
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"hours_mon": "17:00-09:00"}, "hours.mon"),
        ({"hours_tue": "9-5"}, "hours.tue"),
        ({"closures": "2030-02-30 | | nope"}, "closures"),
    ):
        body = {"name": "Office", "time_zone": "Europe/Berlin", **WEEK, "version": calendar.version, **fields}
        r = post(as_admin, f"/admin/calendars/{calendar.id}", body)
        assert r.status_code == 422, (fields, r.status_code)
        html = r.get_data(as_text=True)
        assert _field_error(html, name)
        assert "aria-invalid" in html
    assert (
        _count(db, BusinessCalendar) == 1 and db.session.get(BusinessCalendar, calendar.id).time_zone == "Europe/Berlin"
    )
    # a stale form: 409
    body = {"name": "Office", "time_zone": "UTC", **WEEK, "version": calendar.version + 5}
    assert post(as_admin, f"/admin/calendars/{calendar.id}", body).status_code == 409
    # a duplicate name: 409 on create
    assert post(as_admin, "/admin/calendars", {"name": "Office", "time_zone": "UTC", **WEEK}).status_code == 409
    # iCalendar upload
    ics = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:New Year\r\n"
        b"DTSTART;VALUE=DATE:20310101\r\nDTEND;VALUE=DATE:20310102\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    r = post(
        as_admin, f"/admin/calendars/{calendar.id}/ical", {"file": (io.BytesIO(ics), "h.ics")}, follow_redirects=True
    )
    assert r.status_code == 200 and "1 closures added" in r.get_data(as_text=True)
    db.session.expire_all()
    assert {"name": "New Year", "start": "2031-01-01", "end": "2031-01-01"} in db.session.get(
        BusinessCalendar, calendar.id
    ).closures
    r = post(as_admin, f"/admin/calendars/{calendar.id}/ical", {"file": (io.BytesIO(b"nonsense"), "x.ics")})
    assert r.status_code == 422 and _field_error(r.get_data(as_text=True), "file")
    r = post(as_admin, f"/admin/calendars/{calendar.id}/ical", {})
    assert r.status_code == 422
    # delete: a confirmation page, then the delete
    confirm = as_admin.get(f"/admin/calendars/{calendar.id}/delete").get_data(as_text=True)
    assert "Delete the calendar Office?" in confirm
    assert post(as_admin, f"/admin/calendars/{calendar.id}/delete", {}).status_code == 302
    assert _count(db, BusinessCalendar) == 0
    assert as_admin.get(f"/admin/calendars/{calendar.id}").status_code == 404


def test_a_policy_edit_queues_a_recompute_and_says_so(as_admin, db, make):
    calendar = _calendar(as_admin, db)
    team = make.team("Network")
    body = {"name": "Gold", "type": "sla", "calendar_id": calendar.id, "response_hours": "2",
            "resolution_hours": "8.5", "warn_percent": "80", "order": "0", "match_kind": "incident",
            "match_priority": "1", "match_team_id": str(team.id)}  # fmt: skip
    r = post(as_admin, "/admin/sla-policies", body, follow_redirects=True)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    policy = db.session.scalar(select(SLAPolicy))
    assert (policy.response_seconds, policy.resolution_seconds, policy.warn_at) == (7200, 30600, 0.8)
    assert policy.match == {
        "kind": "incident",
        "priority": 1,
        "category_id": None,
        "team_id": team.id,
        "service_ci_id": None,
    }
    assert "recomputed in the background" in r.get_data(as_text=True)
    listing = as_admin.get("/admin/slas").get_data(as_text=True)
    assert "Gold" in listing and "P1" in listing and "team Network" in listing and "8.5" in listing
    # the calendar can't go while the policy uses it
    assert "use it" in as_admin.get(f"/admin/calendars/{calendar.id}/delete").get_data(as_text=True)
    refused = post(as_admin, f"/admin/calendars/{calendar.id}/delete", {}, follow_redirects=True)
    assert "used by the SLA policies Gold" in refused.get_data(as_text=True) and _count(db, BusinessCalendar) == 1
    # field errors by input, nothing written
    for fields, name in (
        ({"response_hours": "soon"}, "response_hours"),
        ({"warn_percent": "150"}, "warn_percent"),
        ({"calendar_id": "999999"}, "calendar_id"),
        ({"type": "ola", "match_team_id": ""}, "match.team_id"),
        ({"match_category_id": "424242"}, "match.category_id"),
    ):
        r = post(as_admin, f"/admin/sla-policies/{policy.id}", {**body, "version": policy.version, **fields})
        assert r.status_code == 422, (fields, r.status_code)
        assert _field_error(r.get_data(as_text=True), name)
    db.session.expire_all()
    assert db.session.get(SLAPolicy, policy.id).warn_at == 0.8
    before = _count(db, SLARecompute)
    r = post(
        as_admin, f"/admin/sla-policies/{policy.id}", {**body, "resolution_hours": "16", "version": policy.version}
    )
    assert r.status_code == 302
    assert _count(db, SLARecompute) == before + 1
    job = db.session.scalar(select(SLARecompute).order_by(SLARecompute.id.desc()))
    fragment = as_admin.get(f"/admin/sla-recomputes/{job.id}").get_data(as_text=True)
    assert job.status in fragment
    assert "Delete the policy Gold?" in as_admin.get(f"/admin/sla-policies/{policy.id}/delete").get_data(as_text=True)
    assert post(as_admin, f"/admin/sla-policies/{policy.id}/delete", {}).status_code == 302
    assert _count(db, SLAPolicy) == 0


def test_an_escalation_rule_with_its_actions(as_admin, db, make):
    team = make.team("Tier 2")
    watcher = make.user("agent")
    body = {"name": "Breach to tier 2", "on": "breach", "order": "0", "notify": "assignee, lead@example.com",
            "reassign_team_id": str(team.id), "add_watcher_id": str(watcher.id), "raise_priority": "1"}  # fmt: skip
    assert post(as_admin, "/admin/escalation-rules", body).status_code == 302
    rule = db.session.scalar(select(EscalationRule))
    assert rule.actions == [
        {"notify": ["assignee", "lead@example.com"]},
        {"reassign_team_id": team.id},
        {"add_watcher_id": watcher.id},
        {"raise_priority": True},
    ]
    page = as_admin.get(f"/admin/escalation-rules/{rule.id}").get_data(as_text=True)
    assert "assignee, lead@example.com" in page
    for fields, name in (
        ({"on": "idle", "idle_business_hours": ""}, "idle_business_hours"),
        ({"idle_business_hours": "4"}, "idle_business_hours"),
        ({"notify": "not an address"}, "notify"),
        ({"notify": "", "reassign_team_id": "", "add_watcher_id": "", "raise_priority": ""}, "actions"),
        ({"on": "sometimes"}, "on"),
    ):
        r = post(as_admin, f"/admin/escalation-rules/{rule.id}", {**body, "version": rule.version, **fields})
        assert r.status_code == 422, (fields, r.status_code)
        assert _field_error(r.get_data(as_text=True), name)
    r = post(as_admin, f"/admin/escalation-rules/{rule.id}", {**body, "on": "idle", "idle_business_hours": "4",
                                                             "version": rule.version})  # fmt: skip
    assert r.status_code == 302
    db.session.expire_all()
    assert (rule.on, rule.idle_business_hours) == ("idle", 4.0)
    assert "every ticket" in as_admin.get("/admin/slas").get_data(as_text=True)
    assert post(as_admin, f"/admin/escalation-rules/{rule.id}/delete", {}).status_code == 302
    assert _count(db, EscalationRule) == 0
