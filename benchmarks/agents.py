"""Inventory agents on PostgreSQL: how long one inventory takes to reconcile, and many agents at once.

    .venv/bin/python benchmarks/agents.py [--software 2000] [--agents 500] [--concurrency 32] [--workers 4]

A scratch database is created and migrated, a site token made with `cairn agents token create`, and
gunicorn started (--workers sync workers). Everything goes over HTTP as the agents send it: zlib-
compressed OCS XML built from the FusionInventory inventory captured in tests/integrations/fixtures.

1. One device with --software entries: the first inventory (every product and installation new),
   the same again (nothing changes: no change-log row), and a second device with the same products
   (products known, installations new). Target (issue 17): <= 2 s each.
2. --agents distinct devices replayed --concurrency at a time (twice): every answer 200, no deadlock,
   exactly one CI per device and one software CI per product, and the replay writes no change-log row.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import scratch  # noqa: E402

BIN = Path(sys.executable).parent
FIXTURE = ROOT / "tests" / "integrations" / "fixtures" / "agents" / "fusioninventory.xml.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inventory(base: str, device: int, software: int | None = None) -> bytes:
    """The captured inventory as device ``device``: its own id, name, serial and MACs; with
    ``software``, that many generated products instead of the captured ones."""
    xml = base.replace("<SSN></SSN>", "<SSN>X</SSN>")
    xml = re.sub(r"<DEVICEID>[^<]*</DEVICEID>", f"<DEVICEID>bench-{device:06d}-2026-01-01-00-00-00</DEVICEID>", xml)
    xml = re.sub(r"<SSN>[^<]*</SSN>", f"<SSN>BENCH{device:08d}</SSN>", xml)
    xml = re.sub(r"(<HARDWARE>.*?<NAME>)[^<]*(</NAME>)", rf"\g<1>bench-{device:06d}\g<2>", xml, count=1, flags=re.S)
    counter = iter(range(1, 1000))

    def mac(match):
        if match.group(1) == "00:00:00:00:00:00":
            return match.group(0)
        n = next(counter)
        return f"<MACADDR>02:{device >> 16 & 255:02x}:{device >> 8 & 255:02x}:{device & 255:02x}:{n:02x}:01</MACADDR>"

    xml = re.sub(r"<MACADDR>([^<]*)</MACADDR>", mac, xml)
    if software is not None:
        xml = re.sub(r"<SOFTWARES>.*?</SOFTWARES>\s*", "", xml, flags=re.S)
        generated = "".join(
            f"<SOFTWARES><NAME>bench-product-{i:05d}</NAME><PUBLISHER>Vendor {i % 40}</PUBLISHER>"
            f"<VERSION>{i % 7}.{i % 13}.0</VERSION><INSTALLDATE>2025-01-{i % 28 + 1:02d}</INSTALLDATE></SOFTWARES>"
            for i in range(software)
        )
        xml = xml.replace("</CONTENT>", generated + "</CONTENT>", 1)
    return zlib.compress(xml.encode())


def post(url: str, body: bytes) -> tuple[int, float, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-compress"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, time.perf_counter() - started, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - started, exc.read()


def counts(database_url: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM change_log), "
                "(SELECT count(*) FROM ci WHERE ci_class <> 'software'), "
                "(SELECT count(*) FROM (SELECT serial_number FROM ci WHERE ci_class <> 'software' "
                "  GROUP BY serial_number HAVING count(*) > 1) d), "
                "(SELECT count(*) FROM ci WHERE ci_class = 'software'), "
                "(SELECT count(*) FROM (SELECT lower(name), vendor FROM ci WHERE ci_class = 'software' "
                "  GROUP BY lower(name), vendor HAVING count(*) > 1) d), "
                "(SELECT count(*) FROM relationship WHERE type = 'installed_on' AND valid_to IS NULL)"
            )
        ).one()
    engine.dispose()
    keys = ("change_log", "devices", "duplicate_devices", "software", "duplicate_software", "installations")
    return dict(zip(keys, row, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--software", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    base = gzip.decompress(FIXTURE.read_bytes()).decode()
    name = f"cairn_bench_agents_{os.getpid()}"
    database_url = scratch.fresh_database(name)
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-agents-"))
    env = {**os.environ, "DATABASE_URL": database_url, "CAIRN_INSTANCE_PATH": str(workdir), "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    cairn = str(BIN / "cairn")
    server = None
    try:
        subprocess.run([cairn, "db", "upgrade", "heads"], env=env, check=True, capture_output=True, cwd=ROOT)
        token = subprocess.run([cairn, "agents", "token", "create", "bench"], env=env, check=True, capture_output=True,
                               text=True, cwd=ROOT).stdout.strip().splitlines()[-1]  # fmt: skip
        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the server
        port = free_port()
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--timeout", "300",
             "--log-level", "warning", "wsgi:app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,  # a file: a full pipe would stall it
        )  # fmt: skip
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/api/v1/agent-inventory/{token}"
        print(f"cairn agents benchmark on PostgreSQL, gunicorn -w {args.workers}", flush=True)

        for warm in range(args.workers * 2):  # every worker imports, connects and loads its graph once
            post(url, inventory(base, 900_000 + warm, 20))
        big = inventory(base, 0, args.software)
        for label, body in (
            (f"first inventory, {args.software} software (all new)", big),
            ("the same inventory again (nothing changes)", big),
            (f"another device, the same {args.software} products", inventory(base, 1, args.software)),
        ):
            before = counts(database_url)["change_log"]
            status, seconds, _ = post(url, body)
            written = counts(database_url)["change_log"] - before
            verdict = "OK" if seconds <= 2 and status == 200 else "ABOVE TARGET"
            print(
                f"  {label:<52} HTTP {status} in {seconds:6.2f} s, {written:>6} change-log rows  {verdict}", flush=True
            )

        bodies = [inventory(base, 1000 + i) for i in range(args.agents)]
        for round_name in ("first reports", "replay"):
            before = counts(database_url)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(lambda b: post(url, b), bodies))
            elapsed = time.perf_counter() - started
            after = counts(database_url)
            statuses = sorted({s for s, _, _ in results})
            latencies = sorted(t for _, t, _ in results)
            print(
                f"  {args.agents} agents, {args.concurrency} at a time, {round_name}: {elapsed:6.1f} s "
                f"({args.agents / elapsed:5.1f} inventories/s), p50 {latencies[len(latencies) // 2]:.2f} s, "
                f"max {latencies[-1]:.2f} s, statuses {statuses}",
                flush=True,
            )
            print(
                f"    devices {after['devices']} (duplicates {after['duplicate_devices']}), software CIs "
                f"{after['software']} (duplicates {after['duplicate_software']}), open installations "
                f"{after['installations']}, change-log rows written {after['change_log'] - before['change_log']}",
                flush=True,
            )
            errors = [r[2][:300] for r in results if r[0] != 200]
            if errors:
                print(f"    first error: {errors[0]!r}", flush=True)
                print((workdir / "gunicorn.log").read_text(errors="replace")[-2000:], flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        scratch.drop_database(name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
