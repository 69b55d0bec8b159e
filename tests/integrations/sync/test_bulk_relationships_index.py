"""POST /relationships/bulk checks existence through the unique index on open relationships (INSERT ..
ON CONFLICT DO NOTHING, ids of existing ones by a join with the batch), never with a row-value IN list
that PostgreSQL plans as a scan of the whole table; a writer racing another for the same
relationships finds them, it does not fail."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import event, text

from tests.conftest import _backend

RELS = "/api/v1/relationships/bulk"
ROW_VALUE_IN = re.compile(r"\(relationship\.source_id, relationship\.target_id, relationship\.type\)\s+IN", re.I)
BY_SOURCE = re.compile(r"FROM relationship\s+WHERE .*relationship\.source_id IN \(", re.I | re.S)


class Statements:
    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append(statement)


def _estate(make, n):
    hosts = [make.ci("server", name=f"host-{i}") for i in range(n)]
    vms = [make.ci("virtual_machine", name=f"vm-{i}") for i in range(n)]
    return [{"source_id": vm.id, "type": "runs_on", "target_id": host.id} for vm, host in zip(vms, hosts, strict=True)]


def test_existence_is_checked_by_the_index(db, client, make):
    headers = make.headers("integration")
    items = _estate(make, 40)
    with Statements(db.engine) as new:
        created = client.post(RELS, headers=headers, json=items).json
    assert [r["status"] for r in created] == ["created"] * 40 and all(r["id"] for r in created)
    with Statements(db.engine) as old:
        again = client.post(RELS, headers=headers, json=[*items, items[0]]).json
    assert [r["status"] for r in again] == ["unchanged"] * 41
    assert [r["id"] for r in again] == [r["id"] for r in created] + [created[0]["id"]]
    for statement in new.seen + old.seen:
        assert not ROW_VALUE_IN.search(statement), statement
        assert not BY_SOURCE.search(statement), statement
    assert any("ON CONFLICT" in s for s in new.seen)
    # Nothing existed: no lookup of relationships at all, the index said so on insert. Then one
    # probe of the index per key (a correlated lookup on all three of its columns).
    probe = re.compile(r"relationship\.source_id = k\.s AND relationship\.target_id = k\.t", re.I)
    assert not [s for s in new.seen if probe.search(s)]
    assert any(probe.search(s) for s in old.seen)


def test_bulk_create_is_still_all_or_nothing(db, make):
    from cairn.errors import Conflict
    from relations import services

    items = _estate(make, 3)
    assert services.bulk_create_relationships(items[:1]) == 1
    with pytest.raises(Conflict) as raised:
        services.bulk_create_relationships(items)
    assert raised.value.extra["index"] == 0
    assert len(services.open_relationship_ids((i["source_id"], i["target_id"], i["type"]) for i in items)) == 1
    outcomes = services.ensure_relationships([*items, items[2]])
    assert [created for _, created in outcomes] == [False, True, True, False]
    assert outcomes[2][0] == outcomes[3][0]


@pytest.mark.postgres_only
@pytest.mark.skipif(_backend() != "postgresql", reason="concurrent writers: PostgreSQL semantics")
def test_a_writer_racing_another_finds_its_relationships(app, committed_db, committed_make):
    from cairn.db import db
    from relations import services

    headers = committed_make.headers("integration")
    items = _estate(committed_make, 30)
    answer = {}

    def second_writer():
        answer["response"] = app.test_client().post(RELS, headers=headers, json=items)

    services.bulk_create_relationships(items)  # the first writer, not committed yet
    thread = threading.Thread(target=second_writer)
    thread.start()
    with db.engine.connect() as watcher:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            watcher.rollback()  # pg_stat_activity is a snapshot per transaction: a fresh one each time
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the second writer never waited for the first"
    db.session.commit()
    thread.join(30)
    response = answer["response"]
    assert response.status_code == 200, response.json
    assert [r["status"] for r in response.json] == ["unchanged"] * 30
    ids = services.open_relationship_ids((i["source_id"], i["target_id"], i["type"]) for i in items)
    assert [r["id"] for r in response.json] == [ids[(i["source_id"], i["target_id"], i["type"])] for i in items]
