"""Alert storm benchmark: monitoring events in, one incident per root cause out, on PostgreSQL with
real RQ workers.

    .venv/bin/python benchmarks/events.py [--size 100k] [--events 5000] [--seconds 10] [--workers 2]

The estate is benchmarks/impact.py's synthetic layered one (100k CIs), copied from
``cairn_bench_<size>`` (built by impact.py's builder when missing) into ``cairn_bench_events`` and
migrated. The storm: the network switch with the largest blast radius within the correlation's
hops, and the CIs of that radius closest first, up to ``--events`` alerts in all, in random order
(the switch's own alert somewhere in the first half), each naming its CI by host name (bound by the
name lookup, as a monitoring tool's alert would be). They are posted through the whole Flask stack
(auth, size cap, store, enqueue) in requests of 100, evenly over ``--seconds``, while ``--workers``
`cairn worker` processes run the jobs (their graphs warmed first, as in production).

Printed: events processed per second (first received to last processed); per-event latency from
received to processed (p50, p99); the time from the first event to the incident; incidents opened
and distinct root causes (duplicates = the difference); the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import impact  # noqa: E402

REDIS_URL = os.environ.get("CAIRN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB_NAME = "cairn_bench_events"
QUEUE = "bench-events"
PER_REQUEST = 100


def prepare(size: str) -> str:
    """A migrated copy of the impact benchmark's estate; returns its URL."""
    admin = create_engine(impact.PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"cairn_bench_{size}"})
    if not exists:
        print(f"building the {size} estate (benchmarks/impact.py's builder) ...", flush=True)
        impact.build_estate("postgresql", size)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    # A copy by pg_dump, not CREATE DATABASE ... TEMPLATE: that needs the estate unused, and other
    # benchmarks may be reading it.
    server = make_url(impact.PG_ADMIN)
    conninfo = ["-h", server.host or "127.0.0.1", "-p", str(server.port or 5432), "-U", server.username or "postgres"]
    dump = subprocess.Popen(["pg_dump", *conninfo, "--no-owner", f"cairn_bench_{size}"], stdout=subprocess.PIPE)
    subprocess.run(["psql", *conninfo, "-q", "-v", "ON_ERROR_STOP=1", DB_NAME], stdin=dump.stdout, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    if dump.wait() != 0:
        raise RuntimeError("pg_dump of the estate failed")
    url = impact.PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"
    from flask_migrate import upgrade

    app = make_app(url)
    with app.app_context():
        upgrade(revision="heads")
    return url


def make_app(url: str, redis: str | None = None):
    from cairn.app import create_app
    from cairn.config import Config

    return create_app(
        Config(
            SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=impact.WORK / "instance-events", LOG_LEVEL="WARNING",
            REDIS_URL=redis, CAIRN_QUEUE_NAME=QUEUE, CAIRN_EMBEDDED_RUNNER="false",
        )
    )  # fmt: skip


def storm_cis(app, count: int) -> tuple[int, list[tuple[int, str]]]:
    """(the switch, [(ci id, name)] of the storm, the switch among them)."""
    from cmdb.models import ConfigurationItem as CI
    from integrations.events import settings
    from relations.graph import live_graph
    from relations.impact import propagate

    with app.app_context():
        hops = int(settings.get("CAIRN_EVENTS_CORRELATION_HOPS"))
        from cairn.db import db

        switches = list(db.session.scalars(select(CI.id).where(CI.ci_class == "network_switch")))
        with live_graph() as graph:
            best, reach = None, {}
            for switch in switches:
                prop = propagate(graph, [switch], max_depth=hops, direction="impact")
                if len(prop.state) > len(reach):
                    best, reach = switch, {n: prop.depth(n) for n in prop.state}
        chosen = sorted(reach, key=lambda n: (reach[n], n))[:count]
        names = dict(db.session.execute(select(CI.id, CI.name).where(CI.id.in_(chosen))).tuples().all())
    return best, [(n, names[n]) for n in chosen]


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(size: str, events: int, seconds: float, workers: int) -> dict:
    import redis as redis_lib

    url = prepare(size)
    redis_lib.Redis.from_url(REDIS_URL).flushdb()
    app = make_app(url, REDIS_URL)
    switch, cis = storm_cis(app, events)
    rng = random.Random(7)
    order = [c for c in cis if c[0] != switch]
    rng.shuffle(order)
    order.insert(rng.randrange(len(order) // 2), next(c for c in cis if c[0] == switch))
    from cairn.auth.services import create_token, create_user
    from cairn.db import db
    from cmdb.services import create_ci

    with app.app_context():
        user = create_user("monitoring@bench.test", "integration", "Monitoring")
        _, token = create_token(user, scopes=["events:write"])
        warm = [create_ci({"name": f"bench-warm-{i}", "ci_class": "server"}).id for i in range(2 * workers)]
        db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL, "CAIRN_QUEUE_NAME": QUEUE,
           "CAIRN_INSTANCE_PATH": str(impact.WORK / "instance-events"), "CAIRN_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    cairn = str(Path(sys.executable).parent / "cairn")
    procs = [subprocess.Popen([cairn, "worker"], env=env, cwd=ROOT) for _ in range(workers)]
    client = app.test_client()
    from integrations.events.models import EventOccurrence
    from tickets.models import Ticket

    def processed() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).where(EventOccurrence.processing != "queued"))

    try:
        for ci in warm:  # each worker loads the graph before the storm, as a running one has
            client.post("/api/v1/events", json={"source": "warm", "fingerprint": str(ci), "status": "firing",
                                                "ci": {"id": ci}}, headers=headers)  # fmt: skip
            time.sleep(0.5)
        while processed() < len(warm):
            time.sleep(0.5)
        with app.app_context():
            before = db.session.scalar(select(func.max(Ticket.id))) or 0
        batches = [order[i : i + PER_REQUEST] for i in range(0, len(order), PER_REQUEST)]
        started = time.monotonic()
        for i, batch in enumerate(batches):
            body = [{"source": "bench", "fingerprint": f"storm-{ci}", "status": "firing", "severity": "critical",
                     "summary": f"{name} is down", "ci": {"hostname": name}} for ci, name in batch]  # fmt: skip
            response = client.post("/api/v1/events", json=body, headers=headers)
            assert response.status_code == 202, response.get_data(as_text=True)
            time.sleep(max(0.0, started + (i + 1) * seconds / len(batches) - time.monotonic()))
        posted_s = time.monotonic() - started
        deadline = time.monotonic() + 600
        while processed() < len(warm) + len(order) and time.monotonic() < deadline:
            time.sleep(0.5)
        rss = [peak_rss_mb(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    from integrations.events.models import EventGroup

    with app.app_context():
        o = EventOccurrence
        rows = db.session.execute(
            select(o.received_at, o.processed_at).where(o.source == "bench", o.processed_at.is_not(None))
        ).all()
        first = min(r[0] for r in rows)
        last = max(r[1] for r in rows)
        latencies = [(p - r).total_seconds() for r, p in rows]
        incidents = list(db.session.scalars(select(Ticket).where(Ticket.id > before, Ticket.kind == "incident")))
        roots = set(
            db.session.scalars(select(EventGroup.root_ci_id).where(EventGroup.ticket_id.in_([t.id for t in incidents])))
        )
        on_switch = [t for t in incidents if switch in t.ci_ids]
        to_incident = (min(t.created_at for t in on_switch) - first).total_seconds() if on_switch else None
        attached = db.session.scalar(
            select(func.count()).select_from(o).where(o.source == "bench", o.alert_id.is_not(None))
        )
    return {
        "events": len(order), "processed": len(rows), "attached": attached, "posted_s": posted_s,
        "events_per_s": len(rows) / max(1e-9, (last - first).total_seconds()),
        "latency_p50_s": impact.pct(latencies, 50), "latency_p99_s": impact.pct(latencies, 99),
        "first_event_to_incident_s": to_incident, "incidents": len(incidents), "roots": len(roots),
        "incident_on_switch": len(on_switch), "worker_peak_rss_mb": rss,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k", choices=sorted(impact.SIZES))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = run(args.size, args.events, args.seconds, args.workers)
    print(f"storm of {result['events']} events posted in {result['posted_s']:.1f} s, {args.workers} workers")
    rate = result["events_per_s"]
    print(f"  processed: {result['processed']} at {rate:.0f} events/s (first received to last processed)")
    print(f"  latency received -> processed: p50 {result['latency_p50_s']:.2f} s, p99 {result['latency_p99_s']:.2f} s")
    print(f"  first event -> the incident on the switch: {result['first_event_to_incident_s']} s")
    print(
        f"  incidents opened: {result['incidents']} for {result['roots']} root cause(s); "
        f"duplicates: {result['incidents'] - result['roots']}; on the switch: {result['incident_on_switch']}"
    )
    print(f"  workers' peak RSS: {', '.join(f'{m:.0f} MB' for m in result['worker_peak_rss_mb'])}")


if __name__ == "__main__":
    main()
