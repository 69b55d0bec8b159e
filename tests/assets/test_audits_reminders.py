"""Physical audits (scans by asset tag), the overdue report, and the scheduled reminders."""

from datetime import date, timedelta

import time_machine
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cmdb.assets.models import AssetReminder, PhysicalAudit


def test_audit_match_mismatch_and_relocate(client, make, assets, db):
    agent = make.headers("agent")
    room_a, room_b = make.location(), make.location()
    laptop = assets.device("laptop", asset_tag="LT-100", location_id=room_a.id)
    seen_home = client.post("/api/v1/audits", headers=agent, json={"asset_tag": "LT-100", "location_id": room_a.id})
    assert seen_home.status_code == 201, seen_home.json
    assert seen_home.json["mismatch"] is False
    # Laptops are audited yearly by default.
    assert seen_home.json["next_audit_due"] == (date.today() + timedelta(days=365)).isoformat()
    elsewhere = client.post("/api/v1/audits", headers=agent, json={"asset_tag": "LT-100", "location_id": room_b.id})
    assert elsewhere.json["mismatch"] is True and elsewhere.json["expected_location_id"] == room_a.id
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=agent).json["location_id"] == room_a.id
    mismatches = client.get("/api/v1/reports/audit-mismatches", headers=agent).json
    assert [(m["ci_id"], m["seen_at"], m["recorded_at"]) for m in mismatches] == [(laptop.id, room_b.name, room_a.name)]
    moved = client.post(
        "/api/v1/audits", headers=agent, json={"asset_tag": "LT-100", "location_id": room_b.id, "relocate": True}
    )
    assert moved.json["mismatch"] is True
    assert client.get(f"/api/v1/cis/{laptop.id}", headers=agent).json["location_id"] == room_b.id
    history = [h["summary"] for h in client.get(f"/api/v1/cis/{laptop.id}/history", headers=agent).json]
    assert sum(s.startswith(f"CI {laptop.id} seen at") for s in history) == 3
    assert len(client.get(f"/api/v1/audits?ci_id={laptop.id}&mismatch=true", headers=agent).json) == 2


def test_bad_audits_change_nothing(client, make, assets, db):
    agent = make.headers("agent")
    room = make.location()
    assets.device("laptop", asset_tag="LT-200")
    before = db.session.scalar(select(func.count()).select_from(PhysicalAudit))
    for body, field in [
        ({"asset_tag": "NOPE-1", "location_id": room.id}, "asset_tag"),
        ({"asset_tag": "LT-200", "location_id": 987654}, "location_id"),
        ({"asset_tag": "LT-200", "location_id": room.id, "audited_at": "2999-01-01T00:00:00Z"}, "audited_at"),
        ({"asset_tag": "", "location_id": room.id}, "asset_tag"),
    ]:
        response = client.post("/api/v1/audits", headers=agent, json=body)
        assert response.status_code == 422, response.json
        assert field in response.json["errors"]
    assert client.post("/api/v1/audits", headers=make.headers("requester"), json={}).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(PhysicalAudit)) == before


def test_audits_overdue(client, make, assets):
    manager = make.headers("asset_manager")
    room = make.location()
    with time_machine.travel("2023-01-10 09:00:00Z", tick=False):
        never = assets.device("laptop", asset_tag="OLD-1")
        audited_long_ago = assets.device("laptop", asset_tag="OLD-2")
        client.post("/api/v1/audits", headers=manager, json={"asset_tag": "OLD-2", "location_id": room.id})
        assets.device("virtual_machine", asset_tag="VM-1")  # never physically audited
    with time_machine.travel("2023-06-01 09:00:00Z", tick=False):
        audited_recently = assets.device("laptop", asset_tag="OLD-3")
        client.post("/api/v1/audits", headers=manager, json={"asset_tag": "OLD-3", "location_id": room.id})
    with time_machine.travel("2024-03-01 09:00:00Z", tick=False):
        rows = client.get("/api/v1/reports/audits-overdue", headers=manager).json
        ids = [r["ci_id"] for r in rows]
        assert never.id in ids and audited_long_ago.id in ids and audited_recently.id not in ids
        assert ids.index(never.id) < ids.index(audited_long_ago.id)  # never audited first
        row = next(r for r in rows if r["ci_id"] == audited_long_ago.id)
        assert row["next_due"] == "2024-01-10" and row["days_overdue"] == 51
        assert all(r["ci_class"] != "virtual_machine" for r in rows)
        # A shorter interval for the class makes the recent one overdue too.
        client.put("/api/v1/asset-classes/laptop", headers=manager, json={"audit_interval_days": 30})
        client.post("/api/v1/audits", headers=manager, json={"asset_tag": "OLD-3", "location_id": room.id})
    with time_machine.travel("2024-04-15 09:00:00Z", tick=False):
        ids = [r["ci_id"] for r in client.get("/api/v1/reports/audits-overdue", headers=manager).json]
        assert audited_recently.id in ids


def test_reminders_are_raised_once_and_show_in_history(app, client, make, assets, db):
    from cairn.jobs import execute

    manager = make.headers("asset_manager")
    team = make.team()
    with time_machine.travel("2025-01-01 06:00:00Z", tick=False):
        laptop = assets.device("laptop", warranty_expires=date(2025, 1, 20), owner_team_id=team.id)
        assets.device("laptop", warranty_expires=date(2025, 6, 1))  # too far ahead
        gone = assets.device("laptop", warranty_expires=date(2025, 1, 10), status="retired")
        # Ends 2025-03-01 with 45 days' notice: deadline 2025-01-15, within the 30-day lead.
        contract = assets.contract(
            cis=[laptop], name="Fleet lease", end_date=date(2025, 3, 1), notice_days=45, auto_renew=True,
            owner_team_id=team.id,
        )  # fmt: skip
        later = assets.contract(name="Later", end_date=date(2026, 3, 1), notice_days=30)
        office = assets.software("Office")
        licence = assets.licence(office, quantity=5, end_date=date(2025, 1, 31))
        result = execute("cmdb.assets.tasks.asset_reminders")
        assert result == {"contract_renewal": 1, "warranty_expiry": 1, "licence_expiry": 1}
        assert execute("cmdb.assets.tasks.asset_reminders") == {
            "contract_renewal": 0, "warranty_expiry": 0, "licence_expiry": 0,
        }  # fmt: skip
    reminders = {(r.kind, r.object_id): r for r in db.session.scalars(select(AssetReminder))}
    assert set(reminders) == {("contract_renewal", contract.id), ("warranty_expiry", laptop.id),
                              ("licence_expiry", licence.id)}  # fmt: skip
    assert reminders[("contract_renewal", contract.id)].due_date == date(2025, 1, 15)
    assert reminders[("contract_renewal", contract.id)].team_id == team.id
    assert reminders[("warranty_expiry", laptop.id)].notified_at is None  # mail is not configured
    assert later.id not in {r.object_id for r in reminders.values() if r.object_type == "contract"}
    assert gone.id not in {r.object_id for r in reminders.values()}
    summaries = [h["summary"] for h in client.get(f"/api/v1/cis/{laptop.id}/history", headers=manager).json]
    assert any("warranty of" in s for s in summaries)
    assert any("renews automatically" in s and "give notice by 2025-01-15" in s for s in summaries)
    actors = set(db.session.scalars(select(ChangeLog.actor).where(ChangeLog.object_type == "asset_reminder")))
    assert actors == {"job:cmdb.assets.tasks.asset_reminders"}


def test_reminder_job_is_scheduled():
    from cairn.jobs.schedule import PERIODIC_JOBS

    assert "cmdb.assets.tasks.asset_reminders" in dict(PERIODIC_JOBS)
