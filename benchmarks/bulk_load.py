"""Bulk load end to end (issue 16): N CIs, then 4N relationships between them, through the public
bulk API of Cairn under gunicorn on a scratch PostgreSQL database, at a rate that must stay flat.

    .venv/bin/python benchmarks/bulk_load.py                      # 200,000 CIs, 800,000 relationships
    .venv/bin/python benchmarks/bulk_load.py --cis 1000000 --relationships 4000000
    .venv/bin/python benchmarks/bulk_load.py --cis 20000 --clients 4 --workers 4 --keep

The scratch database is migrated and given an admin token with the CLI (benchmarks/api.py's
``prepare``), gunicorn is started with --workers sync workers (``start_server``), and --clients
threads of this process post batches of the documented maximum (``MAX_ITEMS``, 1,000 items) to
``POST /api/v1/cis/bulk`` (each CI upserted by its external id) and then to
``POST /api/v1/relationships/bulk`` (ends by the ids the CI answers gave; each CI depends on four
others at fixed offsets). Bodies are written with orjson in the client thread (a few ms a batch
against hundreds on the server); every answer is checked (status 200, every item ``created``).

Printed per phase: the rate in each tenth of the load (first 10% ... last 10%, by the moment the
answers came back), the overall rate, and last tenth / first tenth ("flat" is >= 0.8), each beside
its target (CIs >= 3,000/s, relationships >= 5,000/s), and the CPU that gunicorn's workers and
PostgreSQL spent per 1,000 items.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # before benchmarks/ (whose tickets.py and web.py share names with packages)
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

import orjson  # noqa: E402

from integrations.sync.services import MAX_ITEMS  # noqa: E402

TARGETS = {"CIs": 3000.0, "relationships": 5000.0}
FLAT = 0.8
OFFSETS = (1, 7, 31, 101, 331, 1009, 3001, 9001)  # each CI depends on the CIs this far on (mod N)


def ci_item(i: int) -> dict:
    return {
        "external_id": {"source": "bulkload", "id": f"ci-{i}"},
        "name": f"host-{i:07d}",
        "ci_class": "server",
        "status": "deployed",
        "serial_number": f"BL{i:09d}",
        "vendor": "Dell",
        "attributes": {"hostname": f"host-{i:07d}", "ip_addresses": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"]},
    }


def load(client, path: str, total: int, make_item, clients: int, ids: array | None = None) -> dict:
    """Post ``total`` items in batches of MAX_ITEMS from ``clients`` threads; returns the per-batch
    completion times and counts. ``ids``: filled with each item's id from the answers."""
    from ceiling import cpu_split

    batches = (total + MAX_ITEMS - 1) // MAX_ITEMS
    lock = threading.Lock()
    following = iter(range(batches))
    done: list[tuple[float, int]] = []
    failures: list[str] = []

    def worker() -> None:
        while not failures:
            with lock:
                batch = next(following, None)
            if batch is None:
                return
            start = batch * MAX_ITEMS
            body = orjson.dumps([make_item(k) for k in range(start, min(start + MAX_ITEMS, total))])
            status, payload = client.request("POST", path, body)
            answer = orjson.loads(payload) if status == 200 else None
            if answer is None or any(r["status"] != "created" for r in answer):
                bad = payload[:400] if answer is None else [r for r in answer if r["status"] != "created"][:2]
                failures.append(f"batch {batch}: HTTP {status}: {bad!r}")
                return
            if ids is not None:
                for r in answer:
                    ids[start + r["index"]] = r["id"]
            with lock:
                done.append((time.perf_counter(), len(answer)))

    cpu_before = (*cpu_split(client.master), _own_cpu(), _machine_busy())
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit("\n".join(failures))
    cpu_after = (*cpu_split(client.master), _own_cpu(), _machine_busy())
    cpu = [after - before for after, before in zip(cpu_after, cpu_before, strict=True)]
    return {"started": started, "done": sorted(done), "cpu": cpu}


def settle(master: int, quiet: float = 0.05, longest: float = 120.0) -> None:
    """Wait until gunicorn's workers have booted: the port answers as soon as the master listens,
    while each worker is still importing the app (seconds of CPU on this machine) and would count
    in the first tenth. Booted: their CPU grows by less than ``quiet`` s in a second."""
    from ceiling import cpu_split

    deadline = time.perf_counter() + longest
    before = cpu_split(master)[0]
    while time.perf_counter() < deadline:
        time.sleep(1)
        now = cpu_split(master)[0]
        if now - before < quiet:
            return
        before = now


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores, /proc/stat: everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def deciles(run: dict, total: int) -> list[float]:
    """The rate in each tenth of the load: items whose answer came in that tenth / its duration."""
    rates, previous_time, previous_count, count = [], run["started"], 0, 0
    events = iter(run["done"])
    for tenth in range(1, 11):
        goal = total * tenth / 10
        while count < goal:
            moment, n = next(events)
            count += n
        # (under ten batches a tenth can end with the previous one: no rate of its own)
        rates.append((count - previous_count) / (moment - previous_time) if count > previous_count else float("nan"))
        previous_time, previous_count = moment, count
    return rates


def report(label: str, run: dict, total: int) -> dict:
    target = TARGETS[label]
    rates = deciles(run, total)
    seconds = run["done"][-1][0] - run["started"]
    overall = total / seconds
    ratio = rates[-1] / rates[0]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW TARGET"

    print(f"\n{label}: {total:,} in {seconds:,.1f} s", flush=True)
    print(f"  {'tenth of the load':<22} {'items/s':>9}   target")
    for k, rate in enumerate(rates):
        print(f"  {f'{k * 10}-{k * 10 + 10}%':<22} {rate:>9,.0f}   >= {target:,.0f} {verdict(rate >= target)}")
    print(f"  {'overall':<22} {overall:>9,.0f}   >= {target:,.0f} {verdict(overall >= target)}")
    print(f"  {'last / first tenth':<22} {ratio:>9.2f}   >= {FLAT} {verdict(ratio >= FLAT)}")
    workers, database, own, busy = (cpu * 1e6 / total for cpu in run["cpu"])
    available = seconds * 1e6 * os.cpu_count() / total
    print(f"  CPU ms per 1,000 items: server {workers + database:,.0f} (gunicorn workers {workers:,.0f} + PostgreSQL "
          f"{database:,.0f}), this client {own:,.0f}, the whole machine {busy:,.0f} of {available:,.0f} available",
          flush=True)  # fmt: skip
    return {"rates": rates, "overall": overall, "ratio": ratio}


def main() -> None:
    from api import Client, free_port, prepare, start_server
    from scratch import drop_database

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=200_000)
    parser.add_argument("--relationships", type=int, help="default: 4 per CI; 0: load the CIs only")
    parser.add_argument("--clients", type=int, default=4, help="client threads posting batches at once")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    args = parser.parse_args()
    relationships = 4 * args.cis if args.relationships is None else args.relationships
    if relationships > args.cis * len(OFFSETS):
        parser.error(f"at most {len(OFFSETS)} relationships per CI")

    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-bulk-"))
    try:
        env = prepare("postgresql", workdir)
    except BaseException:  # e.g. the CLI failed after the database was made: don't leave it behind
        drop_database(f"cairn_bench_{os.getpid()}")  # prepare's name for it
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    port = free_port()
    server = start_server(env, port, workers=args.workers, timeout=300)
    tail: list[bytes] = []  # gunicorn's stderr, drained (a full pipe would stall the server)
    threading.Thread(target=lambda: tail.extend(server.stderr), daemon=True).start()
    client = Client(port, env["CAIRN_BENCH_TOKEN"])
    client.master = server.pid
    settle(server.pid)
    load_average = Path("/proc/loadavg").read_text().split()[0]
    print(f"bulk load on PostgreSQL: gunicorn -w {args.workers} (sync), {args.clients} client threads, batches "
          f"of {MAX_ITEMS:,}, {args.cis:,} CIs then {relationships:,} relationships; {os.cpu_count()} CPUs, "
          f"load average {load_average}", flush=True)  # fmt: skip
    try:
        ids = array("q", bytes(8 * args.cis))
        run = load(client, "/api/v1/cis/bulk", args.cis, ci_item, args.clients, ids)
        report("CIs", run, args.cis)
        n = args.cis

        def relationship(k: int) -> dict:
            source, offset = k % n, OFFSETS[k // n]
            return {"source_id": ids[source], "type": "depends_on", "target_id": ids[(source + offset) % n]}

        if relationships:
            run = load(client, "/api/v1/relationships/bulk", relationships, relationship, args.clients)
            report("relationships", run, relationships)
    finally:
        server.terminate()
        server.wait(timeout=60)
        if args.keep:
            print(f"kept database {env['CAIRN_BENCH_DB_NAME']}")
        else:
            drop_database(env["CAIRN_BENCH_DB_NAME"])
        shutil.rmtree(workdir, ignore_errors=True)
        errors = b"".join(tail).decode(errors="replace").strip()
        if errors:
            print("gunicorn said:\n" + errors[-3000:], file=sys.stderr)


if __name__ == "__main__":
    main()
