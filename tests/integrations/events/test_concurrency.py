"""Two real RQ workers processing one storm at the same time open one incident, not two: the
correlation runs under a PostgreSQL advisory lock, and a unique key on the open group's root CI
refuses a second open group for one root cause whatever the code above it decides."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from integrations.events.models import EventGroup, EventOccurrence, MonitoringEvent
from tests.integrations.events.conftest import build_estate
from tickets.models import Ticket

ROOT = Path(__file__).resolve().parents[3]


def test_the_database_refuses_a_second_open_group_for_one_root(db, make):
    switch = make.ci("network_switch")
    db.session.add(EventGroup(root_ci_id=switch.id, open_root=switch.id, rule="single_ci", reasoning={}))
    db.session.flush()
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(EventGroup(root_ci_id=switch.id, open_root=switch.id, rule="single_ci", reasoning={}))
        db.session.flush()
    closed = EventGroup(root_ci_id=switch.id, open_root=None, state="resolved", rule="single_ci", reasoning={})
    db.session.add(closed)
    db.session.flush()  # closed groups of the same root are many


@pytest.mark.postgres_only
def test_two_workers_on_one_storm_open_one_incident(app, committed_db, committed_make, redis_url, instance_dir):
    if committed_db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL")
    db = committed_db
    switch, hosts, _ = build_estate(committed_make, 120, service=False)
    switch_id, host_ids = switch.id, [h.id for h in hosts]
    user = committed_make.user("integration")
    headers = {"Authorization": f"Bearer {committed_make.token(user, scopes=['events:write'])}"}
    queue = f"test-events-{uuid.uuid4().hex[:8]}"
    saved = {k: app.config.get(k) for k in ("REDIS_URL", "CAIRN_QUEUE_NAME")}
    app.config.update(REDIS_URL=redis_url, CAIRN_QUEUE_NAME=queue)
    client = app.test_client()
    try:
        # 24 requests of 5 host alerts: 24 jobs for the two workers to share, none of them the switch's
        for i in range(0, len(host_ids), 5):
            events = [{"source": "zabbix", "fingerprint": f"h{h}", "status": "firing", "ci": {"id": h}}
                      for h in host_ids[i : i + 5]]  # fmt: skip
            assert client.post("/api/v1/events", json=events, headers=headers).status_code == 202
    finally:
        app.config.update(saved)
    db.session.remove()
    assert db.session.scalar(select(func.count()).where(EventOccurrence.processing == "queued")) == len(host_ids)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "CAIRN_QUEUE_NAME": queue,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "CAIRN_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        # small batches: the two workers interleave instead of one taking everything at once
        "CAIRN_EVENTS_BATCH": "3",
    }
    cairn = str(Path(sys.executable).parent / "cairn")
    workers = [
        subprocess.Popen(
            [cairn, "worker", "--burst"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=180)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    db.session.remove()
    assert db.session.scalar(select(func.count()).where(EventOccurrence.processing != "processed")) == 0
    incidents = list(db.session.scalars(select(Ticket).where(Ticket.kind == "incident")))
    assert len(incidents) == 1, [(t.number, t.ci_ids) for t in incidents]
    assert incidents[0].ci_ids == [switch_id]
    attached = db.session.scalar(select(func.count()).where(MonitoringEvent.ticket_id == incidents[0].id))
    assert attached == len(host_ids)
    groups = list(db.session.scalars(select(EventGroup).where(EventGroup.state == "open")))
    assert [g.root_ci_id for g in groups] == [switch_id]
