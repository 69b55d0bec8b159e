"""Sync throughput on PostgreSQL: bulk create and upsert, discovery reconciliation, the change feed,
and webhook deliveries with two RQ workers to a local receiver.

    .venv/bin/python benchmarks/sync.py [--cis 100000] [--discovery 50000] [--deliveries 5000]
        [--rel-cis 100000] [--relationships 400000] [--only bulk,discovery,feed,webhooks,relationships]

A scratch database is created and migrated; everything goes through the HTTP API (in-process test
client: routing, auth, JSON in and out) except discovery, which runs the reconciliation service as
its job would. Targets (issue 6): bulk create >= 2,000 CIs/s, reconciliation >= 1,000 items/s,
feed >= 10,000 changes/s, webhooks >= 200 deliveries/s. Bulk edit (PATCH /cis and PATCH
/tickets, 1,000 a call): >= 2,000 objects/s. Relationships (POST /relationships/bulk,
batches of 1,000, onto --rel-cis CIs loaded first): >= 5,000/s and flat as the table grows, so the
rate is printed for every 50,000.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402

BIN = Path(sys.executable).parent
REDIS = os.environ.get("CAIRN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PAGE = 1000


def fresh_database(name: str) -> str:
    return scratch.fresh_database(name)


def report(label: str, count: int, seconds: float, target: float | None, unit: str) -> None:
    rate = count / seconds if seconds else float("inf")
    verdict = "" if target is None else ("  OK" if rate >= target else "  BELOW TARGET")
    goal = f" (target >= {target:,.0f})" if target else ""
    print(f"{label:<42} {count:>8,} {unit} in {seconds:7.2f} s = {rate:>10,.0f} {unit}/s{goal}{verdict}", flush=True)


def item(i: int, **extra) -> dict:
    return {
        "external_id": {"source": "bench", "id": f"ci-{i}"},
        "name": f"host-{i:06d}",
        "ci_class": "server",
        "status": "deployed",
        "serial_number": f"SN{i:08d}",
        "vendor": "Dell",
        "attributes": {
            "hostname": f"host-{i:06d}",
            "ip_addresses": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"],
        },
        **extra,
    }


def bench_bulk(client, headers, count: int) -> None:
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        body = [item(i) for i in range(start, min(start + PAGE, count))]
        response = client.post("/api/v1/cis/bulk", headers=headers, json=body)
        assert response.status_code == 200 and all(r["status"] == "created" for r in response.json), response.json[:2]
    report("bulk create (POST /cis/bulk)", count, time.perf_counter() - started, 2000, "CIs")
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        body = [item(i, description="patched") for i in range(start, min(start + PAGE, count))]
        response = client.post("/api/v1/cis/bulk", headers=headers, json=body)
        assert all(r["status"] == "updated" for r in response.json), response.json[:2]
    report("bulk upsert, every CI changed", count, time.perf_counter() - started, None, "CIs")
    started = time.perf_counter()
    for start in range(0, count, PAGE):
        body = [item(i, description="patched") for i in range(start, min(start + PAGE, count))]
        response = client.post("/api/v1/cis/bulk", headers=headers, json=body)
        assert all(r["status"] == "unchanged" for r in response.json), response.json[:2]
    report("bulk upsert, nothing changed", count, time.perf_counter() - started, None, "CIs")


def bench_relationships(client, headers, ci_count: int, count: int) -> None:
    """Load ``ci_count`` CIs, then ``count`` relationships between them (each CI depends on a few
    others), 1,000 a request; the rate for every 50,000, which must stay flat as the table grows."""
    ids: list[int] = []
    started = time.perf_counter()
    for start in range(0, ci_count, PAGE):
        body = [
            item(i, external_id={"source": "relbench", "id": f"ci-{i}"}, serial_number=f"RB{i:08d}")
            for i in range(start, min(start + PAGE, ci_count))
        ]
        response = client.post("/api/v1/cis/bulk", headers=headers, json=body)
        assert response.status_code == 200, response.json
        ids += [r["id"] for r in response.json]
    report("CIs for the relationship load", ci_count, time.perf_counter() - started, None, "CIs")
    offsets = [1, 7, 31, 101, 331, 1009, 3001, 9001]
    assert count <= ci_count * len(offsets), "more relationships than distinct pairs"

    def relationship(k: int) -> dict:
        source, offset = k % ci_count, offsets[k // ci_count]
        return {"source_id": ids[source], "type": "depends_on", "target_id": ids[(source + offset) % ci_count]}

    step, started = 50_000, time.perf_counter()
    window, window_start = time.perf_counter(), 0
    for start in range(0, count, PAGE):
        body = [relationship(k) for k in range(start, min(start + PAGE, count))]
        response = client.post("/api/v1/relationships/bulk", headers=headers, json=body)
        assert response.status_code == 200, response.json
        assert all(r["status"] == "created" for r in response.json), response.json[:2]
        done = start + len(body)
        if done % step == 0 or done == count:
            now = time.perf_counter()
            report(f"  relationships {window_start:,}-{done:,}", done - window_start, now - window, 5000, "rels")
            window, window_start = now, done
    report("relationships (POST /relationships/bulk)", count, time.perf_counter() - started, 5000, "rels")
    started = time.perf_counter()
    sample = min(count, 50_000)
    for start in range(0, sample, PAGE):
        body = [relationship(k) for k in range(start, min(start + PAGE, sample))]
        response = client.post("/api/v1/relationships/bulk", headers=headers, json=body)
        assert all(r["status"] == "unchanged" and r["id"] for r in response.json), response.json[:2]
    report("relationships sent again (all unchanged)", sample, time.perf_counter() - started, None, "rels")


def bench_discovery(app, count: int) -> None:
    from cairn.audit.context import Actor, acting_as
    from cairn.db import db
    from integrations import discovery

    existing = int(count * 0.8)
    offset = 10_000_000

    def discovered(i: int, ip_octet: int) -> dict:
        return {
            "ci_class": "server",
            "hostname": f"disc-{i:07d}",
            "serial_number": f"DS{i:09d}",
            "vendor": "HPE",
            "mac_addresses": [f"02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"],
            "ip_addresses": [f"10.{ip_octet}.{i >> 8 & 255}.{i & 255}"],
            "attributes": {"os": "Linux", "os_version": "6.1"},
        }

    with app.app_context(), acting_as(Actor("bench:discovery")):
        seed = [discovered(offset + i, 1) for i in range(existing)]
        for start in range(0, len(seed), 10_000):
            discovery.reconcile("agent", seed[start : start + 10_000])
            db.session.commit()
        # 80% known (a quarter of them with a new address), 20% new
        items = [discovered(offset + i, 2 if i % 4 == 0 else 1) for i in range(existing)]
        items += [discovered(offset + existing + i, 1) for i in range(count - existing)]
        started = time.perf_counter()
        outcome = discovery.reconcile("agent", items)
        db.session.commit()
        seconds = time.perf_counter() - started
        db.session.remove()
    counts = outcome["counts"]
    report("discovery reconciliation (80% known)", count, seconds, 1000, "items")
    print(f"    counts: {dict(sorted(counts.items()))}", flush=True)


def bench_feed(client, headers) -> None:
    started = time.perf_counter()
    after, total = "", 0
    while True:
        response = client.get("/api/v1/changelog", headers=headers, query_string={"after": after, "limit": 1000})
        page = response.json
        total += len(page["changes"])
        if not page["changes"]:
            break
        after = page["next_cursor"]
    report("change feed (GET /changelog, limit=1000)", total, time.perf_counter() - started, 10_000, "changes")


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Receiver.lock:
            _Receiver.count += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def bench_webhooks(app, client, headers, count: int, database_url: str, instance: str) -> None:
    from cairn.db import db
    from integrations.webhooks import services

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    queue = f"bench-sync-{os.getpid()}"  # its own queue: other benchmarks may share the Redis database
    app.config.update(REDIS_URL=REDIS, CAIRN_QUEUE_NAME=queue, CAIRN_WEBHOOK_ALLOW_PRIVATE="1")
    hook = client.post(
        "/api/v1/webhooks",
        headers=headers,
        json={"url": f"http://127.0.0.1:{server.server_port}/", "events": ["ci.created", "ci.updated"]},
    )
    assert hook.status_code == 201, hook.json
    for start in range(0, count, PAGE):
        body = [item(i, description="hooked") for i in range(start, min(start + PAGE, count))]
        client.post("/api/v1/cis/bulk", headers=headers, json=body)
    with app.app_context():
        started = time.perf_counter()
        result = services.sweep()
        dispatched = time.perf_counter() - started
        db.session.remove()
    report("webhook dispatch (change log -> deliveries)", result["dispatched"], dispatched, None, "deliveries")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "CAIRN_QUEUE_NAME": queue,
        "CAIRN_INSTANCE_PATH": instance,
        "CAIRN_WEBHOOK_ALLOW_PRIVATE": "1",
        "CAIRN_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    workers = [
        subprocess.Popen([str(BIN / "cairn"), "worker", "--burst"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    for worker in workers:
        worker.wait(timeout=600)
    seconds = time.perf_counter() - started
    server.shutdown()
    report("webhook deliveries (2 RQ workers, incl. start)", _Receiver.count, seconds, 200, "deliveries")


def bench_edit(client, headers, count: int) -> None:
    """Bulk edit (PATCH /cis, PATCH /tickets), 1,000 objects a call: by ids and by filter."""
    bodies = [item(i) for i in range(count)]
    for start in range(0, count, PAGE):
        client.post("/api/v1/cis/bulk", headers=headers, json=bodies[start : start + PAGE])
    listed = []
    page = 1
    while len(listed) < count:
        answer = client.get("/api/v1/cis", headers=headers, query_string={"page_size": 100, "page": page, "sort": "id"})
        if not answer.json:
            break
        listed.extend(r["id"] for r in answer.json)
        page += 1
    ids = listed[:count]
    for label, value in (("by ids", "edited"), ("by ids, again", "edited2")):
        started = time.perf_counter()
        for start in range(0, len(ids), PAGE):
            body = {"ids": ids[start : start + PAGE], "set": {"description": value}}
            response = client.patch("/api/v1/cis", headers=headers, json=body)
            assert response.status_code == 200 and all(r["status"] == "updated" for r in response.json), response.json
        report(f"bulk edit CIs {label} (PATCH /cis)", len(ids), time.perf_counter() - started, 2000, "CIs")
    started = time.perf_counter()
    response = client.patch(
        "/api/v1/cis", headers=headers, json={"filter": {"q": "host-0001"}, "set": {"criticality": "high"}}
    )
    assert response.status_code == 200, response.json
    report("bulk edit CIs by filter (PATCH /cis)", len(response.json), time.perf_counter() - started, 2000, "CIs")
    tickets = []
    for n in range(min(count, 2000)):
        body = {"kind": "incident", "title": f"t{n}", "description": "bench", "impact": 3, "urgency": 3}
        made = client.post("/api/v1/tickets", headers=headers, json=body)
        tickets.append(made.json["id"])
    started = time.perf_counter()
    for start in range(0, len(tickets), PAGE):
        body = {"ids": tickets[start : start + PAGE], "set": {"urgency": 1}}
        response = client.patch("/api/v1/tickets", headers=headers, json=body)
        assert response.status_code == 200 and all(r["status"] == "updated" for r in response.json), response.json[:2]
    report("bulk edit tickets by ids (PATCH /tickets)", len(tickets), time.perf_counter() - started, 2000, "tickets")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cis", type=int, default=100_000)
    parser.add_argument("--discovery", type=int, default=50_000)
    parser.add_argument("--deliveries", type=int, default=5_000)
    parser.add_argument("--rel-cis", type=int, default=100_000)
    parser.add_argument("--relationships", type=int, default=400_000)
    parser.add_argument("--edit", type=int, default=10_000, help="CIs loaded, then bulk edited 1,000 a call")
    parser.add_argument(
        "--only",
        default="bulk,discovery,feed,webhooks,relationships,edit,latency",
        help="latency: write-to-delivery in the deployed topology (benchmarks/deployed.py)",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if "latency" in parts:
        from deployed import webhook_latency

        webhook_latency(200.0, 20.0)
        parts.discard("latency")
        if not parts:
            return

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.config import Config

    database_url = fresh_database(f"cairn_bench_sync_{os.getpid()}")
    instance = tempfile.mkdtemp(prefix="cairn-bench-")
    app = create_app(
        Config(SQLALCHEMY_DATABASE_URI=database_url, INSTANCE_PATH=Path(instance), REDIS_URL=None, LOG_LEVEL="WARNING")
    )
    with app.app_context():
        upgrade(revision="heads")
        from cairn.auth.services import create_token, create_user
        from cairn.db import db

        user = create_user("bench@example.com", "integration", "bench")
        _, token = create_token(user)
        db.session.commit()
        db.session.remove()
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    print(f"PostgreSQL, {os.cpu_count()} cores", flush=True)
    if "bulk" in parts:
        bench_bulk(client, headers, args.cis)
    if "discovery" in parts:
        bench_discovery(app, args.discovery)
    if "feed" in parts:
        bench_feed(client, headers)
    if "webhooks" in parts:
        bench_webhooks(app, client, headers, args.deliveries, database_url, instance)
    if "relationships" in parts:
        bench_relationships(client, headers, args.rel_cis, args.relationships)
    if "edit" in parts:
        bench_edit(client, headers, args.edit)


if __name__ == "__main__":
    main()
