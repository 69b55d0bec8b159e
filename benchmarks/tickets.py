"""Ticket latencies at scale on PostgreSQL: 100k tickets over 10k CIs.

    .venv/bin/python benchmarks/tickets.py [--tickets 100000] [--cis 10000] [--runs 200] [--keep]

A scratch database is migrated and bulk-loaded (CIs, a dependency graph, tickets linked to CIs with a
skew so some CIs carry hundreds of tickets, and their change-log rows, as the app would have written
them), then each operation is timed through the whole Flask stack (test client: routing, auth, schema,
SQL, serialisation; no network) and p50/p95 are printed against the 100 ms target:

- create: POST /tickets (an incident on two CIs)
- CI tickets: GET /cis/{id}/tickets for the CIs with the most tickets
- CI history: GET /cis/{id}/history for the same CIs
- conflicts: GET /tickets/{id}/conflicts for a change over 50 CIs with 200 other changes scheduled
  in overlapping windows
- probable causes: GET /tickets/{id}/probable-causes with 100 open incidents in the last hours
- SLA (``--sla-tickets``, default 100k more open incidents under a business-hours policy, a tenth
  with holds behind them; target 10 s): the clock computation of every one of them (what a
  calendar or policy edit does), the first periodic scan (fires every warning and breach they
  have crossed), the steady-state scan that follows and one three hours later (``--only-sla``
  runs just this part), then a calendar edit through the API (it commits and queues the
  recomputation as a durable job), the scan while that job is pending, and the job's run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402

DB_NAME = "cairn_bench_tickets"
TARGET_MS = 100.0
CHUNK = 5000


def fresh_database() -> str:
    return scratch.fresh_database(DB_NAME)


def drop_database() -> None:
    scratch.drop_database(DB_NAME)


def chunks(rows):
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def bulk(connection, table, rows) -> None:
    for part in chunks(rows):
        connection.execute(insert(table), part)


class Estate:
    """What the loader made, for the scenarios to pick from."""

    hosts: list[int]
    apps: list[int]
    hot_cis: list[int]
    target_change: int
    storm_incidents: list[int]


def load(db, n_cis: int, n_tickets: int, rng: random.Random) -> Estate:
    from cairn.audit.models import ChangeLog, ChangeLogCI
    from cmdb.models import ConfigurationItem
    from relations.services import bulk_create_relationships
    from tickets.models import NUMBER_PREFIXES, Ticket, TicketCI
    from tickets.workflow import priority_of

    now = datetime.now(UTC)
    estate = Estate()
    conn = db.session.connection()

    # --- CIs: switches, hosts, apps and databases on the hosts, business services, end-user devices.
    n_switch, n_host = 20, max(50, n_cis // 50)
    n_app, n_svc = n_cis * 4 // 10, max(20, n_cis // 100)
    n_db = n_cis // 25
    n_other = n_cis - n_switch - n_host - n_app - n_svc - n_db
    plan = (
        [("network_switch", "high")] * n_switch
        + [("server", "high")] * n_host
        + [("application", "medium")] * n_app
        + [("database", "high")] * n_db
        + [("business_service", "critical")] * n_svc
        + [("laptop", "low")] * n_other
    )
    rows = [
        {
            "id": i + 1,
            "name": f"{cls}-{i + 1}",
            "ci_class": cls,
            "status": "deployed",
            "criticality": crit,
            "vendor": "",
            "description": "",
            "attributes": {},
            "version": 1,
            "created_at": now - timedelta(days=400),
            "updated_at": now - timedelta(days=400),
        }
        for i, (cls, crit) in enumerate(plan)
    ]
    bulk(conn, ConfigurationItem.__table__, rows)
    conn.execute(text("SELECT setval(pg_get_serial_sequence('ci', 'id'), (SELECT max(id) FROM ci))"))
    ids_of = {}
    for row in rows:
        ids_of.setdefault(row["ci_class"], []).append(row["id"])
    switches, hosts = ids_of["network_switch"], ids_of["server"]
    apps, dbs, services = ids_of["application"], ids_of["database"], ids_of["business_service"]
    estate.hosts, estate.apps = hosts, apps

    # --- The graph: host -> switch, app/db -> host, app -> db, service -> apps.
    rels = [
        {"source_id": h, "type": "depends_on", "target_id": switches[i % len(switches)]} for i, h in enumerate(hosts)
    ]
    rels += [{"source_id": a, "type": "runs_on", "target_id": hosts[i % len(hosts)]} for i, a in enumerate(apps)]
    rels += [{"source_id": d, "type": "runs_on", "target_id": hosts[(i * 7) % len(hosts)]} for i, d in enumerate(dbs)]
    rels += [{"source_id": a, "type": "depends_on", "target_id": dbs[i % len(dbs)]} for i, a in enumerate(apps)]
    for s in services:
        for a in rng.sample(apps, 10):
            rels.append({"source_id": s, "type": "depends_on", "target_id": a})
    rels = list({(r["source_id"], r["type"], r["target_id"]): r for r in rels}.values())
    bulk_create_relationships(rels)
    db.session.commit()
    conn = db.session.connection()

    # --- Tickets: skewed over the infrastructure CIs, most of them long closed.
    linkable = hosts + apps + dbs + services + ids_of["laptop"][: n_other // 2]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(linkable))]
    kinds = ["incident"] * 70 + ["request"] * 15 + ["problem"] * 5 + ["change"] * 10
    counters = dict.fromkeys(NUMBER_PREFIXES, 0)
    tickets, links, logs, log_cis = [], [], [], []
    link_id = 0
    log_id = conn.scalar(text("SELECT coalesce(max(id), 0) FROM change_log"))
    for tid in range(1, n_tickets + 1):
        kind = rng.choice(kinds)
        counters[kind] += 1
        created = now - timedelta(days=365 * rng.random(), minutes=30)
        impact, urgency = rng.randint(1, 3), rng.randint(1, 3)
        closed = rng.random() < 0.92
        ticket = {
            "id": tid,
            "number": f"{NUMBER_PREFIXES[kind]}{counters[kind]:07d}",
            "kind": kind,
            "title": f"{kind} {tid}",
            "description": "",
            "impact": impact,
            "urgency": urgency,
            "priority": priority_of(impact, urgency),
            "state": "closed" if closed else ("new" if kind != "change" else "assess"),
            "created_at": created,
            "updated_at": created + timedelta(hours=5),
            "acknowledged_at": created + timedelta(minutes=10) if closed else None,
            "resolved_at": created + timedelta(hours=rng.randint(1, 72)) if closed and kind != "change" else None,
            "closed_at": created + timedelta(days=4) if closed else None,
            "on_hold_seconds": 0,
            "sla_breached": False,
            "known_error": False,
            "approval_round": 1,
            "version": 1,
            "response_due": created + timedelta(hours=1),
            "resolution_due": created + timedelta(days=3),
        }
        if kind == "change":
            start = created + timedelta(days=2)
            ticket.update(
                planned_start=start,
                planned_end=start + timedelta(hours=2),
                outcome="successful" if closed else None,
                risk="low",
                risk_score=0,
                risk_reasons=[],
            )
        tickets.append(ticket)
        cis = set(rng.choices(linkable, weights=weights, k=rng.choice((1, 1, 2))))
        log_id += 1
        logs.append(
            {
                "id": log_id,
                "txid": 0,
                "at": created,
                "actor": "bench",
                "object_type": "ticket",
                "object_id": tid,
                "action": "create",
                "summary": f"{ticket['number']} opened",
                "changes": {},
            }
        )
        log_cis += [{"change_id": log_id, "ci_id": c} for c in cis]
        for c in cis:
            link_id += 1
            links.append({"id": link_id, "ticket_id": tid, "ci_id": c, "created_at": created, "updated_at": created})
            log_id += 1
            logs.append(
                {
                    "id": log_id,
                    "txid": 0,
                    "at": created,
                    "actor": "bench",
                    "object_type": "ticket_ci",
                    "object_id": link_id,
                    "action": "create",
                    "summary": f"CI {c} added",
                    "changes": {},
                }
            )
            log_cis.append({"change_id": log_id, "ci_id": c})
        if closed:
            log_id += 1
            logs.append(
                {
                    "id": log_id,
                    "txid": 0,
                    "at": ticket["closed_at"],
                    "actor": "bench",
                    "object_type": "ticket",
                    "object_id": tid,
                    "action": "transition",
                    "summary": "closed",
                    "changes": {"state": ["resolved", "closed"]},
                }
            )
            log_cis += [{"change_id": log_id, "ci_id": c} for c in cis]
    keys = set().union(*(t.keys() for t in tickets))
    tickets = [{k: t.get(k) for k in keys} for t in tickets]
    bulk(conn, Ticket.__table__, tickets)
    bulk(conn, TicketCI.__table__, links)
    bulk(conn, ChangeLog.__table__, logs)
    bulk(conn, ChangeLogCI.__table__, log_cis)
    for table in ("ticket", "ticket_ci", "change_log"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    for kind, value in counters.items():
        if value:
            conn.execute(text(f"SELECT setval('ticket_number_{kind}', {value})"))
    db.session.commit()
    conn = db.session.connection()

    # --- Scenario: 200 scheduled changes in overlapping windows, and a change over 50 CIs.
    window = now + timedelta(days=30)
    next_id = n_tickets
    infra = hosts + apps + dbs
    scheduled, sched_links = [], []
    for i in range(201):
        next_id += 1
        counters["change"] += 1
        start = window + timedelta(minutes=rng.randint(-180, 180))
        scheduled.append(
            {k: None for k in keys}
            | {
                "id": next_id,
                "number": f"CHG{counters['change']:07d}",
                "kind": "change",
                "title": f"planned {i}",
                "description": "",
                "impact": 2,
                "urgency": 2,
                "priority": 3,
                "state": "scheduled",
                "created_at": now,
                "updated_at": now,
                "on_hold_seconds": 0,
                "sla_breached": False,
                "known_error": False,
                "approval_round": 1,
                "version": 1,
                "planned_start": start,
                "planned_end": start + timedelta(hours=3),
                "response_due": now + timedelta(hours=4),
                "resolution_due": now + timedelta(days=3),
                "risk": "low",
                "risk_score": 0,
                "risk_reasons": [],
            }
        )
        for c in rng.sample(infra, 50 if i == 200 else 5):
            link_id += 1
            sched_links.append({"id": link_id, "ticket_id": next_id, "ci_id": c, "created_at": now, "updated_at": now})
    estate.target_change = next_id

    # --- Scenario: an alert storm, 100 open incidents in the last hours, many on apps of a few hosts.
    storm, storm_links = [], []
    storm_hosts = rng.sample(range(len(hosts)), 5)
    estate.storm_incidents = []
    for i in range(100):
        next_id += 1
        counters["incident"] += 1
        created = now - timedelta(minutes=rng.randint(1, 600))
        storm.append(
            {k: None for k in keys}
            | {
                "id": next_id,
                "number": f"INC{counters['incident']:07d}",
                "kind": "incident",
                "title": f"alert {i}",
                "description": "",
                "impact": 2,
                "urgency": 1,
                "priority": 2,
                "state": "new",
                "created_at": created,
                "updated_at": created,
                "on_hold_seconds": 0,
                "sla_breached": False,
                "known_error": False,
                "approval_round": 1,
                "version": 1,
                "response_due": created + timedelta(hours=1),
                "resolution_due": created + timedelta(hours=8),
            }
        )
        if i < 60:  # apps on the storm's hosts: app i runs on hosts[i % len(hosts)]
            host_index = storm_hosts[i % len(storm_hosts)]
            ci = apps[host_index + len(hosts) * rng.randint(0, len(apps) // len(hosts) - 1)]
        else:
            ci = rng.choice(linkable)
        link_id += 1
        storm_links.append(
            {"id": link_id, "ticket_id": next_id, "ci_id": ci, "created_at": created, "updated_at": created}
        )
        estate.storm_incidents.append(next_id)
    bulk(conn, Ticket.__table__, scheduled + storm)
    bulk(conn, TicketCI.__table__, sched_links + storm_links)
    for table in ("ticket", "ticket_ci"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    for kind in ("change", "incident"):
        conn.execute(text(f"SELECT setval('ticket_number_{kind}', {counters[kind]})"))
    db.session.commit()

    hot = db.session.execute(
        select(TicketCI.ci_id).group_by(TicketCI.ci_id).order_by(func.count().desc()).limit(50)
    ).scalars()
    estate.hot_cis = list(hot)
    return estate


SLA_TARGET_S = 10.0


def sla_scenario(app, db, n: int, rng: random.Random) -> None:
    """Open incidents under a Berlin office-hours policy, then the SLA clock work over all of them."""
    from tickets.models import Ticket
    from tickets.slas import scan as sla_scan
    from tickets.slas import services as sla_services
    from tickets.slas.models import BusinessCalendar, SLAPolicy

    now = datetime.now(UTC)
    with app.app_context():
        weekdays = {day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
        holidays = [{"name": f"holiday {d}", "start": (now - timedelta(days=d)).date().isoformat()} for d in (3, 17)]
        calendar = BusinessCalendar(name="bench office", time_zone="Europe/Berlin", hours=weekdays, closures=holidays)
        db.session.add(calendar)
        db.session.flush()
        policy = SLAPolicy(
            name="bench incidents", type="sla", calendar_id=calendar.id, match_kind="incident",
            response_seconds=4 * 3600, resolution_seconds=40 * 3600, warn_at=0.75, order=0,
        )  # fmt: skip
        db.session.add(policy)
        db.session.flush()
        conn = db.session.connection()
        first = conn.scalar(text("SELECT coalesce(max(id), 0) FROM ticket")) + 1
        number = conn.scalar(text("SELECT count(*) FROM ticket WHERE kind = 'incident'"))
        rows = []
        for tid in range(first, first + n):
            number += 1
            created = now - timedelta(days=14 * rng.random())
            held = rng.random() < 0.1
            hold_start = created + timedelta(hours=2)
            rows.append(
                {
                    "id": tid, "number": f"INC{number:07d}", "kind": "incident", "title": f"sla {tid}",
                    "description": "", "impact": 3, "urgency": 3, "priority": 5, "state": "in_progress",
                    "created_at": created, "updated_at": created, "acknowledged_at": created + timedelta(minutes=5),
                    "on_hold_seconds": 0, "sla_breached": False, "known_error": False, "approval_round": 1,
                    "version": 1, "sla_policy_id": policy.id,
                    "hold_intervals": [[hold_start.isoformat(), (hold_start + timedelta(hours=20)).isoformat()]]
                    if held and hold_start + timedelta(hours=20) < now else [],
                }
            )  # fmt: skip
        bulk(conn, Ticket.__table__, rows)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('ticket', 'id'), (SELECT max(id) FROM ticket))"))
        db.session.commit()
        db.session.remove()
    print(f"\nSLA: {n} open incidents under a business-hours policy (Berlin, two holidays, 10% with a hold)")

    def measure(label, work):
        with app.app_context():
            started, cpu = time.perf_counter(), time.process_time()
            result = work()
            db.session.commit()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            db.session.remove()
        verdict = "ok" if elapsed <= SLA_TARGET_S else "OVER"
        print(
            f"{label:<58} {elapsed:7.2f} s (this process's CPU {cpu:6.2f} s)   "
            f"({result}; target {SLA_TARGET_S:.0f} s: {verdict})"
        )

    measure("clock computation of every open ticket (recompute)", lambda: f"{sla_services.recompute()} changed")
    # The scan itself (tickets.slas.scan), at fixed instants: the periodic job also runs the
    # wall-clock breach flagging of the tickets without a policy, which is not measured here.
    measure("first scan: fire every crossed warning and breach", lambda: sla_scan.scan(now))
    measure("steady-state scan (nothing new crossed)", lambda: sla_scan.scan(now))
    later = now + timedelta(hours=3)
    measure("the scan 3 hours later (what crossed meanwhile)", lambda: sla_scan.scan(later))
    sla_edit(app, db, measure, calendar.id, later)


def sla_edit(app, db, measure, calendar_id: int, later) -> None:
    """A calendar edit through the API: the request commits at once and queues the recomputation
    (a durable job; Redis unreachable here, so it waits as it would in the queue), the scan runs
    while it is pending, then the job itself runs."""
    from cairn.auth.services import create_token, create_user
    from cairn.jobs import enqueue_now
    from tickets.slas import recompute
    from tickets.slas import scan as sla_scan
    from tickets.slas.models import SLARecompute

    with app.app_context():
        admin = create_user("sla-bench@example.com", "admin")
        _, secret = create_token(admin)
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens: the job stays queued
    try:
        started = time.perf_counter()
        answer = client.patch(
            f"/api/v1/calendars/{calendar_id}",
            json={"closures": [{"name": "bench closure", "start": later.date().isoformat()}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        elapsed = time.perf_counter() - started
    finally:
        app.config["REDIS_URL"] = None
    assert answer.status_code == 200, answer.json
    job = answer.json["recompute"]
    print(
        f"{'calendar edit: PATCH /calendars/{id} (commits, queues the job)':<58} {elapsed:7.2f} s   ({job['status']})"
    )
    measure("the scan while that recompute is pending", lambda: sla_scan.scan(later))

    def run_job():
        enqueue_now(recompute.JOB, job["id"])
        row = db.session.get(SLARecompute, job["id"])
        return f"{row.status}: {row.tickets} read, {row.changed} changed"

    measure("the recompute job (durable, batches of 500)", run_job)


def timed(label, runs, call, expect=200):
    for _ in range(3):
        call(0)
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        response = call(i)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != expect:
            raise SystemExit(f"{label}: HTTP {response.status_code}: {response.get_data(as_text=True)[:500]}")
    samples.sort()
    p50 = statistics.median(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    verdict = "ok" if p95 <= TARGET_MS else "OVER"
    print(
        f"{label:<58} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   ({runs} runs, p95 target {TARGET_MS:.0f} ms: {verdict})"
    )
    return p50, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--cis", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--sla-tickets", type=int, default=100_000)
    parser.add_argument("--only-sla", action="store_true", help="load, then run the SLA scenario only")
    args = parser.parse_args()
    rng = random.Random(42)

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.auth.services import create_token, create_user
    from cairn.config import Config
    from cairn.db import db

    url = fresh_database()
    instance = Path(tempfile.mkdtemp(prefix="cairn-bench-tickets-"))
    app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance, REDIS_URL=None, LOG_LEVEL="WARNING"))
    try:
        with app.app_context():
            upgrade(revision="heads")
            started = time.perf_counter()
            estate = load(db, args.cis, args.tickets, rng)
            admin = create_user("bench@example.com", "admin")
            _, secret = create_token(admin)
            db.session.commit()
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
                counts = {
                    t: conn.scalar(text(f"SELECT count(*) FROM {t}"))
                    for t in ("ci", "relationship", "ticket", "ticket_ci", "change_log", "change_log_ci")
                }
            db.session.remove()
        print(f"loaded in {time.perf_counter() - started:.0f} s: {counts}")
        headers = {"Authorization": f"Bearer {secret}"}
        client = app.test_client()
        runs = args.runs
        hot = estate.hot_cis
        with app.app_context():
            from tickets.models import TicketCI

            busiest = db.session.scalar(select(func.count()).where(TicketCI.ci_id == hot[0]))
            db.session.remove()
        if args.only_sla:
            sla_scenario(app, db, args.sla_tickets, rng)
            return
        print(f"busiest CI has {busiest} tickets; CI scenarios cycle over the 50 busiest CIs\n")

        timed(
            "CI tickets: GET /cis/{id}/tickets (open first, page 1)",
            runs,
            lambda i: client.get(f"/api/v1/cis/{hot[i % len(hot)]}/tickets", headers=headers),
        )
        timed(
            "CI history: GET /cis/{id}/history (page 1)",
            runs,
            lambda i: client.get(f"/api/v1/cis/{hot[i % len(hot)]}/history", headers=headers),
        )
        timed(
            "conflicts: change over 50 CIs, 200 changes scheduled",
            max(20, runs // 4),
            lambda i: client.get(f"/api/v1/tickets/{estate.target_change}/conflicts", headers=headers),
        )
        storm = estate.storm_incidents
        timed(
            "probable causes: 100 open incidents in the last hours",
            max(20, runs // 4),
            lambda i: client.get(f"/api/v1/tickets/{storm[i % 60]}/probable-causes", headers=headers),
        )
        r = client.get(f"/api/v1/tickets/{estate.target_change}/conflicts", headers=headers).json
        c = client.get(f"/api/v1/tickets/{storm[0]}/probable-causes", headers=headers).json
        print(
            f"\n(conflicts found: {len(r)}; top probable cause explains {c['causes'][0]['incident_count']} "
            f"of {c['open_incidents']} open incidents)"
        )

        # last: the incidents it opens would join the storm above
        def create(i):
            cis = rng.sample(estate.apps, 2)
            body = {"kind": "incident", "title": f"bench {i}", "impact": 2, "urgency": 2, "ci_ids": cis}
            return client.post("/api/v1/tickets", json=body, headers=headers)

        timed("create: POST /tickets (incident, 2 CIs)", runs, create, expect=201)
        print("\nextra, for reference:")
        timed(
            "GET /tickets/{id} of a change (risk read from the row)",
            runs // 2,
            lambda i: client.get(f"/api/v1/tickets/{estate.target_change}", headers=headers),
        )
        timed(
            "GET /tickets?kind=change&window_from&window_to (calendar)",
            runs // 2,
            lambda i: client.get(
                "/api/v1/tickets",
                headers=headers,
                query_string={
                    "kind": "change",
                    "window_from": (datetime.now(UTC) + timedelta(days=29)).isoformat(),
                    "window_to": (datetime.now(UTC) + timedelta(days=31)).isoformat(),
                },
            ),
        )
        sla_scenario(app, db, args.sla_tickets, rng)
    finally:
        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
