"""Custom field filters and sorts on a large CI table (issue 18): p50/p95 of GET /cis with a
``cf_`` filter and a ``cf_`` sort, beside a built-in column filter and sort as the reference.

    .venv/bin/python benchmarks/custom_fields.py                  # 100,000 CIs on PostgreSQL
    .venv/bin/python benchmarks/custom_fields.py --cis 20000 --requests 100 --keep

A scratch PostgreSQL database is migrated; two fields are defined through the service (pci_scope,
boolean, true on 10% of the servers; rack_unit, integer 1..60); --cis CIs are inserted with Core
(a third servers, the rest in other classes) and the table vacuumed and analysed. Each query then runs
--requests times through the app in this process (the Flask test client: the server's time, no
network), the first few discarded as warm-up. Target: a cf_ filter p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

from scratch import drop_database, fresh_database  # noqa: E402

TARGET_P95_MS = 50.0
CLASSES = ["server", "virtual_machine", "laptop"]
QUERIES = (
    ("built-in filter status=deployed", "status=deployed"),
    ("built-in filter + sort ci_class=server&sort=-created_at", "ci_class=server&sort=-created_at"),
    ("cf filter cf_pci_scope=true", "cf_pci_scope=true"),
    ("cf filter cf_rack_unit=17", "cf_rack_unit=17"),
    ("cf filter + class cf_pci_scope=true&ci_class=server", "cf_pci_scope=true&ci_class=server"),
    ("cf sort ci_class=server&sort=cf_rack_unit", "ci_class=server&sort=cf_rack_unit"),
)


def load(app, count: int) -> dict:
    """Define the fields, insert ``count`` CIs, analyse; returns the admin's auth headers."""
    from sqlalchemy import insert, text

    from cairn.auth.services import create_token, create_user
    from cairn.db import db, utcnow
    from cmdb.custom_fields.services import create_definition
    from cmdb.models import ConfigurationItem

    with app.app_context():
        user = create_user("bench@example.com", "admin", "Bench")
        _, token = create_token(user, "bench")
        for body in (
            {"name": "pci_scope", "label": "PCI scope", "type": "boolean", "applies_to": {"ci_classes": ["server"]}},
            {"name": "rack_unit", "label": "Rack unit", "type": "integer", "applies_to": {"ci_classes": ["server"]}},
        ):
            create_definition(body)
        db.session.commit()
        rng = random.Random(18)
        now = utcnow()
        table = ConfigurationItem.__table__
        for start in range(0, count, 5000):
            rows = []
            for i in range(start, min(count, start + 5000)):
                ci_class = CLASSES[i % 3]
                values = {}
                if ci_class == "server":
                    values = {"pci_scope": rng.random() < 0.1, "rack_unit": rng.randint(1, 60)}
                rows.append(
                    {
                        "name": f"host-{i:07d}", "ci_class": ci_class, "status": rng.choice(["deployed", "in_stock"]),
                        "criticality": "medium", "vendor": "", "description": "", "attributes": {},
                        "custom_fields": values, "version": 1, "created_at": now, "updated_at": now,
                    }
                )  # fmt: skip
            db.session.execute(insert(table), rows)
            db.session.commit()
        db.session.commit()
        # The steady state autovacuum keeps: statistics, and the GIN index's pending list merged
        # (right after a load its entries sit in a list each scan reads whole).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE ci"))
        return {"Authorization": f"Bearer {token}"}


def measure(client, headers: dict, query: str, requests: int) -> tuple[float, float, int]:
    timings = []
    total = 0
    for n in range(requests + 5):
        started = time.perf_counter()
        response = client.get(f"/api/v1/cis?{query}", headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{query}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        total = response.json and int(response.headers["X-Pagination"].split('"total": ')[1].split(",")[0])
        if n >= 5:
            timings.append(elapsed)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1], total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.config import Config

    name = "cairn_bench_custom_fields"
    url = fresh_database(name)
    try:
        with tempfile.TemporaryDirectory() as instance:
            app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=Path(instance), LOG_LEVEL="WARNING"))
            with app.app_context():
                upgrade(revision="heads")
            started = time.perf_counter()
            headers = load(app, args.cis)
            print(f"loaded {args.cis:,} CIs in {time.perf_counter() - started:.1f} s")
            with app.app_context():
                from sqlalchemy import text

                from cairn.db import db

                plan = db.session.execute(
                    text("EXPLAIN SELECT count(*) FROM ci WHERE custom_fields @> CAST(:v AS jsonb)"),
                    {"v": '{"rack_unit": 17}'},
                ).scalars()
                print("cf filter plan uses the GIN index:", any("ix_ci_custom_fields" in line for line in plan))
            client = app.test_client()
            print(f"{'query':58} {'matches':>8} {'p50 ms':>8} {'p95 ms':>8}")
            for label, query in QUERIES:
                p50, p95, total = measure(client, headers, query, args.requests)
                mark = (
                    "" if not label.startswith("cf filter") else ("  ok" if p95 <= TARGET_P95_MS else "  OVER TARGET")
                )
                print(f"{label:58} {total:>8,} {p50:>8.1f} {p95:>8.1f}{mark}")
            with app.app_context():
                from cairn.db import db

                db.engine.dispose()
    finally:
        if not args.keep:
            drop_database(name)


if __name__ == "__main__":
    main()
