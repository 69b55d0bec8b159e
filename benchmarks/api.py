"""API throughput and latency under gunicorn (2 sync workers) on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/api.py [--db sqlite|postgresql|both] [--cis 10000] [--seconds 15] [--clients 8]

Each database gets a scratch copy: migrated, an admin token made with the CLI, gunicorn started on a free
port, then: create (loading --cis CIs through POST /cis), get by id, filtered list (page of 50), PATCH.
The load generator runs --clients threads in this process, one TCP connection per request (as sync
gunicorn closes them), and prints requests per second and p50/p95 latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("CAIRN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLASSES = ["server", "virtual_machine", "laptop", "network_switch", "database", "application"]
STATUSES = ["deployed", "in_stock", "planned"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        """``body``: a JSON value, or bytes already encoded (sent as they are)."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def run_load(client: Client, make_request, *, clients: int, seconds: float | None = None, total: int | None = None):
    """Run make_request(rng, index) from `clients` threads; returns (req/s, p50 ms, p95 ms, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds if seconds else None

    def worker(seed: int):
        rng = random.Random(seed)
        mine = []
        while True:
            with lock:
                index = next(counter)
            if total is not None and index >= total:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            method, path, body, expected = make_request(rng, index)
            start = time.perf_counter()
            status, payload = client.request(method, path, body)
            mine.append(time.perf_counter() - start)
            if status != expected:
                with lock:
                    errors[0] += 1
                    if errors[0] <= 3:
                        print(f"  unexpected {status} for {method} {path}: {payload[:200]!r}", file=sys.stderr)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return len(latencies) / elapsed, quantile[49] * 1000, quantile[94] * 1000, errors[0]


def prepare(db: str, workdir: Path) -> dict:
    env = {**os.environ, "CAIRN_INSTANCE_PATH": str(workdir), "CAIRN_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    if db == "postgresql":
        import psycopg

        name = f"cairn_bench_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        env["CAIRN_BENCH_DB_NAME"] = name
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    cairn = str(BIN / "cairn")
    subprocess.run([cairn, "db", "upgrade", "heads"], env=env, check=True, capture_output=True, cwd=ROOT)
    subprocess.run([cairn, "users", "create", "bench@example.com", "--role", "admin"], env=env, check=True,
                   capture_output=True, cwd=ROOT)  # fmt: skip
    token = subprocess.run([cairn, "tokens", "create", "bench@example.com"], env=env, check=True,
                           capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()[-1]  # fmt: skip
    env["CAIRN_BENCH_TOKEN"] = token
    return env


def start_server(
    env: dict, port: int, app: str = "wsgi:app", cwd: Path = ROOT, workers: int = 2, timeout: int = 30
) -> subprocess.Popen:
    """gunicorn with ``workers`` sync workers serving ``app`` (module:attribute, imported from ``cwd``)."""
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", str(workers), "--timeout", str(timeout), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", app],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("gunicorn did not start: " + server.stderr.read().decode()[-2000:])


def bench(db: str, cis: int, seconds: float, clients: int) -> list[tuple]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cairn-bench-{db}-"))
    env = prepare(db, workdir)
    port = free_port()
    server = start_server(env, port)
    client = Client(port, env["CAIRN_BENCH_TOKEN"])
    rows = []
    try:

        def create(rng, index):
            body = {
                "name": f"ci-{index:06}",
                "ci_class": CLASSES[index % len(CLASSES)],
                "status": STATUSES[index % len(STATUSES)],
                "asset_tag": f"TAG-{index:06}",
                "criticality": rng.choice(["low", "medium", "high", "critical"]),
                "attributes": {"hostname": f"host-{index:06}"} if index % len(CLASSES) in (0, 1, 2, 3) else {},
            }
            return "POST", "/api/v1/cis", body, 201

        rows.append(("create", *run_load(client, create, clients=clients, total=cis)))
        status, payload = client.request("GET", "/api/v1/cis?page_size=1&sort=id")
        first_id = json.loads(payload)[0]["id"]
        ids = range(first_id, first_id + cis)

        def get_one(rng, _):
            return "GET", f"/api/v1/cis/{rng.choice(ids)}", None, 200

        def list_page(rng, _):
            ci_class = rng.choice(CLASSES)
            return (
                "GET",
                f"/api/v1/cis?ci_class={ci_class}&status=deployed&page={rng.randint(1, 5)}&page_size=50",
                None,
                200,
            )

        def patch(rng, _):
            return "PATCH", f"/api/v1/cis/{rng.choice(ids)}", {"description": f"bench {rng.random():.8f}"}, 200

        for name, fn in (("get by id", get_one), ("filtered list (50)", list_page), ("patch", patch)):
            run_load(client, fn, clients=clients, seconds=2)  # warm-up
            rows.append((name, *run_load(client, fn, clients=clients, seconds=seconds)))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if "CAIRN_BENCH_DB_NAME" in env:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{env["CAIRN_BENCH_DB_NAME"]}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cis", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"cairn API benchmark: gunicorn -w 2 (sync), {args.clients} client threads, {args.cis} CIs, "
          f"{os.cpu_count()} CPUs, load average {load}")  # fmt: skip
    print(f"{'database':<11} {'operation':<20} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for db in databases:
        for name, rps, p50, p95, errors in bench(db, args.cis, args.seconds, args.clients):
            print(f"{db:<11} {name:<20} {rps:>8.0f} {p50:>8.1f} {p95:>8.1f} {errors:>7}")


if __name__ == "__main__":
    main()
