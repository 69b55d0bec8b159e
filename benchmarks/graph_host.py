"""One graph per host, measured both ways (issue 16 part 1): every process with its own graph, one
graph host (`cairn graphd`) asked over a Unix socket, and what a graph in shared memory would give.

    .venv/bin/python benchmarks/graph_host.py                  # 100k CIs / 400k relationships, PostgreSQL
    .venv/bin/python benchmarks/graph_host.py --size 1m        # 1M / 4M (builds it: ~15 min the first time)
    .venv/bin/python benchmarks/graph_host.py --reuse          # keep an estate benchmarks/impact.py built

The estate is benchmarks/impact.py's (same generator, same database, reused when there). The host is
what the README deploys: gunicorn with 4 workers and 2 job processes (each answering impact the way a
job does, in a process of its own), first each with its own graph, then all asking one `cairn graphd`.

Printed, with the targets of the issue:
- graph memory of the whole host: the sum of the processes' RSS deltas (RSS after the first impact
  answer minus RSS after start), and the host's own;
- the host's cold start from the snapshot (process start to answering) and, for reference, a rebuild
  from the tables;
- a write through one web worker in the next answer through another: time from the write's response
  to an answer that holds it, and the host's refresh after one write;
- HTTP p50 of the high-fan-in CI (~5,000 impacted at 100k) and a mid-level one, own graph vs host,
  answered from a worker's answer cache (the same question again) and cold (a new question each time:
  another max_depth), and the recursive CTE on the same database as the reference;
- shared memory: the graph as compressed adjacency arrays (CSR) in one shared block that every process
  maps: its size, a process's PSS after mapping and walking it, and a plain breadth-first walk over it
  against networkx's walk of the same CI (what the shared-memory design would pay per question, before
  re-implementing the cluster, degraded and path rules that the networkx walk already has).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import impact as estate  # noqa: E402

WORKERS, JOB_PROCESSES = 4, 2


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(url: str, extra: dict | None = None) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "CAIRN_INSTANCE_PATH": str(estate.WORK / "instance"),
           "CAIRN_LOG_LEVEL": "WARNING", "SECRET_KEY": "bench", "CAIRN_EMBEDDED_RUNNER": "false",
           "PYTHONPATH": str(ROOT), **(extra or {})}  # fmt: skip
    env.pop("REDIS_URL", None)
    return env


# ------------------------------------------------------------------------------------ picking CIs
def pick(db: str, size: str) -> dict:
    """In a process of its own: load the graph, pick the high-fan-in and mid CIs, and measure the
    shared-memory alternative against the networkx walk."""
    from multiprocessing import shared_memory

    from cairn.db import db as sa_db
    from relations.graph import live_graph
    from relations.impact import propagate

    meta = json.loads((estate.WORK / f"meta_{db}_{size}.json").read_text())
    app = estate.make_app(estate.database_url(db, size))
    out: dict = {}
    with app.app_context():
        sa_db.session.execute(estate_text("SELECT 1"))
        gc.collect()
        before = rss_mb(os.getpid())
        t0 = time.perf_counter()
        with live_graph() as graph:
            pass
        out["rebuild_or_restore_s"] = time.perf_counter() - t0
        out["graph_rss_mb"] = rss_mb(os.getpid()) - before
        out["loaded_from"] = graph.stats["loaded_from"]
        sa_db.session.rollback()
        graph.wait_for_snapshot(600)  # the host and the workers restore from it
        rng = random.Random(estate.SEED + 1)
        lo, hi = meta["kinds"]["switch"]
        target_high = 5_000 if size != "1m" else 50_000

        def count(ci):
            return len(propagate(graph, [ci]).state) - 1

        candidates = [rng.randint(lo, hi) for _ in range(60)]
        lo_h, hi_h = meta["kinds"]["hypervisor"]
        candidates += [rng.randint(lo_h, hi_h) for _ in range(40)]
        high = min(candidates, key=lambda c: abs(count(c) - target_high))
        lo_v, hi_v = meta["kinds"]["vm"]
        mid = min((rng.randint(lo_v, hi_v) for _ in range(200)), key=lambda c: abs(count(c) - 15))
        out["high"], out["mid"] = high, mid
        out["high_impacted"], out["mid_impacted"] = count(high), count(mid)

        # The shared-memory alternative: dependents of each CI as CSR arrays in one shared block.
        from array import array

        pred = graph.G._pred
        nodes = sorted(pred)
        index = {n: k for k, n in enumerate(nodes)}
        offsets, targets = array("i", [0]), array("i")
        for n in nodes:
            targets.extend(index[m] for m in pred[n])
            offsets.append(len(targets))
        ids = array("i", nodes)
        block = shared_memory.SharedMemory(create=True, size=(len(offsets) + len(targets) + len(ids)) * 4)
        try:
            mv = block.buf
            mv[: len(offsets) * 4] = offsets.tobytes()
            mv[len(offsets) * 4 : (len(offsets) + len(targets)) * 4] = targets.tobytes()
            mv[(len(offsets) + len(targets)) * 4 :] = ids.tobytes()
            out["csr_mb"] = block.size / 2**20
            walkers = [
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "_csr_walk",
                        block.name,
                        str(len(offsets)),
                        str(len(targets)),
                        str(index[high]),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env_for(""),
                )  # fmt: skip
                for _ in range(3)
            ]
            walked = [json.loads(w.stdout.splitlines()[-1]) for w in walkers]
        finally:
            block.close()
            block.unlink()
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            propagate(graph, [high])
            times.append(time.perf_counter() - t0)
        out["networkx_walk_ms"] = statistics.median(times) * 1000
        out["csr_walk_ms"] = statistics.median(w["walk_ms"] for w in walked)
        out["csr_reached"] = walked[0]["reached"]
        out["csr_process_pss_delta_mb"] = statistics.median(w["pss_delta_mb"] for w in walked)
        out["csr_process_rss_delta_mb"] = statistics.median(w["rss_delta_mb"] for w in walked)
    return out


def csr_walk(name: str, n_offsets: int, n_targets: int, root: int) -> dict:
    """A process that maps the shared block and walks the dependents of ``root`` breadth-first."""
    from multiprocessing import resource_tracker, shared_memory

    gc.collect()
    pss0, rss0 = pss_mb(os.getpid()), rss_mb(os.getpid())
    block = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(block._name, "shared_memory")  # the creator unlinks it
    offsets = block.buf[: n_offsets * 4].cast("i")
    targets = block.buf[n_offsets * 4 : (n_offsets + n_targets) * 4].cast("i")
    times, reached = [], 0
    for _ in range(15):
        t0 = time.perf_counter()
        depth = {root: 0}
        frontier = [root]
        while frontier:
            nxt = []
            for n in frontier:
                d = depth[n] + 1
                for k in range(offsets[n], offsets[n + 1]):
                    m = targets[k]
                    if m not in depth:
                        depth[m] = d
                        nxt.append(m)
            frontier = nxt
        times.append(time.perf_counter() - t0)
        reached = len(depth) - 1
    # Touch every page, as answering questions all over the estate would.
    checksum = sum(offsets[::1024]) + sum(targets[::1024])
    out = {
        "walk_ms": statistics.median(times) * 1000,
        "reached": reached,
        "pss_delta_mb": pss_mb(os.getpid()) - pss0,
        "rss_delta_mb": rss_mb(os.getpid()) - rss0,
        "checksum": checksum,
    }
    del offsets, targets
    block.close()
    return out


# ------------------------------------------------------------------------------------ memory alone
def synthetic_memory(size: str) -> dict:
    """In a process of its own, without a database: the graph of the estate generator at ``size`` as
    relations.graph holds it (networkx adjacency, one data dict per edge, node data), its RSS, and
    the same dependents as CSR arrays (what a compact host would keep)."""
    from array import array

    from relations.graph import _fill, _node_data, _type_info
    from relations.types import BUILTIN_TYPES

    cis, edges, _, _ = estate.generate(size)
    types = {t["name"]: _type_info(t) for t in BUILTIN_TYPES}
    forward = {name for name, info in types.items() if info.forward}
    rows = [
        (k, a, b, type_) if type_ in forward else (k, b, a, type_)
        for k, ((a, b), type_) in enumerate(edges.items(), start=1)
    ]
    names = [(f"{kind}-{i}", cls) for i, (kind, cls) in enumerate(cis)]
    del edges, cis
    gc.collect()
    before = rss_mb(os.getpid())
    t0 = time.perf_counter()
    G, P, member_targets = _fill(rows, types)
    for n, (name, cls) in enumerate(names):
        if n in G._node:
            attributes = {"min_members_up": 12} if cls == "cluster" else None
            G._node[n].update(_node_data(name, cls, "medium", None, attributes))
    build_s = time.perf_counter() - t0
    del rows
    gc.collect()
    graph_mb = rss_mb(os.getpid()) - before
    pred = G._pred
    index = {n: k for k, n in enumerate(pred)}
    targets = array("i", (index[m] for n in pred for m in pred[n]))
    csr_mb = (len(targets) + 2 * len(pred) + 1) * 4 / 2**20
    names_mb = sum(len(name) for name, _ in names) / 2**20
    return {
        "size": size,
        "nodes": G.number_of_nodes(),
        "edges": G.number_of_edges() + P.number_of_edges(),
        "networkx_graph_mb": graph_mb,
        "build_s": build_s,
        "csr_mb": csr_mb,
        "names_mb": names_mb,
    }


# ------------------------------------------------------------------------------------ a job process
def job_process(db: str, size: str, ci: int) -> None:
    """Stands for a `cairn worker` running a job that asks the graph: answers once, reports, waits."""
    from cairn.db import db as sa_db
    from relations import services

    app = estate.make_app(estate.database_url(db, size))
    with app.app_context():
        if os.environ.get("CAIRN_GRAPHD_SOCKET"):
            app.config["CAIRN_GRAPHD_SOCKET"] = os.environ["CAIRN_GRAPHD_SOCKET"]
        sa_db.session.execute(estate_text("SELECT 1"))
        gc.collect()
        before = rss_mb(os.getpid())
        services.impact([ci])
        sa_db.session.rollback()
        print(json.dumps({"rss_delta_mb": rss_mb(os.getpid()) - before}), flush=True)
        sys.stdin.read()  # until the benchmark closes it


def estate_text(sql: str):
    from sqlalchemy import text

    return text(sql)


# ------------------------------------------------------------------------------------ a host
class Host:
    """gunicorn with 4 workers and 2 job processes, with or without a graph host."""

    def __init__(self, db: str, size: str, picked: dict, token: str, graph_host: bool):
        self.db, self.size, self.picked, self.token = db, size, picked, token
        self.url = estate.database_url(db, size)
        self.socket = str(Path(tempfile.mkdtemp()) / "graph.sock") if graph_host else ""
        self.procs: list[subprocess.Popen] = []
        self.figures: dict = {}

    def __enter__(self):
        extra = {"CAIRN_GRAPHD_SOCKET": self.socket} if self.socket else {}
        if self.socket:
            t0 = time.perf_counter()
            self.graphd = subprocess.Popen(
                [str(Path(sys.executable).with_name("cairn")), "graphd", "--socket", self.socket],
                cwd=ROOT, env=env_for(self.url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            self.procs.append(self.graphd)
            # It listens before it loads: started is when it first answers (its own stats).
            from relations import graphd

            while True:
                if self.graphd.poll() is not None:
                    raise RuntimeError(self.graphd.stderr.read().decode()[-3000:])
                try:
                    graphd.ask(self.socket, "stats")
                    break
                except graphd.HostUnavailable:
                    time.sleep(0.05)
            graphd.close_connections()
            self.figures["host_cold_start_s"] = time.perf_counter() - t0
            self.figures["host_rss_mb"] = rss_mb(self.graphd.pid)
        self.port = free_port()
        self.gunicorn = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-w", str(WORKERS), "--timeout", "600",
             "-b", f"127.0.0.1:{self.port}", "wsgi:app"],
            cwd=ROOT, env=env_for(self.url, extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(self.gunicorn)
        import httpx

        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {self.token}"}, timeout=600
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.client.get("/healthz").status_code == 200 and len(children(self.gunicorn.pid)) == WORKERS:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        time.sleep(1)
        self.workers = children(self.gunicorn.pid)
        self.workers_before = {pid: rss_mb(pid) for pid in self.workers}
        return self

    def warm_every_worker(self) -> None:
        """Ask until every worker has answered an impact question (each builds or asks its graph)."""
        high = self.picked["high"]
        grown: set[int] = set()
        threshold = 30 if not self.socket else 0.5
        with ThreadPoolExecutor(WORKERS * 2) as pool:
            for _ in range(40):
                list(pool.map(lambda _: self.client.get(f"/api/v1/cis/{high}/impact?max_depth=1"), range(WORKERS * 2)))
                grown = {pid for pid in self.workers if rss_mb(pid) - self.workers_before[pid] > threshold}
                if len(grown) == WORKERS:
                    break
        self.figures["workers_warmed"] = len(grown)

    def job_processes(self) -> list[float]:
        extra = {"CAIRN_GRAPHD_SOCKET": self.socket} if self.socket else {}
        jobs = [
            subprocess.Popen(
                [sys.executable, __file__, "_job", self.db, self.size, str(self.picked["high"])],
                cwd=ROOT,
                env=env_for(self.url, extra),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(JOB_PROCESSES)
        ]
        self.procs.extend(jobs)
        return [json.loads(job.stdout.readline())["rss_delta_mb"] for job in jobs]

    def latency(self, repeats: int) -> None:
        for label in ("high", "mid"):
            ci = self.picked[label]
            self.client.get(f"/api/v1/cis/{ci}/impact")
            cached, cold = [], []
            for k in range(repeats):
                t0 = time.perf_counter()
                r = self.client.get(f"/api/v1/cis/{ci}/impact")
                cached.append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.json()["count"] == self.picked[f"{label}_impacted"], r.text[:300]
                t0 = time.perf_counter()
                r = self.client.get(f"/api/v1/cis/{ci}/impact", params={"max_depth": 30 + (k % 60)})
                cold.append(time.perf_counter() - t0)
                assert r.status_code == 200
            self.figures[f"{label}_cached_p50_ms"] = statistics.median(cached) * 1000
            self.figures[f"{label}_cold_p50_ms"] = statistics.median(cold) * 1000

    def write_then_read(self, rounds: int = 10) -> None:
        """A relationship created through the API is in the next answer (whichever worker answers)."""
        lo = self.picked["mid"]
        seen = []
        for k in range(rounds):
            extra = self.client.post(
                "/api/v1/cis", json={"name": f"probe-{time.time_ns()}-{k}", "ci_class": "application"}
            ).json()["id"]
            link = {"source_id": extra, "type": "depends_on", "target_id": lo}
            r = self.client.post("/api/v1/relationships", json=link)
            assert r.status_code == 201, r.text
            t0 = time.perf_counter()
            body = self.client.get(f"/api/v1/cis/{lo}/impact").json()
            seen.append(time.perf_counter() - t0)
            assert extra in {i["ci"]["id"] for i in body["impacted"]}, "a write missing from the next answer"
            self.client.delete(f"/api/v1/relationships/{r.json()['id']}")
        self.figures["write_seen_next_p50_ms"] = statistics.median(seen) * 1000
        if self.socket:
            from relations import graphd

            stats = graphd.ask(self.socket, "stats")
            self.figures["host_refresh_after_write_ms"] = stats["graph"]["last_refresh_s"] * 1000
            self.figures["host_answered"] = stats["answered"]

    def memory(self, job_deltas: list[float]) -> None:
        deltas = [rss_mb(pid) - self.workers_before[pid] for pid in self.workers]
        self.figures["worker_rss_deltas_mb"] = deltas
        self.figures["job_rss_deltas_mb"] = job_deltas
        host = self.figures.get("host_rss_mb", 0.0)
        if self.socket:
            host = rss_mb(self.graphd.pid)
            self.figures["host_rss_mb"] = host
        self.figures["host_total_mb"] = sum(deltas) + sum(job_deltas) + host

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            if proc.stdin:
                proc.stdin.close()
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def cte_p50(db: str, size: str, ci: int, repeats: int) -> float:
    from relations.types import BUILTIN_TYPES, SOURCE_DEPENDS_ON_TARGET

    fwd = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] == SOURCE_DEPENDS_ON_TARGET)
    rev = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] != SOURCE_DEPENDS_ON_TARGET)
    cte = estate_text((estate.CTE_PG if db == "postgresql" else estate.CTE_SQLITE).format(fwd=fwd, rev=rev))
    from cairn.db import db as sa_db

    app = estate.make_app(estate.database_url(db, size))
    with app.app_context():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sa_db.session.execute(cte, {"root": ci, "maxd": 100}).all()
            times.append(time.perf_counter() - t0)
            sa_db.session.rollback()
    return statistics.median(times) * 1000


def make_token(db: str, size: str) -> str:
    from cairn.auth.services import create_token, create_user
    from cairn.db import db as sa_db

    app = estate.make_app(estate.database_url(db, size))
    with app.app_context():
        user = create_user(f"bench-{time.time_ns()}@example.com", "admin", "Bench")
        _, token = create_token(user, "bench")
        sa_db.session.commit()
    return token


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        command, *rest = sys.argv[1:]
        if command == "_pick":
            print(json.dumps(pick(*rest)))
        elif command == "_csr_walk":
            print(json.dumps(csr_walk(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))))
        elif command == "_memory":
            print(json.dumps(synthetic_memory(rest[0])))
        elif command == "_job":
            job_process(rest[0], rest[1], int(rest[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k", choices=sorted(estate.SIZES))
    parser.add_argument("--db", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the estate an earlier run built")
    parser.add_argument(
        "--modes",
        default="own,host",
        help="own: every process its own graph; host: one graph host (at 1M, own needs ~25 GB: use host)",
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the graph's memory at --size, from the generator without a database (quick at 1M)",
    )
    args = parser.parse_args()
    db, size = args.db, args.size
    if args.memory_only:
        figures = json.loads(
            subprocess.run(
                [sys.executable, __file__, "_memory", size], check=True, capture_output=True, text=True, env=env_for("")
            ).stdout.splitlines()[-1]  # fmt: skip
        )
        print(
            f"{figures['nodes']:,} CIs / {figures['edges']:,} relationships: networkx graph as relations.graph "
            f"holds it {figures['networkx_graph_mb']:,.0f} MB RSS (built in {figures['build_s']:.1f} s); "
            f"the dependents as CSR arrays {figures['csr_mb']:,.1f} MB, the names {figures['names_mb']:,.1f} MB"
        )
        return
    estate.WORK.mkdir(parents=True, exist_ok=True)
    if not (args.reuse and (estate.WORK / f"meta_{db}_{size}.json").exists()):
        print(f"[{db} {size}] building the estate ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "impact.py"), "_build", db, size], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"[{db} {size}] picking CIs, measuring the shared-memory walk ...", flush=True)
    picked = json.loads(
        subprocess.run(
            [sys.executable, __file__, "_pick", db, size],
            check=True,
            capture_output=True,
            text=True,
            env=env_for(estate.database_url(db, size)),
        ).stdout.splitlines()[-1]  # fmt: skip
    )
    token = make_token(db, size)
    results = {}
    modes = [m for key, m in (("own", "own graphs"), ("host", "one graph host")) if key in args.modes.split(",")]
    for mode in modes:
        print(f"[{db} {size}] {mode}: gunicorn -w {WORKERS} + {JOB_PROCESSES} job processes ...", flush=True)
        with Host(db, size, picked, token, graph_host=mode == "one graph host") as host:
            host.warm_every_worker()
            jobs = host.job_processes()
            host.memory(jobs)
            host.latency(args.repeats)
            host.write_then_read()
            results[mode] = host.figures
    cte = {label: cte_p50(db, size, picked[label], max(5, args.repeats // 3)) for label in ("high", "mid")}
    report(db, size, picked, results, cte)
    (estate.WORK / f"graph_host_{db}_{size}.json").write_text(
        json.dumps({"picked": picked, "results": results, "cte": cte}, indent=2)
    )


class _Missing(dict):
    """A mode that was not run: every figure reads as nan and prints as "–"."""

    def __missing__(self, key):
        return float("nan")


def report(db, size, picked, results, cte) -> None:
    own, host = results.get("own graphs", _Missing()), results.get("one graph host", _Missing())
    if "own graphs" not in results:  # estimated: every process pays what the picking process paid
        own["host_total_mb"] = picked["graph_rss_mb"] * (WORKERS + JOB_PROCESSES)
        own["worker_rss_deltas_mb"] = [picked["graph_rss_mb"]] * WORKERS
        own["job_rss_deltas_mb"] = [picked["graph_rss_mb"]] * JOB_PROCESSES
    budget = "≤ 1.5 GB at 1M / 4M"
    rows = [
        ("graph memory of the host (sum of RSS deltas)", f"{own['host_total_mb']:,.0f} MB",
         f"{host['host_total_mb']:,.0f} MB", budget),
        ("  of which web workers / job processes",
         f"{sum(own['worker_rss_deltas_mb']):,.0f} / {sum(own['job_rss_deltas_mb']):,.0f} MB",
         f"{sum(host['worker_rss_deltas_mb']):,.0f} / {sum(host['job_rss_deltas_mb']):,.0f} MB", ""),
        ("  the graph host's RSS", "–", f"{host['host_rss_mb']:,.0f} MB", ""),
        ("cold start of the graph host (snapshot; process start to answering)", "–",
         f"{host['host_cold_start_s']:.1f} s", "≤ 10 s"),
        ("a write, then the next answer through any worker: p50", f"{own['write_seen_next_p50_ms']:.1f} ms",
         f"{host['write_seen_next_p50_ms']:.1f} ms", "holds the write"),
        ("the host's refresh after one write", "–", f"{host.get('host_refresh_after_write_ms', 0):.2f} ms", "≤ 5 ms"),
    ]  # fmt: skip
    for label in ("high", "mid"):
        n = picked[f"{label}_impacted"]
        rows += [
            (f"{label} ({n:,} impacted): HTTP p50, answer cached in the worker",
             f"{own[f'{label}_cached_p50_ms']:.1f} ms", f"{host[f'{label}_cached_p50_ms']:.1f} ms",
             "≤ 40 ms" if label == "high" else ""),
            (f"{label}: HTTP p50, a new question each time", f"{own[f'{label}_cold_p50_ms']:.1f} ms",
             f"{host[f'{label}_cold_p50_ms']:.1f} ms", ""),
            (f"{label}: recursive CTE p50 / ratio to the new-question p50", f"{cte[label]:.1f} ms / "
             f"{cte[label] / own[f'{label}_cold_p50_ms']:.1f}×",
             f"{cte[label] / host[f'{label}_cold_p50_ms']:.1f}×", "≥ 3×"),
        ]  # fmt: skip
    print()
    print(
        f"One graph per host, {db} {size}: one process's graph {picked['graph_rss_mb']:,.0f} MB RSS "
        f"({picked['loaded_from']} load {picked['rebuild_or_restore_s']:.1f} s)"
        + ("" if "own graphs" in results else "; own graph per process: that times 6 (not run)")
    )
    print("| figure | own graph per process | one graph host | target |")
    print("|---|---|---|---|")
    for label, a, b, target in rows:
        print(f"| {label} | {a} | {b} | {target} |")
    print()
    print("Shared memory instead (CSR arrays of the dependents in one shared block, every process maps it):")
    pss, rss = picked["csr_process_pss_delta_mb"], picked["csr_process_rss_delta_mb"]
    print(f"- shared block: {picked['csr_mb']:.1f} MB for the whole host; a process mapping it and walking it: "
          f"PSS +{pss:.1f} MB, RSS +{rss:.1f} MB")  # fmt: skip
    print(f"- plain BFS over it from the high CI ({picked['csr_reached']:,} reached): "
          f"{picked['csr_walk_ms']:.1f} ms, against networkx's full walk (states, clusters, paths) "
          f"{picked['networkx_walk_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
