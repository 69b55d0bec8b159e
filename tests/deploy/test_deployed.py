"""Background work as the README deploys it: gunicorn with two workers, separate `cairn worker`
processes, one `cairn scheduler`, a real Redis, on the suite's database (SQLite or PostgreSQL).
Inline jobs hide the races between a request's commit and a worker's read; these tests do not."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.deploy.topology import Deployment, free_port, wait_until
from tests.peers import Receiver, SmtpSink

# Enough that every message is a chance for a worker to read before the request's commit (the race
# the first test guards), and for the second test's faults to land mid-stream.
MESSAGES = 300


def _backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def production(d: Deployment, database_url: str) -> Deployment:
    """Start what the README's production section runs: Redis, gunicorn with two workers, the job
    workers (two on PostgreSQL; one on SQLite, which serves one writer at a time) and the scheduler."""
    d.start_redis()
    d.start_web(workers=2)
    for _ in range(2 if _backend(database_url) == "postgresql" else 1):
        d.start_worker()
    d.start_scheduler()
    return d


@pytest.fixture
def deployment(database_url, instance_dir, committed_db, tmp_path):
    from cairn.db import sqlite_begin_immediate

    # The test writes (users, tokens) while the servers' processes write too: on SQLite it must
    # take the write lock up front and wait its turn, as every writer of the app does.
    immediate = sqlite_begin_immediate.set(True)
    made: list[Deployment] = []

    def make(**kwargs) -> Deployment:
        d = Deployment(database_url, instance_dir, tmp_path, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()
    sqlite_begin_immediate.reset(immediate)


def raw_mail(run: str, i: int) -> bytes:
    return (
        f"From: Person {i % 50} <person{i % 50}@example.com>\r\nTo: incidents@cairn.test\r\n"
        f"Subject: Printer {i} is jammed\r\nMessage-ID: <{run}-{i}@example.com>\r\n"
        f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nMessage number {i}.\r\n"
    ).encode()


def _mail_counts(db) -> dict[str, int]:
    from integrations.email.models import InboundEmail

    with db.engine.connect() as conn:
        return dict(conn.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status)).all())


def _assert_no_doubles(db, expected_messages: int) -> None:
    from integrations.email.models import InboundEmail
    from tickets.models import Ticket

    with db.engine.connect() as conn:
        rows = conn.execute(select(InboundEmail.status, InboundEmail.outcome, InboundEmail.ticket_id)).all()
        tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar()
    assert len(rows) == expected_messages, "every message stored once"
    assert {status for status, _, _ in rows} <= {"processed", "ignored"}, _mail_counts(db)
    new_tickets = [ticket for _, outcome, ticket in rows if outcome == "new_ticket"]
    assert len(new_tickets) == len(set(new_tickets)) == tickets, "one ticket per new message, none doubled"


def _post_all(url: str, headers: dict, run: str, count: int, on_progress=None) -> list[int]:
    statuses: list[int] = [0] * count
    done = [0]
    lock = threading.Lock()

    def post(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            response = client.post(
                f"{url}/api/v1/inbound-email",
                content=raw_mail(run, i),
                headers={**headers, "Content-Type": "message/rfc822"},
            )
        statuses[i] = response.status_code
        with lock:
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(count)))
    return statuses


def _drains_without_stalling(backlog, what: str, stall_seconds: float = 5, cap_seconds: float = 120) -> None:
    """Wait until `backlog()` is 0, failing if it ever stays unchanged above 0 for `stall_seconds`.

    The bug this guards against left mail `queued` for minutes because a worker read before the
    request committed; how fast a backlog drains depends on the machine, so the test asserts
    steady progress (never stuck longer than the sweep needs to catch up), not a throughput."""
    started = last_change = time.monotonic()
    previous = backlog()
    while previous:
        time.sleep(0.2)
        current = backlog()
        now = time.monotonic()
        if current != previous:
            previous, last_change = current, now
        assert now - last_change <= stall_seconds, f"{what}: {current} stuck for {now - last_change:.1f} s"
        assert now - started <= cap_seconds, f"{what}: {current} still there after {cap_seconds} s"


MAIL_ENV = {"CAIRN_MAIL_RATE_LIMIT": 100000, "CAIRN_MAIL_REQUEUE_SECONDS": 2, "CAIRN_MAIL_ADDRESS": "desk@cairn.test"}


def test_mail_is_processed_on_arrival_by_separate_workers(deployment, committed_db, committed_make, database_url):
    d = production(deployment(**MAIL_ENV), database_url)
    headers = committed_make.headers("integration")
    statuses = _post_all(d.url, headers, uuid.uuid4().hex[:8], MESSAGES)
    assert statuses == [202] * MESSAGES
    _drains_without_stalling(lambda: _mail_counts(committed_db).get("queued", 0), f"mail left queued ({d.log_dir})")
    _assert_no_doubles(committed_db, MESSAGES)


def test_mail_survives_a_killed_worker_and_a_redis_outage(deployment, committed_db, committed_make, database_url):
    d = production(deployment(**MAIL_ENV), database_url)
    headers = committed_make.headers("integration")
    events: dict[str, float] = {}

    def faults(posted: int) -> None:
        if posted == MESSAGES // 5 and "killed" not in events:
            events["killed"] = time.monotonic()
            d.kill_worker(0)
            d.start_worker()
        if posted == MESSAGES // 2 and "redis_down" not in events:
            events["redis_down"] = time.monotonic()
            d.stop_redis()
            threading.Timer(10, lambda: (d.start_redis(), events.setdefault("redis_up", time.monotonic()))).start()

    statuses = _post_all(d.url, headers, uuid.uuid4().hex[:8], MESSAGES, faults)
    assert statuses == [202] * MESSAGES, "mail is accepted (stored) while Redis is down"
    wait_until(lambda: "redis_up" in events, 20, message="Redis back")
    d.restart_dead()  # as a supervisor would
    time.sleep(2.5)  # past CAIRN_MAIL_REQUEUE_SECONDS: mail whose job died with a worker is due again

    def swept() -> bool:
        if _mail_counts(committed_db).get("queued", 0) == 0:
            return True
        # A supervisor restarts whatever dies, whenever: a worker still failing on the Redis outage
        # when the first restart_dead looked may exit afterwards (seen on a starved machine).
        d.restart_dead()
        result = d.cli("mail", "sweep")
        assert result.returncode == 0, result.stderr[-2000:]
        time.sleep(1)
        return False

    # What this asserts is that nothing is lost or doubled, not how fast: on two cores shared with the
    # other suites, one SQLite worker may need minutes for the backlog.
    wait_until(swept, 240, interval=0.5, message=f"the sweep to catch up ({d.log_dir})")
    _assert_no_doubles(committed_db, MESSAGES)


def test_every_write_is_delivered_once_in_order_per_object(deployment, committed_db, committed_make, database_url):
    from cairn.audit.models import ChangeLog

    receiver = Receiver()
    receiver.secret = "deploy-secret-deploy-secret"
    d = production(deployment(CAIRN_WEBHOOK_ALLOW_PRIVATE="true"), database_url)
    headers = committed_make.headers("integration")
    try:
        with httpx.Client(base_url=d.url, headers=headers, timeout=30) as client:
            hook = client.post(
                "/api/v1/webhooks", json={"url": receiver.url, "events": ["ci.*"], "secret": receiver.secret}
            )
            assert hook.status_code == 201, hook.text

        def writer(n: int) -> None:
            with httpx.Client(base_url=d.url, headers=headers, timeout=30) as client:
                for k in range(25):
                    created = client.post("/api/v1/cis", json={"name": f"w{n}-{k}", "ci_class": "server"})
                    assert created.status_code == 201, created.text
                    for step in range(4):
                        patched = client.patch(
                            f"/api/v1/cis/{created.json()['id']}", json={"description": f"step {step}"}
                        )
                        assert patched.status_code == 200, patched.text

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(writer, range(4)))  # 4 x 25 x (1 + 4) = 500 writes

        with committed_db.engine.connect() as conn:
            changes = conn.execute(
                select(ChangeLog.txid, ChangeLog.id, ChangeLog.object_id).where(ChangeLog.object_type == "ci")
            ).all()
        assert len(changes) == 500
        _drains_without_stalling(lambda: max(0, 500 - len(receiver.requests)), f"deliveries missing ({d.log_dir})")
        time.sleep(1)  # anything doubled would arrive now
        bodies = [r["json"] for r in receiver.requests]
        assert all(r["signature_ok"] for r in receiver.requests)
        assert len(bodies) == 500 and len({b["id"] for b in bodies}) == 500, "each delivery once"
        assert {b["data"]["cursor"] for b in bodies} == {f"{t}.{i}" for t, i, _ in changes}, "every change"
        by_object: dict[int, list[tuple[int, int]]] = {}
        for body in bodies:
            txid, change_id = (int(x) for x in body["data"]["cursor"].split("."))
            by_object.setdefault(body["data"]["object_id"], []).append((txid, change_id))
        assert all(seen == sorted(seen) for seen in by_object.values()), "in order per object"
    finally:
        receiver.close()


def test_without_redis_the_serving_process_delivers_webhooks_and_notifications(
    deployment, committed_db, committed_make
):
    receiver = Receiver()
    sink = SmtpSink()
    sink.controller.start()
    try:
        d = deployment(
            redis=False,
            CAIRN_WEBHOOK_ALLOW_PRIVATE="true",
            CAIRN_MAIL_SMTP_HOST="127.0.0.1",
            CAIRN_MAIL_SMTP_PORT=sink.port,
            CAIRN_MAIL_ADDRESS="desk@cairn.test",
        )
        port = free_port()
        d.url = f"http://127.0.0.1:{port}"
        from tests.deploy.topology import BIN

        d.start_web(command=[str(BIN / "cairn"), "run", "--port", str(port)])
        headers = committed_make.headers("integration")
        with httpx.Client(base_url=d.url, headers=headers, timeout=30) as client:
            assert (
                client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["ci.created"]}).status_code == 201
            )
            assert client.post("/api/v1/cis", json={"name": "no-redis", "ci_class": "server"}).status_code == 201
            mail = client.post(
                "/api/v1/inbound-email",
                content=raw_mail("no-redis", 1),
                headers={"Content-Type": "message/rfc822"},
            )
            assert mail.status_code == 202
        wait_until(lambda: receiver.requests, 15, message="the webhook delivery")
        assert receiver.requests[0]["json"]["data"]["object"]["name"] == "no-redis"
        messages = sink.wait_for(1, timeout=15)
        assert messages and messages[0]["To"] == "person1@example.com"
        assert "Printer 1 is jammed" in messages[0]["Subject"]
    finally:
        sink.controller.stop()
        receiver.close()


def test_an_import_whose_worker_is_killed_resumes_without_doubles(
    deployment, committed_db, committed_make, database_url
):
    """Issue: 60,000 rows, worker killed at 5,500, the job stayed 'running' for ever and posting
    again doubled the CIs. Now: chunks are committed with the job's position; the durable sweep
    queues a job whose heartbeat stopped, and the next worker resumes after the last chunk."""
    from cmdb.models import ConfigurationItem
    from integrations.sync.models import SyncJob

    rows = 60_000  # an import this fast (a page of 500 in milliseconds) needs this many to be killed mid-way
    d = deployment(CAIRN_JOB_HEARTBEAT_SECONDS=3, CAIRN_JOB_REQUEUE_SECONDS=3)
    d.start_redis()
    d.start_web(workers=2)
    d.start_worker()
    headers = committed_make.headers("integration")
    body = "name,ci_class\n" + "".join(f"imported-{i:05d},server\n" for i in range(rows))
    response = httpx.post(
        f"{d.url}/api/v1/imports/cis", content=body, headers={**headers, "Content-Type": "text/csv"}, timeout=60
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def job_row():
        with committed_db.engine.connect() as conn:
            return conn.execute(select(SyncJob.status, SyncJob.position).where(SyncJob.id == job_id)).one()

    def imported() -> int:
        with committed_db.engine.connect() as conn:
            return conn.execute(select(func.count()).where(ConfigurationItem.name.like("imported-%"))).scalar()

    wait_until(lambda: job_row().position >= 1000, 60, interval=0.02, message="the first chunks committed")
    d.kill_worker(0)
    status, position = job_row()
    assert status == "running" and 0 < position < rows, "killed mid-way"
    assert imported() == position, "each chunk committed together with the position"
    d.start_worker()
    time.sleep(3.5)  # past CAIRN_JOB_HEARTBEAT_SECONDS: the dead run's heartbeat has stopped
    swept = d.cli("sweep", "--kind", "import")
    assert swept.returncode == 0 and "import: 1 queued again" in swept.stdout, swept.stdout + swept.stderr
    wait_until(lambda: job_row().status == "done", 120, message=f"the import resumed ({d.log_dir})")
    with committed_db.engine.connect() as conn:
        names = conn.execute(select(ConfigurationItem.name).where(ConfigurationItem.name.like("imported-%"))).scalars()
        names = list(names)
        counts = conn.execute(select(SyncJob.counts).where(SyncJob.id == job_id)).scalar()
    assert len(names) == len(set(names)) == rows, "every row in, none doubled"
    assert counts["rows"] == rows and counts["created"] == rows


def test_the_scheduled_snapshot_job_writes_what_a_new_web_process_restores(deployment, committed_make, tmp_path):
    """The hourly graph-snapshot job as deployed: queued by `cairn scheduler`, run by a `cairn worker`
    (the web processes keep no snapshots here, so the file is the job's); a gunicorn started after
    it restores its graph from that file and catches up from the change log."""
    from relations import snapshot

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    d = deployment(CAIRN_GRAPH_SNAPSHOT_DIR="off", CAIRN_LOG_LEVEL="INFO", CAIRN_LOG_JSON="false")
    d.start_redis()
    d.start_web(workers=2)
    headers = committed_make.headers("admin")
    with httpx.Client(base_url=d.url, headers=headers, timeout=30) as client:
        app_ci, db_ci, disk = (
            client.post("/api/v1/cis", json={"name": f"snap-{n}", "ci_class": cls}).json()["id"]
            for n, cls in enumerate(("application", "database", "storage"))
        )
        link = {"source_id": app_ci, "target_id": db_ci, "type": "depends_on"}
        linked = client.post("/api/v1/relationships", json=link)
        assert linked.status_code == 201, linked.text

    d.env["CAIRN_GRAPH_SNAPSHOT_DIR"] = str(snapshots)
    d.start_worker()
    d.start_scheduler()
    path = wait_until(lambda: next(snapshots.glob("graph-*.snapshot"), None), 60, message=f"the snapshot ({d.log_dir})")
    written = wait_until(lambda: _readable(snapshot, path), 10, message="a whole snapshot")
    assert written.edges == 1
    assert any("graph snapshot rewritten" in p.read_text() for p in d.log_dir.glob("worker-*.log"))

    # A write after the snapshot, then a new web process: restored, caught up.
    with httpx.Client(base_url=d.url, headers=headers, timeout=30) as client:
        later = client.post("/api/v1/relationships", json={"source_id": db_ci, "target_id": disk, "type": "depends_on"})
        assert later.status_code == 201, later.text
    fresh_logs = tmp_path / "fresh"
    fresh_logs.mkdir()
    logging_env = {"CAIRN_LOG_LEVEL": "INFO", "CAIRN_LOG_JSON": "false"}
    fresh = Deployment(
        d.env["DATABASE_URL"], Path(d.env["CAIRN_INSTANCE_PATH"]), fresh_logs, redis=False,
        CAIRN_GRAPH_SNAPSHOT_DIR=str(snapshots), **logging_env,
    )  # fmt: skip
    fresh.env["REDIS_URL"] = d.env["REDIS_URL"]
    try:
        fresh.start_web(workers=1)
        with httpx.Client(base_url=fresh.url, headers=headers, timeout=30) as client:
            impact = client.get(f"/api/v1/cis/{disk}/impact")
        assert impact.status_code == 200, impact.text
        assert {item["ci"]["id"] for item in impact.json()["impacted"]} == {db_ci, app_ci}
        web_log = (fresh_logs / "web-1.log").read_text()
        assert "graph restored from its snapshot" in web_log and "graph rebuilt" not in web_log
    finally:
        fresh.close()


def _readable(snapshot, path):
    try:
        return snapshot.read(path)
    except (OSError, snapshot.SnapshotError):
        return None


def test_one_graph_host_answers_the_web_and_the_job_workers(
    deployment, committed_make, committed_db, database_url, tmp_path
):
    """The README's "One graph per host" as deployed: `cairn graphd`, then gunicorn (two workers),
    the job workers and the scheduler, all with CAIRN_GRAPHD_SOCKET. Monitoring events correlated
    by a job worker and impact asked of the web workers are walked on the host's graph; no web or
    job process builds a graph of its own, and none falls back to one."""
    from relations import graphd
    from tickets.models import Ticket

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    d = deployment(CAIRN_GRAPH_SNAPSHOT_DIR=str(snapshots), CAIRN_LOG_LEVEL="INFO", CAIRN_LOG_JSON="false")
    d.start_redis()
    socket_path = d.start_graphd()
    production(d, database_url)
    admin = committed_make.headers("admin")
    sender = committed_make.user("integration")
    events_token = {"Authorization": f"Bearer {committed_make.token(sender, scopes=['events:write'])}"}
    with httpx.Client(base_url=d.url, headers=admin, timeout=60) as client:
        switch = client.post("/api/v1/cis", json={"name": "core-sw-9", "ci_class": "network_switch"}).json()["id"]
        hosts = [
            client.post("/api/v1/cis", json={"name": f"rack-{i}", "ci_class": "server"}).json()["id"] for i in range(6)
        ]
        for host in hosts:
            linked = client.post(
                "/api/v1/relationships", json={"source_id": host, "target_id": switch, "type": "connected_to"}
            )
            assert linked.status_code == 201, linked.text
        storm = [{"source": "nagios", "fingerprint": f"rack-{i}-down", "status": "firing", "ci": {"id": h}}
                 for i, h in enumerate(hosts)]  # fmt: skip
        sent = client.post("/api/v1/events", json=storm, headers=events_token)
        assert sent.status_code == 202, sent.text

        def incidents():
            # read and end the transaction: on SQLite this test's transactions take the write lock
            found = [t.ci_ids for t in committed_db.session.scalars(select(Ticket).where(Ticket.kind == "incident"))]
            committed_db.session.rollback()
            return found

        found = wait_until(incidents, 60, message=f"the incident ({d.log_dir})")
        assert found == [[switch]], "a job worker put the storm on the silent switch"
        for _ in range(4):  # both web workers, most likely
            impact = client.get(f"/api/v1/cis/{switch}/impact")
            assert impact.status_code == 200, impact.text
            assert {i["ci"]["id"] for i in impact.json()["impacted"]} == set(hosts)

    answered = graphd.ask(socket_path, "stats")["answered"]
    graphd.close_connections()
    assert answered["_bounded_walks"] >= 1, "the job worker's correlation asked the host"
    assert answered["_live_answer"] >= 1, "the web workers' impact asked the host"
    assert next(snapshots.glob("graph-*.snapshot"), None), "the host keeps the snapshot"
    for log in [*d.log_dir.glob("web-*.log"), *d.log_dir.glob("worker-*.log")]:
        text = log.read_text()
        assert "graph rebuilt" not in text and "graph restored" not in text, f"{log.name} built a graph"
        assert "graph host unavailable" not in text, f"{log.name} fell back to a graph of its own"
