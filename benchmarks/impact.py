"""Impact benchmark: a synthetic layered estate at 10k CIs / 40k relationships and 100k / 400k,
on SQLite and PostgreSQL, and the figures issue 3 asks for.

    .venv/bin/python benchmarks/impact.py                       # both sizes, both databases
    .venv/bin/python benchmarks/impact.py --sizes 10k --dbs sqlite
    .venv/bin/python benchmarks/impact.py --reuse               # keep an estate built earlier

How the estate is built: through the service layer. CIs: ``cmdb.services.create_ci`` one by one at
10k; at 100k a bulk INSERT into the ``ci`` table (same columns, no change-log rows for the CIs).
Relationships: ``relations.services.bulk_create_relationships`` at both sizes (the same checks as
``create_relationship``, in bulk; one change-log row and two change_log_ci rows per relationship).

Printed per database and size: estate build time; cold graph build time and its memory (RSS delta
in a fresh process); the time until a relationship committed by one process is in the impact
answer of another (and the refresh cost itself); the service's own computation and HTTP p50/p95
(a gunicorn worker, client side, full JSON) for a high-fan-in CI (~5,000 impacted) and a mid-level
one (~15); the recursive CTE answering the same question (ids and depths) with the covering
indexes, as a ratio to the service's computation.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORK = Path(os.environ.get("CAIRN_BENCH_DIR", Path(tempfile.gettempdir()) / "cairn-bench"))
PG_ADMIN = os.environ.get("CAIRN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SIZES = {"5k": (5_000, 20_000), "10k": (10_000, 40_000), "100k": (100_000, 400_000), "1m": (1_000_000, 4_000_000)}
SEED = 20240601

# kind -> (CI class, layer, share of the estate)
KINDS = [
    ("business_service", "business_service", 0, 0.003),
    ("application", "application", 1, 0.020),
    ("app_instance", "application", 2, 0.220),
    ("database", "database", 2, 0.060),
    ("shared_service", "load_balancer", 2, 0.005),
    ("vm", "virtual_machine", 3, 0.250),
    ("container", "container", 3, 0.370),
    ("hypervisor", "server", 4, 0.050),
    ("cluster", "cluster", 4, 0.050 / 16),
    ("storage", "storage", 4, 0.005),
    ("rack", "rack", 5, 0.005),
    ("switch", "network_switch", 5, 0.006),
    ("pdu", "pdu", 6, 0.001),
    ("ups", "ups", 7, 0.0001),
]
MIN_COUNT = {"business_service": 3, "application": 10, "shared_service": 3, "hypervisor": 16, "cluster": 1,
             "storage": 2, "rack": 4, "pdu": 4, "ups": 2}  # fmt: skip


# ------------------------------------------------------------------------------------ generator
def generate(size: str, seed: int = SEED):
    """CIs as (kind, class) and edges as (dependent, dependency, type): a layered estate where ~20%
    of the edges are cross-layer links biased to popular CIs (as research/graphbench.py)."""
    n_total, e_total = SIZES[size]
    rng = random.Random(seed)
    cnt = {k: max(MIN_COUNT.get(k, 1), round(f * n_total)) for k, _, _, f in KINDS}
    cnt["switch"] = max(cnt["switch"], cnt["rack"] + 6)
    cnt["cluster"] = (cnt["hypervisor"] + 15) // 16
    cnt["container"] += n_total - sum(cnt.values())
    start, off = {}, 0
    for k, _, _, _ in KINDS:
        start[k] = off
        off += cnt[k]
    cis = [(k, cls) for k, cls, _, _ in KINDS for _ in range(cnt[k])]
    layer_of = [layer for k, _, layer, _ in KINDS for _ in range(cnt[k])]
    edges: dict[tuple[int, int], str] = {}

    def add(dk, d, tk, t, type_):
        a, b = start[dk] + d, start[tk] + t
        if a != b and (a, b) not in edges:
            edges[(a, b)] = type_

    def skew(m, alpha):
        return min(int(m * rng.random() ** alpha), m - 1)

    B, A, NI, DB, SH = (
        cnt[k] for k in ("business_service", "application", "app_instance", "database", "shared_service")
    )
    V, C, H, CL, ST = (cnt[k] for k in ("vm", "container", "hypervisor", "cluster", "storage"))
    R, S, P, U = (cnt[k] for k in ("rack", "switch", "pdu", "ups"))
    for p in range(P):
        add("pdu", p, "ups", p % U, "powered_by")
    for r in range(R):
        add("rack", r, "pdu", r % P, "powered_by")
        add("rack", r, "pdu", (r + 1) % P, "powered_by")
    n_agg = S - R
    n_core = max(2, n_agg // 5)
    n_nc = n_agg - n_core
    for r in range(R):  # switch r is the top-of-rack switch of rack r
        add("switch", r, "rack", r, "contains")
        add("switch", r, "switch", R + r % n_nc, "connected_to")
        add("switch", r, "switch", R + (r + 1) % n_nc, "connected_to")
    for j in range(n_nc):
        add("switch", R + j, "switch", R + n_nc + j % n_core, "connected_to")
        add("switch", R + j, "switch", R + n_nc + (j + 1) % n_core, "connected_to")
        add("switch", R + j, "rack", (j * R) // n_nc, "contains")
    for j in range(n_core):
        add("switch", R + n_nc + j, "rack", (j * R) // n_core, "contains")
    for s in range(ST):
        rack = (s * R) // ST
        add("storage", s, "rack", rack, "contains")
        add("storage", s, "switch", rack, "connected_to")
    host_rack = [(h * R) // H for h in range(H)]
    for h in range(H):
        add("hypervisor", h, "rack", host_rack[h], "contains")
        add("hypervisor", h, "switch", host_rack[h], "connected_to")
        add("hypervisor", h, "switch", R + host_rack[h] % n_nc, "connected_to")
        add("hypervisor", h, "storage", (h // 16) % ST, "depends_on")
        add("cluster", h // 16, "hypervisor", h, "member_of")
    host_of_vm = [rng.randrange(H) for _ in range(V)]
    for v in range(V):
        add("vm", v, "hypervisor", host_of_vm[v], "runs_on")
        add("vm", v, "storage", (host_of_vm[v] // 16) % ST, "depends_on")
        add("vm", v, "switch", host_rack[host_of_vm[v]], "depends_on")
    n_worker = max(1, V // 5)
    for c in range(C):
        add("container", c, "vm", rng.randrange(n_worker), "runs_on")
        if rng.random() < 0.3:
            add("container", c, "storage", skew(ST, 2), "depends_on")
        add("container", c, "shared_service", skew(SH, 3), "uses")
    for d in range(DB):
        add("database", d, "vm", rng.randrange(n_worker, V), "runs_on")
        add("database", d, "storage", skew(ST, 2), "depends_on")
        add("application", skew(A, 1.5), "database", d, "uses")
    for s in range(SH):
        add("shared_service", s, "vm", rng.randrange(n_worker, V), "depends_on")
        add("shared_service", s, "vm", rng.randrange(n_worker, V), "depends_on")
    for i in range(NI):
        add("application", skew(A, 1.5), "app_instance", i, "depends_on")
        if rng.random() < 0.6:
            add("app_instance", i, "container", rng.randrange(C), "runs_on")
        else:
            add("app_instance", i, "vm", rng.randrange(n_worker, V), "runs_on")
        if rng.random() < 0.8:
            add("app_instance", i, "database", skew(DB, 2), "uses")
        add("app_instance", i, "shared_service", skew(SH, 3), "uses")
        add("app_instance", i, "shared_service", skew(SH, 3), "uses")
    for a in range(A):
        b = skew(A, 2)
        if b < a:
            add("application", a, "application", b, "uses")
        add("application", a, "shared_service", skew(SH, 3), "uses")
    for b in range(B):
        for _ in range(10):
            add("business_service", b, "application", skew(A, 1.5), "uses")
    for _ in range(max(2, n_total // 5000)):  # mutually dependent applications, replicated databases
        a, b = rng.sample(range(A), 2)
        add("application", a, "application", b, "uses")
        add("application", b, "application", a, "uses")
        a, b = rng.sample(range(DB), 2)
        add("database", a, "database", b, "depends_on")
        add("database", b, "database", a, "depends_on")
    # Fill up to the budget with cross-layer links (1-3 layers down, skewed to popular CIs).
    lstart, lcount = {}, {}
    for k, _, layer, _ in KINDS:
        lstart.setdefault(layer, start[k])
        lcount[layer] = lcount.get(layer, 0) + cnt[k]
    top = lstart[5]
    while len(edges) < e_total:
        s = rng.randrange(top)
        tl = min(layer_of[s] + rng.choices((1, 2, 3), (6, 3, 1))[0], 6)
        t = lstart[tl] + min(int(lcount[tl] * rng.random() ** 1.5), lcount[tl] - 1)
        if s != t and (s, t) not in edges:
            edges[(s, t)] = "depends_on"
    return cis, edges, cnt, start


# ------------------------------------------------------------------------------------ helpers
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def database_url(db: str, size: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{WORK / f'bench_{size}.db'}"
    return PG_ADMIN.rsplit("/", 1)[0] + f"/cairn_bench_{size}"


def make_app(url: str):
    from cairn.app import create_app
    from cairn.config import Config

    return create_app(
        Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=WORK / "instance", LOG_LEVEL="WARNING", REDIS_URL=None)
    )


def fresh_database(db: str, size: str) -> str:
    from sqlalchemy import create_engine, text

    url = database_url(db, size)
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(url[len("sqlite:///") :] + suffix).unlink(missing_ok=True)
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS cairn_bench_{size} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE cairn_bench_{size}"))
        admin.dispose()
    return url


# ------------------------------------------------------------------------------------ build
def build_estate(db: str, size: str) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from cairn.audit.context import Actor, acting_as
    from cairn.db import db as sa_db
    from cairn.db import utcnow
    from cmdb.models import ConfigurationItem
    from cmdb.services import create_ci
    from relations.services import bulk_create_relationships
    from relations.types import BUILTIN_TYPES, SOURCE_DEPENDS_ON_TARGET

    url = fresh_database(db, size)
    app = make_app(url)
    forward = {t["name"] for t in BUILTIN_TYPES if t["impact"] == SOURCE_DEPENDS_ON_TARGET}
    cis, edges, cnt, start = generate(size)
    timings = {}
    with app.app_context(), acting_as(Actor("benchmark")):
        upgrade(revision="heads")
        sa_db.create_all()  # tables of work in progress elsewhere that has no migration yet
        t0 = time.perf_counter()
        ids: list[int] = []
        if size == "10k":
            for i, (kind, cls) in enumerate(cis):
                attributes = {"min_members_up": 12} if cls == "cluster" else {}
                ci = create_ci({"name": f"{kind}-{i}", "ci_class": cls, "status": "deployed", "attributes": attributes})
                ids.append(ci.id)
                if i % 2000 == 1999:
                    sa_db.session.commit()
            sa_db.session.commit()
        else:
            now = utcnow()
            rows = [
                {
                    "name": f"{kind}-{i}", "ci_class": cls, "status": "deployed", "criticality": "medium",
                    "vendor": "", "description": "", "version": 1, "created_at": now, "updated_at": now,
                    "attributes": {"min_members_up": 12} if cls == "cluster" else {},
                }
                for i, (kind, cls) in enumerate(cis)
            ]  # fmt: skip
            table = ConfigurationItem.__table__
            for s in range(0, len(rows), 10_000):
                ids.extend(
                    sa_db.session.execute(
                        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows[s : s + 10_000]
                    ).scalars()
                )
            sa_db.session.commit()
        timings["cis_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        items = []
        for (a, b), type_ in edges.items():
            src, dst = (a, b) if type_ in forward else (b, a)
            items.append({"source_id": ids[src], "target_id": ids[dst], "type": type_})
        random.Random(SEED).shuffle(items)
        if size == "1m":
            # 4M relationships through the service's checks and change log take the better part of an
            # hour on this machine; what the graph is built from is the rows, so at 1M they go in as
            # plain INSERTs (the load's own rate through the API is benchmarks/bulk_load.py's figure).
            _insert_relationships(sa_db.session, items, utcnow())
        for s in range(0, len(items) if size != "1m" else 0, 20_000):
            bulk_create_relationships(items[s : s + 20_000])
            sa_db.session.commit()
        timings["relationships_s"] = time.perf_counter() - t0
        with sa_db.engine.connect() as conn:
            if db == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
                conn.commit()
    meta = {"cis": len(cis), "relationships": len(edges), "counts": cnt, **timings,
            "kinds": {k: [ids[start[k]], ids[start[k] + cnt[k] - 1]] for k in cnt}}  # fmt: skip
    (WORK / f"meta_{db}_{size}.json").write_text(json.dumps(meta))
    return meta


def _insert_relationships(session, items: list[dict], now) -> None:
    from sqlalchemy import insert

    from relations.graph import bump_version
    from relations.models import Relationship

    table = Relationship.__table__
    fixed = {"note": "", "valid_from": now, "valid_to": None, "version": 1, "created_at": now, "updated_at": now}
    for s in range(0, len(items), 50_000):
        rows = [{**item, **fixed} for item in items[s : s + 50_000]]
        session.execute(insert(table), rows)
        session.commit()
    bump_version(session.connection())
    session.commit()


# ------------------------------------------------------------------------------------ reader side
# LATERAL makes PostgreSQL probe the covering indexes once per reached CI (a join against a UNION
# ALL subquery was planned as a hash join over the whole table at every step: 10-80× slower).
CTE_PG = """
WITH RECURSIVE walk(id, depth) AS (
    SELECT CAST(:root AS INTEGER), 0
    UNION
    SELECT e.dependent, w.depth + 1 FROM walk w CROSS JOIN LATERAL (
        SELECT r.source_id AS dependent FROM relationship r
         WHERE r.target_id = w.id AND r.valid_to IS NULL AND r.type IN ({fwd})
        UNION ALL
        SELECT r.target_id FROM relationship r
         WHERE r.source_id = w.id AND r.valid_to IS NULL AND r.type IN ({rev})
    ) e
    WHERE w.depth < :maxd
)
SELECT id, min(depth) FROM walk WHERE id <> :root GROUP BY id
"""
CTE_SQLITE = """
WITH RECURSIVE walk(id, depth) AS (
    SELECT :root, 0
    UNION
    SELECT r.source_id, w.depth + 1 FROM walk w JOIN relationship r INDEXED BY ix_relationship_target
        ON r.target_id = w.id
     WHERE w.depth < :maxd AND r.valid_to IS NULL AND r.type IN ({fwd})
    UNION
    SELECT r.target_id, w.depth + 1 FROM walk w JOIN relationship r INDEXED BY ix_relationship_source
        ON r.source_id = w.id
     WHERE w.depth < :maxd AND r.valid_to IS NULL AND r.type IN ({rev})
)
SELECT id, min(depth) FROM walk WHERE id <> :root GROUP BY id
"""


def reader(db: str, size: str, repeats: int) -> dict:
    """Runs in a fresh process: cold build, service vs CTE, visibility of another process's write."""
    from sqlalchemy import text

    from cairn.db import db as sa_db
    from relations import answers, services
    from relations.graph import live_graph
    from relations.impact import propagate
    from relations.types import BUILTIN_TYPES, SOURCE_DEPENDS_ON_TARGET

    meta = json.loads((WORK / f"meta_{db}_{size}.json").read_text())
    url = database_url(db, size)
    app = make_app(url)
    out: dict = {}
    with app.app_context():
        sa_db.session.execute(text("SELECT 1"))
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        with live_graph() as graph:
            pass
        out["cold_build_s"] = time.perf_counter() - t0
        out["graph_rss_mb"] = rss_mb() - before
        out["process_rss_mb"] = rss_mb()
        out["nodes"], out["edges"] = graph.G.number_of_nodes(), graph.G.number_of_edges()
        sa_db.session.rollback()

        # Query CIs: a hypervisor or switch with ~5,000 impacted, a VM with ~15.
        rng = random.Random(SEED + 1)
        kinds = meta["kinds"]

        def sample(kind, n):
            lo, hi = kinds[kind]
            return [rng.randint(lo, hi) for _ in range(n)]

        def count(ci):
            return len(propagate(graph, [ci]).state) - 1

        candidates = sample("hypervisor", 40) + sample("switch", 40)
        # ~5,000 impacted at 100k; at 1M, a core switch's ~50,000 (issue 16)
        high = min(candidates, key=lambda c: abs(count(c) - (50_000 if size == "1m" else 5000)))
        mids = sample("vm", 200)
        mid = min(mids, key=lambda c: abs(count(c) - 15))
        out["queries"] = {}
        fwd = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] == SOURCE_DEPENDS_ON_TARGET)
        rev = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] != SOURCE_DEPENDS_ON_TARGET)
        cte = text((CTE_PG if db == "postgresql" else CTE_SQLITE).format(fwd=fwd, rev=rev))
        for label, ci in (("high", high), ("mid", mid)):
            service_times, traverse_times, cached_times = [], [], []
            result = None
            for _ in range(repeats):
                answers.forget()  # the computation itself, not the per-process answer cache
                t0 = time.perf_counter()
                result = services.impact([ci])
                service_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
                t0 = time.perf_counter()
                services.impact([ci])
                cached_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
                with live_graph() as g:
                    t0 = time.perf_counter()
                    propagate(g, [ci])
                    traverse_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
            enrich_times, document_times = [], []
            for _ in range(max(3, repeats // 3)):
                t0 = time.perf_counter()
                services.enrich(result)
                enrich_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
                t0 = time.perf_counter()
                json.dumps(services.impact_document(result, single_root=True), separators=(",", ":"))
                document_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
            bodies = answer_bodies(ci, max(3, repeats // 3))
            ours = {i.ci_id: i.depth for i in result.impacted}
            bfs_depth = {n: d for n, d in _plain_bfs(graph, ci).items()}
            maxd = max(bfs_depth.values(), default=1)
            cte_times = []
            rows = []
            for _ in range(max(3, repeats // 4)):
                t0 = time.perf_counter()
                rows = sa_db.session.execute(cte, {"root": ci, "maxd": maxd}).all()
                cte_times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
            cte_answer = dict(rows)
            out["queries"][label] = {
                "ci": ci,
                "impacted": len(ours),
                "down": sum(1 for i in result.impacted if i.state == "down"),
                "max_depth": maxd,
                "service_p50_ms": statistics.median(service_times) * 1000,
                "service_p95_ms": pct(service_times, 95) * 1000,
                "service_cached_p50_ms": statistics.median(cached_times) * 1000,
                **bodies,
                "traversal_p50_ms": statistics.median(traverse_times) * 1000,
                "enrichers_p50_ms": statistics.median(enrich_times) * 1000,
                "document_json_p50_ms": statistics.median(document_times) * 1000,
                "cte_p50_ms": statistics.median(cte_times) * 1000,
                "cte_same_ids": set(cte_answer) == set(ours),
                "cte_same_depths_as_bfs": cte_answer == bfs_depth,
                "depths_differ_from_bfs": sum(1 for n, d in ours.items() if bfs_depth.get(n) != d),
                "cte_over_service": statistics.median(cte_times) / statistics.median(service_times),
            }
        out["visibility"] = visibility(db, size, meta, graph)
    return out


def answer_bodies(ci: int, repeats: int) -> dict:
    """The HTTP bodies (impact_answer, written with orjson as the route does) of the whole list, a
    page of 100 and the summary: from a cold cache (the traversal included), then from the cache."""
    import orjson

    from cairn.db import db as sa_db
    from relations import answers, services

    out = {}
    for label, kwargs in (("full", {}), ("page", {"page": 1, "page_size": 100}), ("summary", {"summary": True})):
        for cold in (True, False):
            times = []
            for _ in range(repeats):
                if cold:
                    answers.forget()
                t0 = time.perf_counter()
                orjson.dumps(services.impact_answer([ci], single_root=True, **kwargs))
                times.append(time.perf_counter() - t0)
                sa_db.session.rollback()
            out[f"body_{label}_{'cold' if cold else 'cached'}_p50_ms"] = statistics.median(times) * 1000
    return out


def _plain_bfs(graph, root):
    pred = graph.G._pred
    depth = {root: 0}
    frontier = [root]
    d = 0
    while frontier:
        d += 1
        nxt = []
        for n in frontier:
            for p in pred.get(n, ()):
                if p not in depth:
                    depth[p] = d
                    nxt.append(p)
        frontier = nxt
    del depth[root]
    return depth


def visibility(db: str, size: str, meta: dict, graph, rounds: int = 20) -> dict:
    """A writer process commits one relationship; this process's next impact query must show it."""
    from cairn.db import db as sa_db
    from relations import services

    writer = subprocess.Popen(
        [sys.executable, __file__, "_writer", db, size],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert writer.stdout.readline().strip() == "ready"
    seen_ms, refresh_ms, tries = [], [], []
    for _ in range(rounds):
        writer.stdin.write("go\n")
        writer.stdin.flush()
        committed_at, source, target = writer.stdout.readline().split()
        source, target = int(source), int(target)
        n = 0
        while True:
            n += 1
            result = services.impact([target], max_depth=1)
            sa_db.session.rollback()
            if any(i.ci_id == source for i in result.impacted):
                break
        seen_ms.append((time.perf_counter() - float(committed_at)) * 1000)
        refresh_ms.append(graph.stats["last_refresh_s"] * 1000)
        tries.append(n)
    writer.stdin.write("stop\n")
    writer.stdin.flush()
    writer.wait(timeout=30)
    return {
        "seen_p50_ms": statistics.median(seen_ms),
        "seen_max_ms": max(seen_ms),
        "refresh_p50_ms": statistics.median(refresh_ms),
        "refresh_max_ms": max(refresh_ms),
        "queries_until_seen_max": max(tries),
        "rebuilds": graph.stats["rebuilds"],
    }


def writer_main(db: str, size: str) -> None:
    from cairn.db import db as sa_db
    from relations.services import create_relationship

    meta = json.loads((WORK / f"meta_{db}_{size}.json").read_text())
    app = make_app(database_url(db, size))
    rng = random.Random(time.time())
    with app.app_context():
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            source = rng.randint(*meta["kinds"]["business_service"])
            target = rng.randint(*meta["kinds"]["vm"])
            create_relationship({"source_id": source, "type": "depends_on", "target_id": target})
            sa_db.session.commit()
            print(f"{time.perf_counter()} {source} {target}", flush=True)


# ------------------------------------------------------------------------------------ HTTP
def http_figures(db: str, size: str, queries: dict, repeats: int) -> dict:
    import httpx

    from cairn.auth.services import create_token, create_user
    from cairn.db import db as sa_db

    url = database_url(db, size)
    app = make_app(url)
    with app.app_context():
        user = create_user(f"bench-{time.time_ns()}@example.com", "admin", "Bench")
        _, token = create_token(user, "bench")
        sa_db.session.commit()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "CAIRN_INSTANCE_PATH": str(WORK / "instance"),
           "CAIRN_LOG_LEVEL": "WARNING", "SECRET_KEY": "bench"}  # fmt: skip
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", "1", "--timeout", "300", "-b", f"127.0.0.1:{port}",
         "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = {}
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        for label, q in queries.items():
            first = client.get(f"/api/v1/cis/{q['ci']}/impact", timeout=300)  # warms the graph
            assert first.status_code == 200, first.text
            times, sizes = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = client.get(f"/api/v1/cis/{q['ci']}/impact")
                times.append(time.perf_counter() - t0)
                sizes.append(len(r.content))
                assert r.json()["count"] == q["impacted"]
            out[label] = {
                "http_p50_ms": statistics.median(times) * 1000,
                "http_p95_ms": pct(times, 95) * 1000,
                "body_kb": statistics.median(sizes) / 1024,
            }
            for variant, query in (("summary", {"summary": "true"}), ("page", {"page": 1, "page_size": 100})):
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    r = client.get(f"/api/v1/cis/{q['ci']}/impact", params=query)
                    times.append(time.perf_counter() - t0)
                    assert r.json()["count"] == q["impacted"]
                out[label][f"http_{variant}_p50_ms"] = statistics.median(times) * 1000
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


# ------------------------------------------------------------------------------------ main
def run(db: str, size: str, reuse: bool, repeats: int) -> dict:
    meta_path = WORK / f"meta_{db}_{size}.json"
    if reuse and meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        print(f"[{db} {size}] building the estate ...", flush=True)
        meta = json.loads(
            subprocess.run(
                [sys.executable, __file__, "_build", db, size], check=True, capture_output=True, text=True
            ).stdout.splitlines()[-1]
        )
    print(f"[{db} {size}] measuring ...", flush=True)
    proc = subprocess.run([sys.executable, __file__, "_reader", db, size, str(repeats)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    figures = json.loads(proc.stdout.splitlines()[-1])
    figures["build"] = {k: meta[k] for k in ("cis", "relationships", "cis_s", "relationships_s") if k in meta}
    figures["http"] = http_figures(db, size, figures["queries"], repeats)
    (WORK / f"result_{db}_{size}.json").write_text(json.dumps(figures, indent=2))
    return figures


def report(results: dict) -> None:
    def q(label, key, fmt=".1f"):
        return lambda f: format(f["queries"][label][key], fmt)

    def h(label, fmt=".1f"):
        return lambda f: f"{f['http'][label]['http_p50_ms']:{fmt}} / {f['http'][label]['http_p95_ms']:{fmt}} ms"

    def b(label, body):
        return lambda f: f"{q(label, f'body_{body}_cold_p50_ms')(f)} / {q(label, f'body_{body}_cached_p50_ms')(f)}"

    def v(key_p50, key_max, fmt):
        return lambda f: f"{f['visibility'][key_p50]:{fmt}} / {f['visibility'][key_max]:{fmt}} ms"

    rows = [
        ("estate: CIs / relationships", lambda f: f"{f['build']['cis']:,} / {f['build']['relationships']:,}", ""),
        ("estate build: CIs + relationships",
         lambda f: f"{f['build']['cis_s']:.0f} s + {f['build']['relationships_s']:.0f} s", ""),
        ("cold graph build", lambda f: f"{f['cold_build_s']:.2f} s", "≤ 5 s"),
        ("graph memory: RSS delta / process RSS",
         lambda f: f"{f['graph_rss_mb']:.0f} / {f['process_rss_mb']:.0f} MB", ""),
        ("write in one process, seen by the other: p50 / max", v("seen_p50_ms", "seen_max_ms", ".1f"), "next query"),
        ("refresh after one write: p50 / max", v("refresh_p50_ms", "refresh_max_ms", ".2f"), "≤ 5 ms"),
        ("high-fan-in CI: impacted (down)",
         lambda f: f"{f['queries']['high']['impacted']:,} ({f['queries']['high']['down']:,})", "~5,000"),
        ("high: HTTP p50 / p95", h("high"), "p50 ≤ 50 ms"),
        ("high: service p50 ms (traversal alone)",
         lambda f: f"{q('high', 'service_p50_ms')(f)} ({q('high', 'traversal_p50_ms')(f)})", ""),
        ("high: JSON document incl. enrichers p50 ms (enrichers alone)",
         lambda f: f"{q('high', 'document_json_p50_ms')(f)} ({q('high', 'enrichers_p50_ms')(f)})", ""),
        ("high: service from the answer cache p50 ms", q("high", "service_cached_p50_ms", ".2f"), ""),
        ("high: body p50 ms, cold / cached: whole list", b("high", "full"), ""),
        ("high: body p50 ms, cold / cached: page of 100", b("high", "page"), ""),
        ("high: body p50 ms, cold / cached: summary", b("high", "summary"), ""),
        ("high: HTTP p50, summary / page of 100",
         lambda f: f"{f['http']['high']['http_summary_p50_ms']:.1f} / {f['http']['high']['http_page_p50_ms']:.1f} ms",
         ""),
        ("high: recursive CTE p50 ms", q("high", "cte_p50_ms"), ""),
        ("high: CTE / service", q("high", "cte_over_service"), "≥ 3"),
        ("mid-level CI: impacted", q("mid", "impacted", ","), "~15"),
        ("mid: HTTP p50 / p95", h("mid"), "p50 ≤ 10 ms"),
        ("mid: service p50 ms", q("mid", "service_p50_ms", ".2f"), ""),
        ("mid: recursive CTE p50 ms", q("mid", "cte_p50_ms", ".2f"), ""),
        ("mid: CTE / service", q("mid", "cte_over_service"), "≥ 3"),
        ("CTE agrees: ids, depths vs plain BFS (high / mid)",
         lambda f: " / ".join(f"{x['cte_same_ids']}, {x['cte_same_depths_as_bfs']}" for x in f["queries"].values()),
         ""),
    ]  # fmt: skip
    keys = list(results)
    print()
    print("| figure | " + " | ".join(f"{db} {size}" for db, size in keys) + " | target |")
    print("|---|" + "---|" * len(keys) + "---|")
    for label, fmt, target in rows:
        cells = []
        for key in keys:
            try:
                cells.append(fmt(results[key]))
            except (KeyError, TypeError):
                cells.append("–")
        print(f"| {label} | " + " | ".join(cells) + f" | {target} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        command, db, size, *rest = sys.argv[1:]
        WORK.mkdir(parents=True, exist_ok=True)
        if command == "_build":
            print(json.dumps(build_estate(db, size)))
        elif command == "_reader":
            print(json.dumps(reader(db, size, int(rest[0]))))
        elif command == "_writer":
            writer_main(db, size)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--dbs", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep estates built by an earlier run")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = {}
    for size in args.sizes.split(","):
        for db in args.dbs.split(","):
            results[(db, size)] = run(db, size, args.reuse, args.repeats)
    report(results)


def report_saved(keys) -> None:
    """Print the table from result files of earlier runs."""
    report({(db, size): json.loads((WORK / f"result_{db}_{size}.json").read_text()) for db, size in keys})


if __name__ == "__main__":
    main()
