"""A calendar or policy edit commits at once and recomputes open tickets' clocks in a durable job:
inline without Redis; with Redis through a real `cairn worker`, merged when edits pile up, resumed
after a worker died; and the periodic scan stays right while the recomputation is pending."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, update

from cairn.audit.models import ChangeLog
from cairn.jobs import durable, enqueue_now
from tickets.models import Ticket
from tickets.slas.models import SLAFiring, SLARecompute

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
MONDAY_9 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_policy(client, admin, *, name="p", resolution=10 * HOUR, **fields):
    r = client.post(
        "/api/v1/calendars", json={"name": f"cal {name}", "time_zone": "UTC", "hours": ALWAYS}, headers=admin
    )
    assert r.status_code == 201, r.json
    assert r.json["recompute"] is None  # a new calendar times no ticket yet
    calendar = r.json
    body = {"name": name, "calendar_id": calendar["id"], "response_seconds": HOUR, "resolution_seconds": resolution}
    r = client.post("/api/v1/sla-policies", json={**body, **fields}, headers=admin)
    assert r.status_code == 201, r.json
    return calendar, r.json


# -- inline (no Redis): the job runs right after the commit ----------------------------------


def test_an_edit_answers_with_its_recompute_to_follow(client, admin, desk, db):
    calendar, policy = make_policy(client, admin)
    with time_machine.travel(MONDAY_9, tick=False):
        ticket = desk.open()
        r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"resolution_seconds": 20 * HOUR}, headers=admin)
    assert r.status_code == 200, r.json
    job = r.json["recompute"]
    assert job["status"] in ("queued", "done") and job["rematch"] is True
    assert job["href"] == f"/api/v1/sla-recomputes/{job['id']}"
    followed = client.get(job["href"], headers=admin).json
    assert followed["status"] == "done", followed
    assert followed["tickets"] >= 1 and followed["changed"] >= 1 and followed["finished_at"]
    assert "changed" in followed["reason"] and followed["actor"]
    stored = db.session.get(Ticket, ticket["id"])
    db.session.refresh(stored)
    assert aware(stored.resolution_due) == MONDAY_9 + timedelta(hours=20)
    # a rename moves no clock: no recomputation
    r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"name": "renamed"}, headers=admin)
    assert r.status_code == 200 and r.json["recompute"] is None
    r = client.patch(f"/api/v1/calendars/{calendar['id']}", json={"name": "renamed cal"}, headers=admin)
    assert r.status_code == 200 and r.json["recompute"] is None
    r = client.patch(
        f"/api/v1/calendars/{calendar['id']}",
        json={"closures": [{"name": "x", "start": "2030-01-07", "end": "2030-01-07"}]},
        headers=admin,
    )
    assert r.status_code == 200 and r.json["recompute"]["policy_ids"] == [policy["id"]]
    listed = client.get("/api/v1/sla-recomputes", headers=admin).json
    assert [row["id"] for row in listed][:1] == [r.json["recompute"]["id"]]  # newest first
    assert client.get("/api/v1/sla-recomputes/999999", headers=admin).status_code == 404


def test_deleting_a_policy_links_its_recompute(client, admin, desk, db):
    _, policy = make_policy(client, admin)
    with time_machine.travel(MONDAY_9, tick=False):
        ticket = desk.open()
        r = client.delete(f"/api/v1/sla-policies/{policy['id']}", headers=admin)
        assert r.status_code == 204
        link = r.headers["Link"]
        assert link.startswith("</api/v1/sla-recomputes/") and 'rel="monitor"' in link
        href = link[1 : link.index(">")]
        assert client.get(href, headers=admin).json["status"] == "done"
        sla = desk.get(ticket)["sla"]
    assert sla["policy"] is None  # back to the wall clock of its priority
    assert datetime.fromisoformat(sla["response_due"]) == MONDAY_9 + timedelta(days=2)


def test_the_scan_matches_again_while_a_recompute_is_pending(client, admin, desk, db, app):
    """An edit's job not run yet (Redis down): the scan fires what the new policy says, not the old."""
    _, policy = make_policy(client, admin, resolution=HOUR)
    with time_machine.travel(MONDAY_9, tick=False):
        ticket = desk.open()
        desk.move(ticket, "in_progress")
    saved = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens: the job is not queued
    try:
        r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"resolution_seconds": 50 * HOUR}, headers=admin)
    finally:
        app.config["REDIS_URL"] = saved
    assert r.status_code == 200 and r.json["recompute"]["status"] == "queued"
    stored = db.session.get(Ticket, ticket["id"])
    db.session.refresh(stored)
    assert aware(stored.resolution_due) == MONDAY_9 + timedelta(hours=1)  # not recomputed yet
    with time_machine.travel(MONDAY_9 + timedelta(hours=3), tick=False):
        enqueue_now("tickets.tasks.mark_sla_breaches")
    keys = set(db.session.scalars(select(SLAFiring.key).where(SLAFiring.ticket_id == ticket["id"])))
    assert "sla.resolution.breach" not in keys and "sla.resolution.warning" not in keys
    db.session.refresh(stored)
    assert aware(stored.resolution_due) == MONDAY_9 + timedelta(hours=50)  # the scan's own match
    # the sweep queues the lost job (inline here) and the row ends done
    row = db.session.get(SLARecompute, r.json["recompute"]["id"])
    assert durable.sweep(only="sla_recompute") == {"sla_recompute": 1}
    db.session.commit()  # the job is queued once the sweep's marks commit
    db.session.refresh(row)
    assert row.status == "done"


# -- a real RQ worker ----------------------------------------------------------------------------


def _worker(app, redis_url, instance_dir, queue, count=1):
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "CAIRN_QUEUE_NAME": queue,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "CAIRN_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    cairn = str(Path(sys.executable).parent / "cairn")
    workers = [
        subprocess.Popen(
            [cairn, "worker", "--burst"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(count)
    ]
    outputs = [w.communicate(timeout=300)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0] * count, outputs


@pytest.fixture
def queued(app, redis_url):
    """Requests made inside ``with queued():`` queue their jobs in Redis (no worker yet)."""
    from contextlib import contextmanager

    queue = f"test-sla-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def on():
        saved = {k: app.config.get(k) for k in ("REDIS_URL", "CAIRN_QUEUE_NAME")}
        app.config.update(REDIS_URL=redis_url, CAIRN_QUEUE_NAME=queue)
        try:
            yield
        finally:
            app.config.update(saved)

    on.queue = queue
    return on


def _open_tickets(client, headers, n):
    ids = []
    for i in range(n):
        r = client.post("/api/v1/tickets", json={"kind": "incident", "title": f"t{i}"}, headers=headers)
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    return ids


def _dues(db, ids):
    db.session.remove()
    rows = db.session.execute(select(Ticket.id, Ticket.created_at, Ticket.resolution_due, Ticket.sla_policy_id))
    return {i: (aware(c), aware(d) if d else None, p) for i, c, d, p in rows if i in ids}


def test_edits_piling_up_cost_one_run_of_a_real_worker(
    app, committed_db, committed_make, committed_client, queued, redis_url, instance_dir
):
    db, client = committed_db, committed_client
    admin = committed_make.headers("admin")
    agent = committed_make.headers("agent")
    calendar, policy = make_policy(client, admin, resolution=10 * HOUR)
    ids = _open_tickets(client, agent, 12)
    with queued():
        answers = [
            client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"resolution_seconds": s * HOUR}, headers=admin)
            for s in (11, 12, 13)
        ]
        other = client.post(
            "/api/v1/sla-policies",
            json={"name": "p1", "calendar_id": calendar["id"], "response_seconds": HOUR, "resolution_seconds": HOUR,
                  "match": {"priority": 1}},
            headers=admin,
        )  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200] and other.status_code == 201
    jobs = [a.json["recompute"]["id"] for a in answers] + [other.json["recompute"]["id"]]
    assert {a.json["recompute"]["status"] for a in answers} == {"queued"}
    db.session.remove()
    assert all(db.session.get(SLARecompute, j).enqueued_at is not None for j in jobs)
    # the edit committed at once: the tickets still carry the old due times
    assert {due - created for created, due, _ in _dues(db, ids).values()} == {timedelta(hours=10)}
    _worker(app, redis_url, instance_dir, queued.queue)
    db.session.remove()
    rows = [db.session.get(SLARecompute, j) for j in jobs]
    assert rows[0].status == "done" and rows[0].tickets == 12 and rows[0].changed == 12
    assert [r.status for r in rows[1:]] == ["merged"] * 3
    assert {r.merged_into_id for r in rows[1:]} == {rows[0].id}
    assert rows[0].rematch is True and rows[0].policy_ids is None
    for href in (f"/api/v1/sla-recomputes/{j}" for j in jobs[1:]):
        body = client.get(href, headers=admin).json
        assert body["status"] == "merged" and body["merged_into_id"] == rows[0].id
    # the last edit won
    assert {due - created for created, due, _ in _dues(db, ids).values()} == {timedelta(hours=13)}


def test_a_run_whose_worker_died_is_swept_and_resumed(
    app, committed_db, committed_make, committed_client, queued, redis_url, instance_dir
):
    db, client = committed_db, committed_client
    admin = committed_make.headers("admin")
    agent = committed_make.headers("agent")
    _, policy = make_policy(client, admin, resolution=10 * HOUR)
    ids = _open_tickets(client, agent, 10)
    with queued():
        r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"resolution_seconds": 30 * HOUR}, headers=admin)
    job = r.json["recompute"]["id"]
    # A worker took it, committed the first 4 tickets and died (Redis lost the job too).
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    half = sorted(ids)[3]
    db.session.remove()
    db.session.execute(
        update(SLARecompute)
        .where(SLARecompute.id == job)
        .values(status="running", position=half, tickets=4, heartbeat_at=datetime(2020, 1, 1))
    )
    marker = datetime(2031, 1, 1, tzinfo=UTC)  # what "its" batch wrote: left alone by the resumed run
    db.session.execute(update(Ticket).where(Ticket.id <= half).values(resolution_due=marker))
    db.session.commit()
    with app.test_request_context(), queued():
        assert durable.sweep(only="sla_recompute") == {"sla_recompute": 1}
        db.session.commit()
    _worker(app, redis_url, instance_dir, queued.queue)
    dues = _dues(db, ids)
    row = db.session.get(SLARecompute, job)
    assert row.status == "done" and row.tickets == 10 and row.position == max(ids)
    assert {dues[i][1] for i in ids if i <= half} == {marker}
    assert {dues[i][1] - dues[i][0] for i in ids if i > half} == {timedelta(hours=30)}


def test_a_run_waits_for_the_one_going_on(
    app, committed_db, committed_make, committed_client, queued, redis_url, instance_dir
):
    """Two recomputations never run at once: a job that finds the lease taken leaves its row queued,
    and the run holding it queues that row when it is done."""
    from cairn.jobs import lease

    db, client = committed_db, committed_client
    admin = committed_make.headers("admin")
    agent = committed_make.headers("agent")
    _, policy = make_policy(client, admin, resolution=10 * HOUR)
    ids = _open_tickets(client, agent, 3)
    token = lease.acquire("sla-recompute", 120)
    with queued():
        r = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"resolution_seconds": 7 * HOUR}, headers=admin)
    job = r.json["recompute"]["id"]
    _worker(app, redis_url, instance_dir, queued.queue)
    db.session.remove()
    assert db.session.get(SLARecompute, job).status == "queued"  # it waited its turn
    lease.release("sla-recompute", token)
    with queued():  # a second edit: its run takes the first row in
        r2 = client.patch(f"/api/v1/sla-policies/{policy['id']}", json={"warn_at": 0.5}, headers=admin)
    _worker(app, redis_url, instance_dir, queued.queue)
    db.session.remove()
    first, second = db.session.get(SLARecompute, job), db.session.get(SLARecompute, r2.json["recompute"]["id"])
    assert {first.status, second.status} == {"done", "merged"}
    assert {due - created for created, due, _ in _dues(db, ids).values()} == {timedelta(hours=7)}
    history = db.session.scalars(select(ChangeLog).where(ChangeLog.object_type == "ticket")).all()
    assert not [h for h in history if h.changes and "resolution_due" in h.changes and h.actor.startswith("job:")]


def test_two_workers_and_concurrent_edits_end_with_the_last_edit(
    app, committed_db, committed_make, committed_client, queued, redis_url, instance_dir
):
    """Edits from two threads at once, two workers at once: every recomputation ends done or merged
    and the tickets carry the targets of the edit committed last."""
    import threading

    db, client = committed_db, committed_client
    admin = committed_make.headers("admin")
    agent = committed_make.headers("agent")
    calendar, policy = make_policy(client, admin, resolution=10 * HOUR)
    _, other = make_policy(client, admin, name="q", resolution=10 * HOUR, match={"priority": 1})
    ids = _open_tickets(client, agent, 8)
    answers = []

    def edit(policy_id, hours):
        for h in hours:
            r = app.test_client().patch(
                f"/api/v1/sla-policies/{policy_id}", json={"resolution_seconds": h * HOUR}, headers=admin
            )
            answers.append(r)

    with queued():
        threads = [
            threading.Thread(target=edit, args=(policy["id"], (11, 12, 13))),
            threading.Thread(target=edit, args=(other["id"], (2, 3, 4))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.status_code for r in answers) == [200] * 6, [r.json for r in answers]
    _worker(app, redis_url, instance_dir, queued.queue, count=2)
    db.session.remove()
    rows = [db.session.get(SLARecompute, r.json["recompute"]["id"]) for r in answers]
    assert len({r.id for r in rows}) == 6 and {r.status for r in rows} <= {"done", "merged"}, [
        (r.id, r.status) for r in rows
    ]
    assert "merged" in {r.status for r in rows}  # the queued ones cost fewer passes than edits
    assert {due - created for created, due, _ in _dues(db, ids).values()} == {timedelta(hours=13)}
