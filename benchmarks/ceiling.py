"""Cairn against its ceiling: a bare app answering the same questions from the same rows, side by side.

    .venv/bin/python benchmarks/ceiling.py [--seconds 20] [--rounds 5] [--connections 8] [--only get,list,...] [--keep]

One scratch PostgreSQL database with ~5,000 CIs (the layered estate of benchmarks/impact.py at "5k",
20,000 relationships) and 300 tickets. Two servers under the same gunicorn (2 sync workers,
benchmarks/api.py's start_server) on the same database:
- Cairn (wsgi:app) with an admin token;
- the ceiling (``ceiling:bare``, this file): Flask + psycopg + orjson, no ORM, no schemas, no auth: one
  SELECT per answer; the list also runs the count the X-Pagination header needs; PATCH and create run the
  same UPDATE/INSERT plus one change-log row in one transaction; the impact is one recursive CTE.
Each operation runs on both with ``wrk`` (Debian's package; Lua scripts give the auth header, random ids
and bodies) at --connections connections after a warm-up, in --rounds alternating rounds (ceiling then
Cairn, then Cairn then ceiling, ...; --seconds per server over all rounds), so that a neighbour's burst
or the database's drift hits both alike. The table shows the round with the median ratio Cairn /
ceiling (its req/s, p50 and p99) and the spread of the ratios over the rounds (targets from issue 15),
and beside it what each server spent per request: the CPU of its gunicorn workers and of PostgreSQL's
processes (ms per request, and the ratio ceiling / Cairn, the median over the rounds). On a machine
whose neighbours steal time in bursts, that ratio holds steadier than the ratio of throughputs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # before benchmarks/ (whose tickets.py and web.py share names with packages)
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

DB_NAME = "cairn_bench_ceiling"
TARGETS = {"get": 0.50, "list": 0.35, "patch": 0.35, "create": 0.35}
LABELS = {
    "get": "get by id",
    "list": "filtered list of 50 + total",
    "patch": "PATCH",
    "create": "create",
    "impact": "impact, mid-level CI",
    "ticket": "ticket JSON",
}
CLASSES = ["server", "virtual_machine", "laptop", "network_switch", "database", "application"]

# ------------------------------------------------------------------------------ the bare app
# Imported by gunicorn as ceiling:bare (DATABASE_URL from the environment, a libpq URL).

_CI_COLUMNS = (
    "id, name, ci_class, status, criticality, asset_tag, vendor, serial_number, model, description, "
    "owner_team_id, assigned_to_id, location_id, purchase_date, purchase_cost, currency, warranty_expires, "
    "attributes, version, created_at, updated_at"
)


def _make_bare():
    import orjson
    import psycopg
    from flask import Flask, Response, request
    from psycopg.rows import dict_row
    from psycopg.types.json import Jsonb

    from relations.types import BUILTIN_TYPES, SOURCE_DEPENDS_ON_TARGET

    app = Flask("ceiling")
    url = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
    state: dict = {}

    def conn():
        if "conn" not in state:
            state["conn"] = psycopg.connect(url, row_factory=dict_row, autocommit=True)
        return state["conn"]

    def transaction():
        return conn().transaction()

    def dumps(value, status=200, headers=None):
        body = orjson.dumps(value, default=str)
        return Response(body, status, headers=headers, mimetype="application/json")

    @app.get("/api/v1/cis/<int:ci_id>")
    def get_ci(ci_id):
        row = conn().execute(f"SELECT {_CI_COLUMNS} FROM ci WHERE id = %s", (ci_id,)).fetchone()
        if row is None:
            return dumps({"status": 404}, 404)
        return dumps(row, headers={"ETag": f'"{row["version"]}"'})

    @app.get("/api/v1/cis")
    def list_cis():
        args = request.args
        page, size = int(args.get("page", 1)), int(args.get("page_size", 50))
        where = " AND ".join(f"{key} = %({key})s" for key in ("ci_class", "status") if key in args)
        where = f"WHERE {where}" if where else ""
        params = {key: args[key] for key in ("ci_class", "status") if key in args}
        c = conn()
        total = c.execute(f"SELECT count(*) AS n FROM ci {where}", params).fetchone()["n"]
        rows = c.execute(
            f"SELECT {_CI_COLUMNS} FROM ci {where} ORDER BY name, id LIMIT %(size)s OFFSET %(offset)s",
            {**params, "size": size, "offset": (page - 1) * size},
        ).fetchall()
        pages = -(-total // size)
        return dumps(rows, headers={"X-Pagination": orjson.dumps({"total": total, "total_pages": pages,
                                                                  "page": page}).decode()})  # fmt: skip

    def _logged(c, ci_id, action, changes):
        c.execute(
            "INSERT INTO change_log (txid, at, actor, actor_id, request_id, object_type, object_id, action, "
            "summary, changes) VALUES (txid_current(), now(), 'ceiling', NULL, NULL, 'ci', %s, %s, '', %s)",
            (ci_id, action, Jsonb(changes)),
        )

    @app.patch("/api/v1/cis/<int:ci_id>")
    def patch_ci(ci_id):
        data = orjson.loads(request.get_data())
        with transaction():
            c = conn()
            row = c.execute(
                f"UPDATE ci SET description = %s, version = version + 1, updated_at = now() WHERE id = %s "
                f"RETURNING {_CI_COLUMNS}",
                (data["description"], ci_id),
            ).fetchone()
            _logged(c, ci_id, "update", {"description": [None, data["description"]]})
        return dumps(row, headers={"ETag": f'"{row["version"]}"'})

    @app.post("/api/v1/cis")
    def create_ci():
        data = orjson.loads(request.get_data())
        with transaction():
            c = conn()
            row = c.execute(
                "INSERT INTO ci (name, ci_class, status, criticality, vendor, description, attributes, version, "
                f"created_at, updated_at) VALUES (%s, %s, %s, %s, '', '', %s, 1, now(), now()) RETURNING {_CI_COLUMNS}",
                (data["name"], data["ci_class"], data.get("status", "planned"), data.get("criticality", "medium"),
                 Jsonb(data.get("attributes", {}))),
            ).fetchone()  # fmt: skip
            _logged(c, row["id"], "create", {k: [None, v] for k, v in data.items()})
        return dumps(row, 201, headers={"ETag": f'"{row["version"]}"'})

    forward = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] == SOURCE_DEPENDS_ON_TARGET)
    reverse = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] != SOURCE_DEPENDS_ON_TARGET)
    from impact import CTE_PG

    impact_sql = (
        f"SELECT ci.id, ci.name, ci.ci_class, ci.criticality, w.min AS depth FROM ({CTE_PG}) w "
        "JOIN ci ON ci.id = w.id ORDER BY w.min, ci.id"
    ).format(fwd=forward, rev=reverse)
    impact_sql = impact_sql.replace(":root", "%(root)s").replace(":maxd", "%(maxd)s")

    @app.get("/api/v1/cis/<int:ci_id>/impact")
    def impact(ci_id):
        rows = conn().execute(impact_sql, {"root": ci_id, "maxd": 10}).fetchall()
        impacted = [{"ci": {k: r[k] for k in ("id", "name", "ci_class", "criticality")}, "depth": r["depth"],
                     "state": "down"} for r in rows]  # fmt: skip
        return dumps({"root": ci_id, "count": len(impacted), "impacted": impacted})

    @app.get("/api/v1/tickets/<int:ticket_id>")
    def ticket(ticket_id):
        row = (
            conn()
            .execute(
                "SELECT t.*, ARRAY(SELECT ci_id FROM ticket_ci WHERE ticket_id = t.id AND removed_at IS NULL "
                "ORDER BY ci_id) AS ci_ids FROM ticket t WHERE t.id = %s",
                (ticket_id,),
            )
            .fetchone()
        )
        return dumps(row, headers={"ETag": f'"{row["version"]}"'})

    return app


def __getattr__(name):  # the bare app is built only when gunicorn asks for it
    if name == "bare":
        return _make_bare()
    raise AttributeError(name)


# ------------------------------------------------------------------------------ the estate
def build(url: str) -> dict:
    """Migrate, load ~5,000 CIs with 20,000 relationships and 300 tickets; returns ids and a token."""
    from flask_migrate import upgrade
    from impact import CTE_PG, SEED, generate
    from sqlalchemy import insert, text

    from cairn.app import create_app
    from cairn.audit.context import Actor, acting_as
    from cairn.auth.services import create_token, create_user
    from cairn.config import Config
    from cairn.db import db, utcnow
    from cmdb.models import ConfigurationItem
    from relations.services import bulk_create_relationships
    from relations.types import BUILTIN_TYPES, SOURCE_DEPENDS_ON_TARGET
    from tickets.services import create_ticket

    app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, LOG_LEVEL="WARNING", REDIS_URL=None,
                            INSTANCE_PATH=Path(tempfile.gettempdir()) / "cairn-ceiling"))  # fmt: skip
    cis, edges, _cnt, start = generate("5k")
    forward = {t["name"] for t in BUILTIN_TYPES if t["impact"] == SOURCE_DEPENDS_ON_TARGET}
    rng = random.Random(SEED)
    with app.app_context(), acting_as(Actor("benchmark")):
        upgrade(revision="heads")
        db.create_all()
        user = create_user("bench@example.com", "admin", "Bench")
        _, token = create_token(user, "bench")
        now = utcnow()
        rows = [
            {"name": f"{kind}-{i:05}", "ci_class": cls, "status": "deployed" if i % 3 else "in_stock",
             "criticality": "medium", "vendor": "", "description": "", "version": 1, "created_at": now,
             "updated_at": now, "asset_tag": f"TAG-{i:05}",
             "attributes": {"min_members_up": 12} if cls == "cluster" else {}}
            for i, (kind, cls) in enumerate(cis)
        ]  # fmt: skip
        table = ConfigurationItem.__table__
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = list(db.session.execute(returning, rows).scalars())
        items = []
        for (a, b), type_ in edges.items():
            src, dst = (a, b) if type_ in forward else (b, a)
            items.append({"source_id": ids[src], "target_id": ids[dst], "type": type_})
        bulk_create_relationships(items)
        tickets = [
            create_ticket({"kind": "incident", "title": f"ticket {n}", "description": "bench", "impact": 2,
                           "urgency": 2, "ci_ids": rng.sample(ids, 3)}, user).id
            for n in range(300)
        ]  # fmt: skip
        db.session.commit()
        fwd = ", ".join(f"'{t}'" for t in sorted(forward))
        rev = ", ".join(f"'{t['name']}'" for t in BUILTIN_TYPES if t["impact"] != SOURCE_DEPENDS_ON_TARGET)
        cte = text(CTE_PG.format(fwd=fwd, rev=rev))
        vm_first = ids[start["vm"]]
        candidates = rng.sample(range(vm_first, vm_first + _cnt["vm"]), 60)
        counts = {ci: len(db.session.execute(cte, {"root": ci, "maxd": 10}).all()) for ci in candidates}
        mid = min(counts, key=lambda ci: abs(counts[ci] - 15))
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return {"token": token, "first": ids[0], "last": ids[-1], "tickets": [tickets[0], tickets[-1]],
            "mid": mid, "mid_impacted": counts[mid]}  # fmt: skip


# ------------------------------------------------------------------------------ the load
LUA_COMMON = """
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
math.randomseed(%(seed)d)
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"non2xx": %%d, "errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""

REQUESTS = {
    "get": 'return wrk.format("GET", "/api/v1/cis/" .. math.random(%(first)d, %(last)d))',
    "list": (
        'local classes = {"virtual_machine", "container", "application", "database"}\n'
        '  return wrk.format("GET", "/api/v1/cis?ci_class=" .. classes[math.random(4)] .. '
        '"&status=deployed&sort=name&page=" .. math.random(1, 5) .. "&page_size=50")'
    ),
    "patch": (
        'return wrk.format("PATCH", "/api/v1/cis/" .. math.random(%(first)d, %(last)d), nil, '
        "'{\"description\": \"bench ' .. math.random(1, 1000000000) .. '\"}')"
    ),
    "create": (
        "counter = counter + 1\n"
        '  return wrk.format("POST", "/api/v1/cis", nil, \'{"name": "new-%(tag)s-\' .. math.random(1, 1000000000) '
        '.. "-" .. counter .. \'", "ci_class": "laptop", "status": "in_stock", "criticality": "low", '
        '"attributes": {"hostname": "h\' .. counter .. \'"}}\')'
    ),
    "impact": 'return wrk.format("GET", "/api/v1/cis/%(mid)d/impact")',
    "ticket": 'return wrk.format("GET", "/api/v1/tickets/" .. math.random(%(t0)d, %(t1)d))',
}


def wrk(port: int, op: str, estate: dict, seconds: float, connections: int, workdir: Path, tag: str) -> dict:
    params = {"token": estate["token"], "seed": random.randrange(1 << 30), "first": estate["first"],
              "last": estate["last"], "mid": estate["mid"], "t0": estate["tickets"][0], "t1": estate["tickets"][1],
              "tag": tag}  # fmt: skip
    script = workdir / f"{op}-{tag}.lua"
    script.write_text(LUA_COMMON % params + "request = function()\n  " + REQUESTS[op] % params + "\nend\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"wrk failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def measured(server: tuple, op: str, estate: dict, seconds: float, connections: int, workdir: Path, tag: str) -> dict:
    """``wrk`` against one server, with the CPU the server spent per request: its gunicorn workers'
    and every PostgreSQL process's (only this server loads the database meanwhile), in ms."""
    process, port = server
    before = _cpu_seconds(process.pid)
    result = wrk(port, op, estate, seconds, connections, workdir, tag)
    result["cpu_ms"] = (_cpu_seconds(process.pid) - before) * 1000 / max(1, result["requests"])
    return result


def _cpu_seconds(master: int) -> float:
    """User and system CPU of ``master``'s children (gunicorn's workers) and of PostgreSQL's processes."""
    return sum(cpu_split(master))


def cpu_split(master: int) -> tuple[float, float]:
    """User and system CPU seconds of ``master``'s children (gunicorn's workers), and of PostgreSQL's
    processes."""
    import pwd

    tick = os.sysconf("SC_CLK_TCK")
    try:
        postgres = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        postgres = None
    children = set(Path(f"/proc/{master}/task/{master}/children").read_text().split())
    workers = database = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            owned_by_postgres = postgres is not None and entry.stat().st_uid == postgres
            if entry.name in children or owned_by_postgres:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])  # utime, stime
                if entry.name in children:
                    workers += ticks
                else:
                    database += ticks
        except (FileNotFoundError, ProcessLookupError):
            continue
    return workers / tick, database / tick


def main() -> None:
    from api import free_port, start_server
    from scratch import drop_database, fresh_database

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds per server and operation, over all rounds")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per operation (the median is shown)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", default=",".join(LABELS), help="operations, comma-separated: " + ",".join(LABELS))
    parser.add_argument("--keep", action="store_true", help=f"keep the database {DB_NAME} (and reuse it if there)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="cairn-ceiling-"))
    state = workdir.parent / f"{DB_NAME}.json"
    if args.keep and state.exists():
        estate = json.loads(state.read_text())
        url = estate["url"]
    else:
        url = fresh_database(DB_NAME)
        t0 = time.perf_counter()
        estate = build(url) | {"url": url}
        print(f"estate built in {time.perf_counter() - t0:.1f} s: CIs {estate['first']}..{estate['last']}, "
              f"mid-level CI {estate['mid']} ({estate['mid_impacted']} impacted)", file=sys.stderr)  # fmt: skip
        if args.keep:
            state.write_text(json.dumps(estate))
    env = {**os.environ, "DATABASE_URL": url, "CAIRN_INSTANCE_PATH": str(workdir), "CAIRN_LOG_LEVEL": "WARNING",
           "SECRET_KEY": "bench"}  # fmt: skip
    env.pop("REDIS_URL", None)
    servers = {}
    try:
        port = free_port()
        servers["ceiling"] = (start_server({**env, "PYTHONPATH": str(ROOT)}, port, app="ceiling:bare", cwd=HERE), port)
        port = free_port()
        servers["cairn"] = (start_server(env, port), port)
        rows = []
        for op in args.only.split(","):
            for name in ("ceiling", "cairn"):
                wrk(servers[name][1], op, estate, args.warmup, args.connections, workdir, f"{name}w")
            rounds = []
            for turn in range(args.rounds):  # alternating which goes first, so drift hits both alike
                order = ("ceiling", "cairn") if turn % 2 == 0 else ("cairn", "ceiling")
                seconds = args.seconds / args.rounds
                rounds.append({name: measured(servers[name], op, estate, seconds, args.connections, workdir,
                                              f"{name}{turn}") for name in order})  # fmt: skip
            rows.append((op, _median_round(rounds)))
    finally:
        for server, _ in servers.values():
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if not args.keep:
            drop_database(DB_NAME)
        shutil.rmtree(workdir, ignore_errors=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"Cairn vs ceiling on PostgreSQL: gunicorn -w 2 (sync) each, wrk -c {args.connections}, {args.rounds} "
          f"alternating rounds of {args.seconds / args.rounds:g} s per figure (the median round shown), "
          f"{estate['last'] - estate['first'] + 1:,} CIs, {os.cpu_count()} CPUs, "
          f"load average {' '.join(load)}")  # fmt: skip
    print(f"{'operation':<28} {'ceiling req/s':>13} {'p50/p99 ms':>13} {'Cairn req/s':>11} {'p50/p99 ms':>13} "
          f"{'ratio':>6} {'target':>9} {'CPU ms/req':>12} {'CPU ratio':>9}  rounds")  # fmt: skip
    for op, result in rows:
        ceiling, cairn = result["ceiling"], result["cairn"]
        ratio = cairn["rps"] / ceiling["rps"]
        target = TARGETS.get(op)
        mark = "" if target is None else f"≥ {target:.0%}" + (" ok" if ratio >= target else " NO")
        bad = ceiling["non2xx"] + ceiling["errors"] + cairn["non2xx"] + cairn["errors"]
        spread = f"{min(result['ratios']):.0%}–{max(result['ratios']):.0%}"
        cpu = f"{ceiling['cpu_ms']:.2f}/{cairn['cpu_ms']:.2f}"
        print(f"{LABELS[op]:<28} {ceiling['rps']:>13,.0f} {_ms(ceiling):>13} {cairn['rps']:>11,.0f} {_ms(cairn):>13} "
              f"{ratio:>6.0%} {mark:>9} {cpu:>12} {result['cpu_ratio']:>9.0%}  {spread}"
              + (f"  ({bad} failed or non-2xx)" if bad else ""))  # fmt: skip


def _median_round(rounds: list[dict]) -> dict:
    """The round whose ratio Cairn / ceiling is the median (its own figures kept together), with
    the ratio of every round for the record."""
    ranked = sorted(rounds, key=lambda r: r["cairn"]["rps"] / r["ceiling"]["rps"])
    chosen = ranked[len(ranked) // 2]
    cpu_ratios = sorted(r["ceiling"]["cpu_ms"] / r["cairn"]["cpu_ms"] for r in rounds)
    return chosen | {
        "ratios": [r["cairn"]["rps"] / r["ceiling"]["rps"] for r in rounds],
        "cpu_ratio": cpu_ratios[len(cpu_ratios) // 2],
    }


def _ms(result: dict) -> str:
    return f"{result['p50_us'] / 1000:.1f}/{result['p99_us'] / 1000:.1f}"


if __name__ == "__main__":
    main()
