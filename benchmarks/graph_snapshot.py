"""Graph snapshot benchmark (issue 16 part 2, fast cold start), on PostgreSQL: a process's first
impact query by rebuilding the graph from the tables vs by restoring it from the snapshot file, and
what writing the snapshot costs.

    .venv/bin/python benchmarks/graph_snapshot.py                   # 100k CIs / 400k relationships
    .venv/bin/python benchmarks/graph_snapshot.py --sizes 10k,100k
    .venv/bin/python benchmarks/graph_snapshot.py --reuse           # keep an estate built earlier

The estate is the impact benchmark's (``benchmarks/impact.py``: ``generate`` and ``build_estate``,
imported), built into a scratch database of its own (``cairn_bench_snapshot_<size>``). Every figure
comes from a fresh process, as a cold start would:

- rebuild: the first ``live_graph()`` with snapshots off (what every process paid before);
- write: the same with snapshots on and no file yet: what the first query waits, then the writer
  thread (copying the graph, during which increments wait; encoding; writing), and the file's size;
- restore: the first ``live_graph()`` with the snapshot there, and how much of it is reading and
  decoding the file; the restored graph is compared with a rebuild, structurally;
- restore + catch-up: the same after 1,000 relationships were written since the snapshot.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import impact  # noqa: E402  (benchmarks/impact.py: the estate generator and builder)
import scratch  # noqa: E402

WORK = Path(os.environ.get("CAIRN_BENCH_DIR", Path(tempfile.gettempdir()) / "cairn-bench-snapshot"))
DB_PREFIX = "cairn_bench_snapshot_"
CATCH_UP_RELATIONSHIPS = 1_000


def database_url(size: str) -> str:
    return scratch.PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_PREFIX}{size}"


def _use_own_database() -> None:
    """Point the impact benchmark's builder at our scratch database and work directory."""
    impact.WORK = WORK
    impact.database_url = lambda db, size: database_url(size)
    impact.fresh_database = lambda db, size: scratch.fresh_database(f"{DB_PREFIX}{size}")


def make_app(size: str, snapshots: bool):
    from cairn.app import create_app
    from cairn.config import Config

    return create_app(
        Config(
            SQLALCHEMY_DATABASE_URI=database_url(size),
            INSTANCE_PATH=WORK / "instance",
            LOG_LEVEL="WARNING",
            REDIS_URL=None,
            CAIRN_GRAPH_SNAPSHOT_DIR=str(WORK / "snapshots") if snapshots else "off",
        )
    )


def structure(graph) -> tuple:
    return (
        {(u, v): dict(d) for u, v, d in graph.G.edges(data=True)},
        {(u, v): dict(d) for u, v, d in graph.passive.edges(data=True)},
        {n: dict(d) for n, d in graph.G.nodes(data=True)},
        set(graph.member_targets),
        set(graph.inactive),
        dict(graph.types),
    )


# ------------------------------------------------------------------------------------ phases
def phase(name: str, size: str) -> dict:
    """One measurement, in this (fresh) process."""
    from sqlalchemy import text

    from cairn.db import db
    from relations import snapshot
    from relations.graph import LiveGraph, live_graph

    app = make_app(size, snapshots=name in ("restore", "write"))
    out: dict = {}
    with app.app_context():
        db.session.execute(text("SELECT 1"))  # connect outside the timing
        db.session.rollback()
        gc.collect()
        rss = impact.rss_mb()
        if name == "rebuild":
            started = time.perf_counter()
            with live_graph() as graph:
                pass
            out["seconds"] = time.perf_counter() - started
            out["rss_mb"] = impact.rss_mb() - rss
            out["nodes"], out["edges"] = graph.G.number_of_nodes(), graph.G.number_of_edges()
        elif name == "write":  # a cold start that rebuilds with snapshots on: the production path
            from relations.graph import snapshot_target

            path, _ = snapshot_target()
            path.unlink(missing_ok=True)
            started = time.perf_counter()
            with live_graph() as graph:
                pass
            out["seconds"] = time.perf_counter() - started  # what the first query waits
            graph.wait_for_snapshot()
            assert graph.stats["rebuilds"] == 1 and graph.stats["snapshot_writes"] == 1, graph.stats
            out["copy_s"] = graph.stats["last_snapshot_copy_s"]
            out["write_s"] = graph.stats["last_snapshot_write_s"]  # the writer thread, copy included
            out["bytes"] = graph.stats["snapshot_bytes"]
            out["raw_bytes"] = snapshot.header_of(path.read_bytes())["raw_bytes"]
        elif name == "restore":
            started = time.perf_counter()
            with live_graph() as graph:
                pass
            out["seconds"] = time.perf_counter() - started
            out["rss_mb"] = impact.rss_mb() - rss
            out["restored"] = graph.stats["restores"] == 1 and graph.stats["rebuilds"] == 0
            out["restore_s"] = graph.stats["last_restore_s"]
            out["catch_up_s"] = graph.stats["last_refresh_s"] if graph.stats["refreshes"] else 0.0
            t0 = time.perf_counter()
            snapshot.read(graph.snapshot_path, graph.database_key)
            out["read_decode_s"] = time.perf_counter() - t0  # file in the page cache by now
            fresh = LiveGraph()
            fresh.rebuild(db.session)
            out["identical"] = structure(graph) == structure(fresh)
        db.session.rollback()
    return out


def write_changes(size: str, n: int, seed: int) -> None:
    """``n`` new relationships (one bulk write), committed after the snapshot: the catch-up."""
    from cairn.audit.context import Actor, acting_as
    from cairn.db import db
    from relations.services import bulk_create_relationships

    meta = json.loads((WORK / f"meta_postgresql_{size}.json").read_text())
    lo_app, hi_app = meta["kinds"]["app_instance"]
    lo_db, hi_db = meta["kinds"]["database"]
    rng = random.Random(seed)
    pairs = {(rng.randint(lo_app, hi_app), rng.randint(lo_db, hi_db)) for _ in range(n * 2)}
    app = make_app(size, snapshots=False)
    with app.app_context(), acting_as(Actor("benchmark")):
        from sqlalchemy import select

        from relations.models import Relationship

        existing = set(
            map(
                tuple,
                db.session.execute(
                    select(Relationship.source_id, Relationship.target_id).where(
                        Relationship.type == "uses", Relationship.valid_to.is_(None)
                    )
                ),
            )
        )
        items = [{"source_id": a, "target_id": b, "type": "uses"} for a, b in sorted(pairs - existing)][:n]
        bulk_create_relationships(items)
        db.session.commit()


def run_phase(name: str, size: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "_phase", name, size], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{name} {size}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def run(size: str, reuse: bool, repeats: int) -> dict:
    meta_path = WORK / f"meta_postgresql_{size}.json"
    if reuse and meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        print(f"[{size}] building the estate ...", flush=True)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "_build", size], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        meta = json.loads(proc.stdout.splitlines()[-1])
        print(f"[{size}] estate built in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"[{size}] measuring ({repeats} fresh processes per figure) ...", flush=True)

    def median_of(name: str) -> dict:
        runs = [run_phase(name, size) for _ in range(repeats)]
        last = runs[-1]
        return {
            key: statistics.median(r[key] for r in runs) if isinstance(value, float) else value
            for key, value in last.items()
        }

    out = {"cis": meta["cis"], "relationships": meta["relationships"]}
    out["rebuild"] = median_of("rebuild")
    out["write"] = median_of("write")
    out["restore"] = median_of("restore")
    write_changes(size, CATCH_UP_RELATIONSHIPS, seed=int(time.time()))
    out["catch_up"] = run_phase("restore", size)
    run_phase("write", size)  # leave a current snapshot behind
    (WORK / f"result_{size}.json").write_text(json.dumps(out, indent=2))
    return out


def report(results: dict) -> None:
    rows = [
        ("estate: CIs / relationships", lambda r: f"{r['cis']:,} / {r['relationships']:,}"),
        ("graph: nodes / edges", lambda r: f"{r['rebuild']['nodes']:,} / {r['rebuild']['edges']:,}"),
        ("cold start by rebuild from the tables", lambda r: f"{r['rebuild']['seconds']:.2f} s"),
        (
            "cold start by rebuild, snapshots on (what the first query waits)",
            lambda r: f"{r['write']['seconds']:.2f} s",
        ),
        (
            "snapshot writer thread, after the rebuild: all (its copy of the graph)",
            lambda r: f"{r['write']['write_s']:.2f} s ({r['write']['copy_s']:.2f} s)",
        ),
        (
            "snapshot file (its payload before zlib)",
            lambda r: f"{r['write']['bytes'] / 2**20:.1f} MB ({r['write']['raw_bytes'] / 2**20:.1f} MB raw)",
        ),
        (
            "cold start by restore from the snapshot",
            lambda r: f"{r['restore']['seconds']:.2f} s (read + decode {r['restore']['read_decode_s']:.2f} s)",
        ),
        ("restore vs rebuild", lambda r: f"{r['rebuild']['seconds'] / r['restore']['seconds']:.1f}× faster"),
        (
            f"cold start by restore + catch-up of {CATCH_UP_RELATIONSHIPS:,} new relationships",
            lambda r: f"{r['catch_up']['seconds']:.2f} s (catch-up {r['catch_up']['catch_up_s']:.2f} s)",
        ),
        (
            "graph memory (RSS delta): rebuild / restore",
            lambda r: f"{r['rebuild']['rss_mb']:.0f} / {r['restore']['rss_mb']:.0f} MB",
        ),
        (
            "restored graph identical to a rebuild (plain / after catch-up)",
            lambda r: f"{r['restore']['identical']} / {r['catch_up']['identical']}",
        ),
    ]
    print()
    print("| figure (PostgreSQL) | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for label, fmt in rows:
        cells = []
        for result in results.values():
            try:
                cells.append(fmt(result))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("–")
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    _use_own_database()
    if len(sys.argv) > 1 and sys.argv[1] == "_build":
        print(json.dumps(impact.build_estate("postgresql", sys.argv[2])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        print(json.dumps(phase(sys.argv[2], sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k", help=f"comma-separated, of {', '.join(impact.SIZES)}")
    parser.add_argument("--reuse", action="store_true", help="keep estates built by an earlier run")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per figure (median)")
    parser.add_argument("--drop", action="store_true", help="drop the scratch databases at the end")
    args = parser.parse_args()
    results = {}
    for size in args.sizes.split(","):
        results[f"{size} CIs"] = run(size, args.reuse, args.repeats)
    report(results)
    if args.drop:
        for size in args.sizes.split(","):
            scratch.drop_database(f"{DB_PREFIX}{size}")


if __name__ == "__main__":
    main()
