"""Set-based UPDATEs of bulk edits (cmdb.bulk_updates): one executemany per shape of change, each
row still guarded by its version, one change-log row per object with its diff, and a stale row
refused so that the bulk edit replays one by one."""

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import StaleDataError

from cairn.audit.models import ChangeLog, ChangeLogCI
from cmdb.bulk_updates import flush_updates
from cmdb.models import ConfigurationItem
from tickets.models import Ticket


def _entries(db, object_type, ids):
    return list(
        db.session.scalars(
            select(ChangeLog)
            .where(ChangeLog.object_type == object_type, ChangeLog.object_id.in_(ids))
            .order_by(ChangeLog.id)
        )
    )


def test_bulk_edit_writes_each_ci_once_with_its_change_log_row(client, make, db):
    admin = make.headers("admin")
    cis = [make.ci("server", name=f"bulk-{n}", description="old") for n in range(4)]
    ids = [ci.id for ci in cis]
    versions = {ci.id: ci.version for ci in cis}
    before = {ci.id: len(_entries(db, "ci", [ci.id])) for ci in cis}
    results = client.patch("/api/v1/cis", headers=admin, json={"ids": ids, "set": {"description": "new"}}).json
    assert [r["status"] for r in results] == ["updated"] * 4
    db.session.expire_all()
    for ci_id in ids:
        ci = db.session.get(ConfigurationItem, ci_id)
        assert ci.description == "new" and ci.version == versions[ci_id] + 1
        entries = _entries(db, "ci", [ci_id])
        assert len(entries) == before[ci_id] + 1
        assert entries[-1].action == "update" and entries[-1].changes["description"] == ["old", "new"]
    # Again with the same value: unchanged, nothing written.
    again = client.patch("/api/v1/cis", headers=admin, json={"ids": ids, "set": {"description": "new"}}).json
    assert [r["status"] for r in again] == ["unchanged"] * 4
    assert sum(len(_entries(db, "ci", [i])) for i in ids) == sum(before.values()) + 4


def test_objects_changed_differently_and_a_stale_one(make, db):
    first, second = make.ci("server", name="shape-1"), make.ci("laptop", name="shape-2")
    first.description = "one"
    second.criticality = "high"
    second.description = "two"
    assert flush_updates([first, second]) == 2
    assert not db.session.dirty
    db.session.flush()
    db.session.expire_all()
    assert (first.description, second.criticality, second.description) == ("one", "high", "two")
    assert {e.object_id for e in _entries(db, "ci", [first.id, second.id]) if e.action == "update"} == {
        first.id,
        second.id,
    }
    # A row whose version moved under the session is refused (the caller's savepoint replays).
    first.description = "stale"
    table = ConfigurationItem.__table__
    db.session.connection().execute(update(table).where(table.c.id == first.id).values(version=table.c.version + 5))
    with pytest.raises(StaleDataError):
        flush_updates([first])


def test_bulk_edit_of_tickets_is_set_based_and_logged(client, make, db):
    agent = make.headers("agent")
    ci = make.ci("server", name="linked-ci")
    ids = [
        client.post(
            "/api/v1/tickets", headers=agent, json={"kind": "incident", "title": f"t{n}", "ci_ids": [ci.id]}
        ).json["id"]
        for n in range(3)
    ]
    count = db.session.scalar(select(func.count()).select_from(ChangeLog))
    results = client.patch("/api/v1/tickets", headers=agent, json={"ids": ids, "set": {"urgency": 1, "impact": 1}}).json
    assert [r["status"] for r in results] == ["updated"] * 3
    assert db.session.scalar(select(func.count()).select_from(ChangeLog)) == count + 3
    db.session.expire_all()
    for ticket_id in ids:
        ticket = db.session.get(Ticket, ticket_id)
        assert (ticket.urgency, ticket.priority) == (1, 1)
        entry = _entries(db, "ticket", [ticket_id])[-1]
        assert entry.changes["priority"] == [5, 1]
        # the row names the ticket's CIs, as the flush hook's would (the CI's history shows it)
        assert db.session.scalars(select(ChangeLogCI.ci_id).where(ChangeLogCI.change_id == entry.id)).all() == [ci.id]


def test_a_bulk_status_change_still_moves_the_graph_version(client, make, db):
    from relations.graph import read_version

    admin = make.headers("admin")
    cis = [make.ci("server", name=f"graph-{n}", status="deployed") for n in range(2)]
    before = read_version(db.session)
    results = client.patch(
        "/api/v1/cis", headers=admin, json={"ids": [ci.id for ci in cis], "set": {"status": "retired"}}
    ).json
    assert [r["status"] for r in results] == ["updated", "updated"]
    assert read_version(db.session)[0] > before[0]
