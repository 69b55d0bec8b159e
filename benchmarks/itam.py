"""Asset-management reports at scale: every report, chart and the asset-register export, timed.

    .venv/bin/python benchmarks/itam.py                  # PostgreSQL, build the estate, 3 timed runs
    .venv/bin/python benchmarks/itam.py --reuse          # keep the estate built by an earlier run
    .venv/bin/python benchmarks/itam.py --db sqlite      # the same on a SQLite file
    .venv/bin/python benchmarks/itam.py --reuse --only register --runs 5 --save /tmp/after.json

The estate lives in a named scratch database, ``cairn_bench_itam`` on PostgreSQL (next to the server's
``test`` database; ``CAIRN_BENCH_PG_URL`` overrides the admin URL) or ``$CAIRN_BENCH_DIR/itam.db`` for
SQLite (default ``/tmp/cairn-bench``). ``--reuse`` skips the build when that database already holds an
estate of the asked size (a row count check); otherwise it is dropped and rebuilt.

How it is built: migrated with ``upgrade("heads")``, then bulk ``INSERT``s straight into the real tables
(SQLAlchemy Core ``insert(table)`` with lists of rows, 5,000 per statement, explicit ids and sequences
reset afterwards), bypassing the services, so no per-object validation or change-log hook runs. The
change log is written the same way, with what the hooks would have written for what matters to the
reports: a ``create`` row per CI (its status, team, holder and location) and ``update`` rows for later
status changes and reassignments, some by an integration account. Relationships get no change-log rows.
Then ``ANALYZE``. Build time is printed but is not a target. The estate (seeded, so reproducible):

- 50,000 CIs: 2,000 software products (publisher, version, 15 % past end of life) and 48,000 devices
  (laptops, desktops, servers and VMs with ``cpu_cores``, phones, tablets, printers, network gear,
  storage) with purchase date and cost, warranty, owner team (80 %), holder (most end-user devices,
  so some users hold several), location, laptop encryption flags, discovery ``last_seen``; 7 % retired
  and 5 % disposed (with wipe and disposal records), 10 % in stock;
- 200,000 ``installed_on`` relationships software -> computer (popular products on many devices,
  5 % closed in the past), 2,600 licences over 1,600 products in every licence model, some expired or
  expiring, some bought under a contract;
- 5,000 contracts from 100 vendors covering 1-30 CIs each (~77,000 links), one-off and recurring costs;
- 20,000 maintenance records, 25,000 physical audits (5 % mismatches), 20,000 tickets on 25,000
  ticket-CI links, 4,000 users, 40 teams, 200 locations, two configured class policies.

What is timed: each request through the Flask test client (the whole stack: routing, auth, parameter
schema, SQL, rows, serialisation; no network, no gunicorn), one warm-up call then ``--runs`` calls, the
p50 printed (and the worst). Targets: a report (JSON page 1 or a whole CSV/XLSX) <= 2 s, a chart (SVG or
PNG, which computes its report too) <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("CAIRN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WORK = Path(os.environ.get("CAIRN_BENCH_DIR", Path(tempfile.gettempdir()) / "cairn-bench"))
DB_NAME = "cairn_bench_itam"
CHUNK = 5000
SEED = 7
REPORT_TARGET = 2.0
CHART_TARGET = 1.0

N_SOFTWARE = 2_000
N_INSTALLS = 200_000
N_CONTRACTS = 5_000
N_USERS = 4_000
N_TEAMS = 40
N_LOCATIONS = 200
N_VENDORS = 100
N_MAINTENANCE = 20_000
N_AUDITS = 25_000
N_TICKETS = 20_000
# class -> share of the 48,000 devices
DEVICE_MIX = {
    "laptop": 20_000,
    "desktop": 8_000,
    "server": 5_000,
    "virtual_machine": 6_000,
    "mobile_phone": 4_000,
    "tablet": 1_000,
    "printer": 1_000,
    "network_switch": 1_500,
    "router": 500,
    "firewall": 300,
    "access_point": 500,
    "storage": 200,
}
END_USER = {"laptop", "desktop", "mobile_phone", "tablet"}
COMPUTERS = {"laptop", "desktop", "server", "virtual_machine"}
PUBLISHERS = ["Microsoft", "Adobe", "Oracle", "Atlassian", "JetBrains", "Zoom", "Slack", "Autodesk", "SAP", "Google"]


# ------------------------------------------------------------------------------------------- build
def database_url(db: str) -> str:
    if db == "postgresql":
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"
    return f"sqlite:///{WORK / 'itam.db'}"


def estate_present(db: str, n_cis: int) -> bool:
    try:
        engine = create_engine(database_url(db))
        with engine.connect() as conn:
            cis = conn.scalar(text("SELECT count(*) FROM ci"))
            installs = conn.scalar(text("SELECT count(*) FROM relationship WHERE type = 'installed_on'"))
        engine.dispose()
        return cis == n_cis and installs == N_INSTALLS
    except Exception:  # noqa: BLE001 - no database, no tables: build it
        return False


def fresh_database(db: str) -> str:
    if db == "postgresql":
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
        admin.dispose()
    else:
        WORK.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{WORK / 'itam.db'}{suffix}").unlink(missing_ok=True)
    return database_url(db)


def bulk(conn, table, rows) -> None:
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[start : start + CHUNK])


def build(db, n_cis: int) -> dict:
    """Fill the migrated, empty database; returns counts."""
    from cairn.audit.models import ChangeLog
    from cairn.auth.models import Team, User
    from cmdb.assets.models import (
        AssetClassPolicy,
        Contract,
        ContractCI,
        DisposalRecord,
        Licence,
        MaintenanceRecord,
        PhysicalAudit,
        Vendor,
        WipeRecord,
    )
    from cmdb.models import ConfigurationItem, Location
    from relations.models import Relationship
    from tickets.models import Ticket, TicketCI

    rng = random.Random(SEED)
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    conn = db.session.connection()

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    teams = [{"id": i, "name": f"Team {i:02d}", "description": "", "version": 1} for i in range(1, N_TEAMS + 1)]
    bulk(conn, Team.__table__, teams)
    users = [
        {"id": i, "email": f"user{i:05d}@example.com", "name": f"User {i}", "role": "requester", "active": True,
         "version": 1}
        for i in range(1, N_USERS + 1)
    ]  # fmt: skip
    integration_id = N_USERS + 1
    users.append({"id": integration_id, "email": "discovery@example.com", "name": "Discovery", "role": "integration",
                  "active": True, "version": 1})  # fmt: skip
    bulk(conn, User.__table__, users)
    locations = [
        {"id": i, "name": f"Site {i:03d}", "kind": "site", "parent_id": None, "address": "", "description": "",
         "version": 1}
        for i in range(1, N_LOCATIONS + 1)
    ]  # fmt: skip
    bulk(conn, Location.__table__, locations)
    vendors = [{"id": i, "name": f"Vendor {i:03d}", "contact_name": "", "contact_phone": "", "notes": "", "version": 1}
               for i in range(1, N_VENDORS + 1)]  # fmt: skip
    bulk(conn, Vendor.__table__, vendors)
    bulk(conn, AssetClassPolicy.__table__, [
        {"ci_class": "laptop", "depreciation_method": "declining_balance", "useful_life_years": 4,
         "salvage_percent": Decimal("5"), "declining_factor": Decimal("2"), "audit_interval_days": 365, "version": 1},
        {"ci_class": "server", "depreciation_method": "straight_line", "useful_life_years": 6,
         "salvage_percent": Decimal("10"), "declining_factor": Decimal("2"), "audit_interval_days": 180, "version": 1},
    ])  # fmt: skip

    # --- CIs
    cis, logs = [], []
    n_devices = n_cis - N_SOFTWARE
    scale = n_devices / sum(DEVICE_MIX.values())
    plan = [cls for cls, n in DEVICE_MIX.items() for _ in range(round(n * scale))]
    plan = (plan + ["laptop"] * n_devices)[:n_devices]
    rng.shuffle(plan)
    for i in range(1, N_SOFTWARE + 1):
        created = ago(rng.uniform(30, 1500))
        attrs = {"publisher": rng.choice(PUBLISHERS), "version": f"{rng.randint(1, 20)}.{rng.randint(0, 9)}"}
        if rng.random() < 0.15:
            attrs["eol_date"] = (today - timedelta(days=rng.randint(1, 2000))).isoformat()
        elif rng.random() < 0.3:
            attrs["eol_date"] = (today + timedelta(days=rng.randint(1, 2000))).isoformat()
        cis.append(_ci(i, f"Product {i:04d}", "software", "deployed", created, attrs))
    statuses = ["deployed"] * 75 + ["in_stock"] * 10 + ["in_maintenance"] * 3 + ["retired"] * 7 + ["disposed"] * 5
    for offset, cls in enumerate(plan):
        i = N_SOFTWARE + offset + 1
        created = ago(rng.uniform(10, 1100))
        status = rng.choice(statuses)
        attrs = {}
        if cls in COMPUTERS and cls not in END_USER:
            attrs["cpu_cores"] = rng.choice([2, 4, 8, 16, 32, 64]) if rng.random() < 0.9 else None
            if attrs["cpu_cores"] is None:
                del attrs["cpu_cores"]
        if cls == "laptop":
            roll = rng.random()
            if roll < 0.85:
                attrs["encrypted"] = True
            elif roll < 0.95:
                attrs["encrypted"] = False
        if cls in END_USER and rng.random() < 0.6:
            attrs["last_seen"] = (today - timedelta(days=int(rng.expovariate(1 / 40)))).isoformat()
        ci = _ci(i, f"{cls}-{i:06d}", cls, status, created, attrs)
        bought = (created - timedelta(days=rng.randint(0, 400))).date()
        ci.update(
            asset_tag=f"AT{i:07d}",
            serial_number=f"SN{i:09d}",
            vendor=rng.choice(["Dell", "HP", "Lenovo", "Apple", "Cisco", "Samsung"]),
            model=f"Model {rng.randint(1, 40)}",
            purchase_date=bought,
            purchase_cost=Decimal(rng.randint(200, 12_000)) + Decimal(rng.randint(0, 99)) / 100,
            currency="EUR",
            warranty_expires=bought + timedelta(days=365 * rng.choice([1, 2, 3, 4])),
            owner_team_id=rng.randint(1, N_TEAMS) if rng.random() < 0.8 else None,
            assigned_to_id=rng.randint(1, N_USERS) if cls in END_USER and rng.random() < 0.85 else None,
            location_id=rng.randint(1, N_LOCATIONS) if rng.random() < 0.95 else None,
        )
        cis.append(ci)
    log_id = 0

    def log(at, object_id, action, changes, actor_id=None):
        nonlocal log_id
        log_id += 1
        logs.append({"id": log_id, "txid": 0, "at": at, "actor": "bench" if actor_id is None else "discovery",
                     "actor_id": actor_id, "request_id": None, "object_type": "ci", "object_id": object_id,
                     "action": action, "summary": f"CI {object_id} {action}d", "changes": changes})  # fmt: skip

    fields = ("status", "owner_team_id", "assigned_to_id", "location_id")
    for ci in cis:
        # Earlier values for some CIs, so a past date answers differently from today.
        start = {k: ci.get(k) for k in fields}
        history = []
        if ci["ci_class"] != "software" and rng.random() < 0.4:
            first = dict(start)
            first["status"] = "in_stock"
            first["assigned_to_id"] = None
            if rng.random() < 0.5:
                first["owner_team_id"] = rng.randint(1, N_TEAMS)
            start = first
            changed = ci["created_at"] + (ci["updated_at"] - ci["created_at"]) * rng.random()
            history.append((changed, {k: [first[k], ci.get(k)] for k in fields if first[k] != ci.get(k)}))
        actor = integration_id if ci["ci_class"] != "software" and rng.random() < 0.2 else None
        log(ci["created_at"], ci["id"], "create", {k: [None, v] for k, v in start.items()}, actor)
        for at, changes in history:
            if changes:
                log(at, ci["id"], "update", changes)
    bulk(conn, ConfigurationItem.__table__, cis)
    logs.sort(key=lambda r: r["at"])
    for index, row in enumerate(logs, 1):
        row["id"] = index
    bulk(conn, ChangeLog.__table__, logs)
    db.session.commit()
    conn = db.session.connection()

    devices = [c for c in cis if c["ci_class"] != "software"]
    computers = [c["id"] for c in devices if c["ci_class"] in COMPUTERS]
    disposed = [c for c in devices if c["status"] == "disposed"]
    physical = [c for c in devices if c["ci_class"] != "virtual_machine"]

    # --- Installations: popular products on many computers.
    weights = [1 / (rank + 1) ** 0.7 for rank in range(N_SOFTWARE)]
    total = sum(weights)
    seen, rels = set(), []
    for sid, weight in enumerate(weights, 1):
        want = min(len(computers), max(1, round(N_INSTALLS * weight / total)))
        for device in rng.sample(computers, want):
            seen.add((sid, device))
    while len(seen) < N_INSTALLS:
        seen.add((rng.randint(1, N_SOFTWARE), rng.choice(computers)))
    for sid, device in list(seen)[:N_INSTALLS]:
        start = ago(rng.uniform(1, 700))
        closed = start + timedelta(days=rng.uniform(0, 100)) if rng.random() < 0.05 else None
        if closed is not None and closed >= now:
            closed = None
        rels.append({"source_id": sid, "target_id": device, "type": "installed_on", "valid_from": start,
                     "valid_to": closed, "note": "", "version": 1, "created_at": start,
                     "updated_at": start})  # fmt: skip
    bulk(conn, Relationship.__table__, rels)

    # --- Contracts and what they cover.
    types = ["support", "maintenance", "lease", "warranty_extension", "subscription", "saas"]
    contracts, links = [], []
    for cid in range(1, N_CONTRACTS + 1):
        start = today - timedelta(days=rng.randint(0, 1400))
        end = start + timedelta(days=rng.choice([365, 730, 1095, 1460])) if rng.random() < 0.9 else None
        recurring = rng.random() < 0.5
        contracts.append({
            "id": cid, "name": f"Contract {cid:05d}", "reference": f"C-{cid:05d}",
            "vendor_id": rng.randint(1, N_VENDORS), "type": rng.choice(types), "start_date": start, "end_date": end,
            "cost": Decimal(rng.randint(0, 50_000)),
            "recurring_cost": Decimal(rng.randint(10, 5_000)) if recurring else Decimal("0"),
            "recurring_period": rng.choice(["monthly", "quarterly", "yearly"]) if recurring else None,
            "currency": "EUR", "auto_renew": rng.random() < 0.3, "notice_days": rng.choice([0, 30, 60, 90]),
            "owner_team_id": rng.randint(1, N_TEAMS), "note": "", "version": 1,
        })  # fmt: skip
        for ci in rng.sample(devices, rng.randint(1, 30)):
            links.append({"contract_id": cid, "ci_id": ci["id"]})
    bulk(conn, Contract.__table__, contracts)
    bulk(conn, ContractCI.__table__, links)

    # --- Licences.
    models = ["per_device"] * 50 + ["per_user"] * 20 + ["per_core"] * 10 + ["site"] * 5 + ["subscription"] * 15
    licences = []
    for sid in rng.sample(range(1, N_SOFTWARE + 1), 1_600):
        model = rng.choice(models)
        for _ in range(1 if rng.random() < 0.6 else 2):
            start = today - timedelta(days=rng.randint(0, 1500))
            roll = rng.random()
            end = None if roll < 0.5 else start + timedelta(days=rng.choice([365, 730, 1095]))
            quantity = None if model == "site" else rng.randint(1, 400)
            licences.append({
                "software_id": sid, "model": model, "quantity": quantity, "start_date": start, "end_date": end,
                "cost": Decimal(rng.randint(0, 100_000)), "currency": "EUR",
                "contract_id": rng.randint(1, N_CONTRACTS) if rng.random() < 0.3 else None, "reference": "",
                "note": "", "version": 1,
            })  # fmt: skip
    bulk(conn, Licence.__table__, licences)

    # --- Maintenance, audits, wipes and disposals.
    kinds = ["repair", "upgrade", "patch", "inspection", "replacement", "other"]
    maintenance = [
        {"ci_id": rng.choice(devices)["id"], "performed_at": today - timedelta(days=rng.randint(0, 1000)),
         "kind": rng.choice(kinds), "vendor_id": rng.randint(1, N_VENDORS), "cost": Decimal(rng.randint(0, 2_000)),
         "currency": "EUR", "ticket_id": None, "note": ""}
        for _ in range(N_MAINTENANCE)
    ]  # fmt: skip
    bulk(conn, MaintenanceRecord.__table__, maintenance)
    audits = []
    for _ in range(N_AUDITS):
        ci = rng.choice(physical)
        at = ago(rng.uniform(0, 600))
        expected = ci["location_id"]
        seen_at = rng.randint(1, N_LOCATIONS) if rng.random() < 0.05 or expected is None else expected
        audits.append({"ci_id": ci["id"], "asset_tag": ci["asset_tag"], "location_id": seen_at,
                       "expected_location_id": expected, "mismatch": seen_at != expected, "audited_at": at,
                       "audited_by_id": None, "next_audit_due": at.date() + timedelta(days=365),
                       "note": ""})  # fmt: skip
    bulk(conn, PhysicalAudit.__table__, audits)
    bulk(conn, WipeRecord.__table__, [
        {"ci_id": c["id"], "method": "overwrite", "performed_by": "bench", "performed_at": c["updated_at"],
         "certificate": "", "note": ""} for c in disposed
    ])  # fmt: skip
    bulk(conn, DisposalRecord.__table__, [
        {"ci_id": c["id"], "method": rng.choice(["recycle", "resell", "donate", "destroy"]),
         "proceeds": Decimal(rng.randint(0, 300)), "currency": "EUR", "disposed_at": c["updated_at"].date(),
         "recipient": "", "certificate": "", "note": ""} for c in disposed
    ])  # fmt: skip

    # --- Tickets on CIs (skewed: a few CIs carry many).
    tickets, ticket_links = [], []
    hot = [c["id"] for c in rng.sample(devices, 2_000)]
    for tid in range(1, N_TICKETS + 1):
        created = ago(rng.uniform(0, 700))
        closed = rng.random() < 0.85
        tickets.append({
            "id": tid, "number": f"INC{tid:07d}", "kind": "incident", "title": f"incident {tid}", "description": "",
            "state": "closed" if closed else "new", "impact": 3, "urgency": 3, "priority": 5,
            "created_at": created, "updated_at": created, "on_hold_seconds": 0, "sla_breached": False,
            "known_error": False, "approval_round": 1, "version": 1,
        })  # fmt: skip
        for ci in {rng.choice(hot[: rng.choice([20, 200, 2000])]) for _ in range(rng.choice([1, 1, 2]))}:
            ticket_links.append({"ticket_id": tid, "ci_id": ci, "created_at": created, "updated_at": created})
    bulk(conn, Ticket.__table__, tickets)
    bulk(conn, TicketCI.__table__, ticket_links)

    if db.engine.dialect.name == "postgresql":
        for table in ("team", "user", "location", "vendor", "ci", "contract", "ticket", "change_log"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))")
            )
        conn.execute(text(f"UPDATE ticket_counter SET last_value = {N_TICKETS} WHERE kind = 'incident'"))
    db.session.commit()
    return {
        "cis": len(cis), "installations": len(rels), "contracts": len(contracts), "contract_links": len(links),
        "licences": len(licences), "change_log": len(logs), "maintenance": len(maintenance), "audits": len(audits),
        "tickets": len(tickets),
    }  # fmt: skip


def _ci(i, name, cls, status, created, attrs) -> dict:
    return {
        "id": i, "name": name, "ci_class": cls, "status": status, "criticality": "medium", "asset_tag": None,
        "vendor": "", "serial_number": None, "model": None, "description": "", "owner_team_id": None,
        "assigned_to_id": None, "location_id": None, "purchase_date": None, "purchase_cost": None, "currency": None,
        "warranty_expires": None, "attributes": attrs, "version": 1, "created_at": created,
        "updated_at": created + (datetime.now(UTC) - created) * 0.5,
    }  # fmt: skip


# ------------------------------------------------------------------------------------------- measure
def cases(past: str) -> list[tuple[str, str, str, float]]:
    """(label, path, kind, target seconds)."""
    from integrations.reports.registry import all_reports

    out = [
        ("licence-compliance", "/api/v1/reports/licence-compliance", "report"),
        ("licence-compliance as_of past", f"/api/v1/reports/licence-compliance?as_of={past}", "report"),
        ("licence-compliance CSV", "/api/v1/reports/licence-compliance?format=csv", "report"),
    ]
    for report in all_reports():
        if report.name in ("licence-compliance", "asset-register"):
            continue
        out.append((report.name, f"/api/v1/reports/{report.name}", "report"))
    out += [
        ("costs by=class", "/api/v1/reports/costs?by=class", "report"),
        ("costs by=location as_of past", f"/api/v1/reports/costs?by=location&as_of={past}", "report"),
        ("asset-counts by=location", "/api/v1/reports/asset-counts?by=location", "report"),
        ("licence-reclaim CSV", "/api/v1/reports/licence-reclaim?format=csv", "report"),
        ("unused-assets CSV", "/api/v1/reports/unused-assets?format=csv", "report"),
        ("asset-register JSON today", "/api/v1/reports/asset-register", "report"),
        ("asset-register CSV today", "/api/v1/reports/asset-register?format=csv", "report"),
        ("asset-register XLSX today", "/api/v1/reports/asset-register?format=xlsx", "report"),
        ("asset-register JSON as_of past", f"/api/v1/reports/asset-register?as_of={past}", "report"),
        ("asset-register CSV as_of past", f"/api/v1/reports/asset-register?format=csv&as_of={past}", "report"),
        ("asset-register XLSX as_of past", f"/api/v1/reports/asset-register?format=xlsx&as_of={past}", "report"),
    ]
    for report in all_reports():
        for ext in ("svg", "png"):
            if ext in report.formats:
                out.append((f"{report.name}.{ext}", f"/api/v1/reports/{report.name}.{ext}", "chart"))
    return [(label, path, kind, REPORT_TARGET if kind == "report" else CHART_TARGET) for label, path, kind in out]


def measure(app, headers, runs: int, only: list[str]) -> list[dict]:
    past = (date.today() - timedelta(days=365)).isoformat()
    client = app.test_client()
    results = []
    for label, path, kind, target in cases(past):
        if only and not any(word in label for word in only):
            continue
        samples, size = [], 0
        for attempt in range(runs + 1):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            body = response.get_data()  # a streamed body is produced here, inside the timing
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code}: {body[:500]!r}")
            if attempt:
                samples.append(elapsed)
            size = len(body)
        rows = response.headers.get("X-Pagination")
        rows = json.loads(rows)["total"] if rows else None
        p50 = statistics.median(samples)
        results.append({"label": label, "kind": kind, "p50": p50, "max": max(samples), "target": target,
                        "bytes": size, "rows": rows})  # fmt: skip
        print(f"  {label:<40} {p50:7.3f} s", file=sys.stderr, flush=True)
    return results


def table(results: list[dict], before: dict | None) -> None:
    head = "| what | kind | rows | size | " + ("before p50 | " if before else "") + "p50 | worst | target | |"
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        size = f"{r['bytes'] / 1024:,.0f} kB"
        rows = "" if r["rows"] is None else f"{r['rows']:,}"
        old = before.get(r["label"]) if before else None
        was = ("" if old is None else f"{old:.3f} s | ") if before else ""
        verdict = "ok" if r["p50"] <= r["target"] else "OVER"
        print(f"| {r['label']} | {r['kind']} | {rows} | {size} | {was}{r['p50']:.3f} s | {r['max']:.3f} s "
              f"| ≤ {r['target']:.0f} s | {verdict} |")  # fmt: skip
    over = [r["label"] for r in results if r["p50"] > r["target"]]
    print(
        f"\n{len(results) - len(over)} of {len(results)} within target" + (f"; over: {', '.join(over)}" if over else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--cis", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per request (after one warm-up)")
    parser.add_argument("--reuse", action="store_true", help="keep the estate already in the scratch database")
    parser.add_argument("--only", nargs="*", default=[], help="time only the cases whose label contains a word")
    parser.add_argument("--save", help="write the figures as JSON to this file")
    parser.add_argument("--before", help="a --save file of an earlier run, printed as a column")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.auth.models import User
    from cairn.auth.services import create_token, create_user
    from cairn.config import Config
    from cairn.db import db

    reuse = args.reuse and estate_present(args.db, args.cis)
    url = database_url(args.db) if reuse else fresh_database(args.db)
    instance = Path(tempfile.mkdtemp(prefix="cairn-bench-itam-"))
    app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance, REDIS_URL=None, LOG_LEVEL="WARNING"))
    with app.app_context():
        if reuse:
            print(f"reusing the estate in {url}", file=sys.stderr)
        else:
            upgrade(revision="heads")
            started = time.perf_counter()
            counts = build(db, args.cis)
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            print(f"estate built in {time.perf_counter() - started:.0f} s: {counts}", file=sys.stderr)
        admin = db.session.scalar(db.select(User).where(User.email == "bench@example.com"))
        admin = admin or create_user("bench@example.com", "asset_manager")
        _, secret = create_token(admin)
        db.session.commit()
        db.session.remove()
    print(f"timing on {args.db}, p50 of {args.runs} runs (+1 warm-up), Flask test client", file=sys.stderr)
    results = measure(app, {"Authorization": f"Bearer {secret}"}, args.runs, args.only)
    before = None
    if args.before:
        before = {r["label"]: r["p50"] for r in json.loads(Path(args.before).read_text())}
    table(results, before)
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
