"""Web desk latencies on the 100k-CI estate (PostgreSQL): server time of the pages a technician opens.

    .venv/bin/python benchmarks/web.py [--cis 100000] [--tickets 100000] [--runs 200] [--keep]
    .venv/bin/python benchmarks/web.py --reuse cairn_bench_web      # the estate a --keep run left
    .venv/bin/python benchmarks/web.py --reuse cairn_bench_web --only typeahead --profile typeahead --sql

The estate is benchmarks/tickets.py's (its ``load``: CIs, a dependency graph, tickets skewed over the
CIs with their change-log rows), migrated with ``flask db upgrade heads``, plus what the desk shows:

- teams and agents (one of them signs in), employees with a laptop each (search by a person's name);
- the open tickets made recent and spread over teams and agents, with SLA deadlines (the dashboard's
  queues; some about to breach), requesters on every ticket;
- one laptop with a long timeline: thousands of change-log rows of its own, hundreds of tickets,
  five holders; its holder's name is what the searches type;
- a ticket on that laptop with comments, watchers and a history (the ticket page).

A technician signs in through the sign-in form (CSRF token, session cookie) with Flask's test client
on the real app (create_app on the scratch database): server time in-process, no network, as
benchmarks/tickets.py. Each page is warmed up, then requested ``--runs`` times; every answer must be
200 and hold what the page must show (else the row says FAILED, with the error, and the run exits 1:
a broken or stubbed page never yields a fast figure). Printed per page: p50, p95, the target (p95 <=
100 ms for pages, <= 50 ms for the typeahead), SQL statements per request, the page's size, and the
machine's load average at start and end (the machine has 2 cores shared with others).

``--profile NAME`` runs cProfile over the rows whose name contains NAME; ``--sql`` prints one
request's statements, slowest first, for the rows selected by ``--only`` (``--explain``: with the
plans of the three slowest).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scratch  # noqa: E402

from benchmarks.tickets import bulk, load  # noqa: E402

DB_NAME = "cairn_bench_web"
PAGE_TARGET_MS = 100.0
TYPEAHEAD_TARGET_MS = 50.0
WARM_UP = 5

PASSWORD = "correct horse battery staple"
AGENT_EMAIL = "agent@example.com"
AGENT_NAME = "Alex Morgan"
# The person whose laptop has the long timeline; the searches type her surname.
PERSON_NAME = "Henrietta Wojciechowska"
PERSON_EMAIL = "henrietta.wojciechowska@example.com"
SURNAME = "wojciechowska"
LONG_TAG = "AT-LONG-TIMELINE"
TICKET_TITLE = "Laptop fan loud and hot after the BIOS update"
TEAMS = ("Service Desk", "End-user computing", "Network", "Databases", "Applications")
N_AGENTS = 20
# fmt: off
FIRST = (
    "Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Karin", "Liam",
    "Maria", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tara", "Umar", "Vera", "Walter", "Yara", "Zoe", "Helen",
    "Henry", "Hannah", "Igor", "Julia", "Kevin", "Lena", "Marco", "Nina", "Oscar", "Petra", "Quinn", "Rita",
    "Simon", "Theo", "Ulla"
)
LAST = (
    "Smith", "Meyer", "Rossi", "Garcia", "Novak", "Jensen", "Dubois", "Silva", "Kowalski", "Nagy", "Popescu",
    "Horvat", "Berg", "Laine", "Murphy", "Costa", "Schmidt", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann",
    "Klein", "Wolf", "Neumann", "Braun", "Kruger", "Hartmann", "Lange", "Werner", "Lehmann", "Walsh", "Byrne",
    "Kelly", "Ryan", "Dunn", "Moreau", "Lambert", "Bonnet"
)
# fmt: on
_NUMBER = re.compile(r"\b(?:INC|REQ|PRB|CHG)\d{7}\b")


# ---------------------------------------------------------------------------------------------
# The estate


def furnish(db, n_tickets: int, n_employees: int, n_changes: int, n_linked: int, rng: random.Random) -> None:
    """What the desk needs on top of benchmarks/tickets.py's estate (see the module's docstring)."""
    from cairn.audit.models import ChangeLog, ChangeLogCI
    from cairn.auth.models import Team, User
    from cairn.auth.services import create_user
    from cmdb.models import CIAssignment
    from tickets.models import TicketCI, TicketComment, TicketWatcher

    now = datetime.now(UTC)

    # --- Teams and agents: the one who signs in is in the first two teams.
    agent = create_user(AGENT_EMAIL, "agent", AGENT_NAME, password=PASSWORD)
    agents = [agent] + [
        create_user(f"agent{i}@example.com", "agent", f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        for i in range(1, N_AGENTS)
    ]
    teams = [Team(name=name, email=f"{name.lower().replace(' ', '-')}@example.com") for name in TEAMS]
    db.session.add_all(teams)
    db.session.flush()
    agent.teams = teams[:2]
    for i, other in enumerate(agents[1:]):
        other.teams = [teams[i % len(teams)]]
    db.session.commit()
    team_ids, agent_ids = [t.id for t in teams], [a.id for a in agents]
    conn = db.session.connection()

    # --- Employees (requesters), the person first.
    people = [(PERSON_NAME, PERSON_EMAIL)]
    for i in range(1, n_employees):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append((f"{first} {last}", f"{first}.{last}.{i}@example.com".lower()))
    bulk(
        conn,
        User.__table__,
        [
            {"email": email, "name": name, "role": "requester", "active": True, "locale": "en", "timezone": "UTC",
             "version": 1, "created_at": now - timedelta(days=900), "updated_at": now - timedelta(days=900)}
            for name, email in people
        ],
    )  # fmt: skip
    by_email = dict(conn.execute(select(User.email, User.id).where(User.role == "requester")).tuples().all())
    employee_ids = [by_email[email] for _, email in people]
    person_id = employee_ids[0]

    # --- Tickets: requesters, teams and assignees on all; the open ones recent, with their SLA.
    conn.execute(
        text(
            "UPDATE ticket SET requester_id = (CAST(:employees AS int[]))[1 + (id * 7919) % :ne],"
            " team_id = (CAST(:teams AS int[]))[1 + (id / 10) % :nt],"
            " assignee_id = CASE WHEN id % 10 < 7 THEN (CAST(:agents AS int[]))[1 + (id * 31) % :na] END"
        ),
        {"employees": employee_ids, "ne": len(employee_ids), "teams": team_ids, "nt": len(team_ids),
         "agents": agent_ids, "na": len(agent_ids)},
    )  # fmt: skip
    conn.execute(
        text(
            "UPDATE ticket SET created_at = LOCALTIMESTAMP - ((id * 37) % 20160) * interval '1 minute',"
            " state = CASE WHEN kind IN ('incident', 'request')"
            "   THEN (ARRAY['new', 'in_progress', 'in_progress', 'on_hold'])[1 + id % 4] ELSE state END"
            " WHERE id <= :n AND state NOT IN ('resolved', 'closed', 'canceled')"
        ),
        {"n": n_tickets},
    )
    conn.execute(
        text(
            "UPDATE ticket SET updated_at = created_at + interval '10 minutes',"
            " acknowledged_at = CASE WHEN state <> 'new' THEN created_at + interval '10 minutes' END,"
            " response_due = created_at + interval '1 hour', resolution_due = created_at + interval '3 days',"
            " sla_breached = created_at + interval '3 days' < LOCALTIMESTAMP"
            " WHERE id <= :n AND state NOT IN ('resolved', 'closed', 'canceled')"
        ),
        {"n": n_tickets},
    )

    # --- CIs: infrastructure owned by teams, some in maintenance or retired; a laptop per employee.
    conn.execute(
        text(
            "UPDATE ci SET owner_team_id = (CAST(:teams AS int[]))[1 + id % :nt],"
            " updated_at = LOCALTIMESTAMP - (id % 2000) * interval '1 hour',"
            " status = CASE WHEN id % 25 = 0 THEN 'in_maintenance' WHEN id % 40 = 0 THEN 'retired' ELSE status END"
            " WHERE ci_class <> 'laptop'"
        ),
        {"teams": team_ids, "nt": len(team_ids)},
    )
    laptops = list(conn.scalars(text("SELECT id FROM ci WHERE ci_class = 'laptop' ORDER BY id DESC")))
    # the last laptops carry no tickets (benchmarks/tickets.py links tickets to the first half only)
    held = laptops[: len(employee_ids)]
    hosts = ["lt-" + email.split("@")[0].replace(".", "-") for _, email in people[: len(held)]]
    conn.execute(
        text(
            "UPDATE ci SET assigned_to_id = e.uid, asset_tag = 'AT' || lpad(ci.id::text, 7, '0'),"
            " serial_number = 'SN' || upper(substr(md5(ci.id::text), 1, 10)), vendor = 'Lenovo',"
            " model = 'ThinkPad T14', attributes = jsonb_build_object('hostname', e.host, 'os', 'Windows 11')"
            " FROM (SELECT unnest(CAST(:cis AS int[])) AS ci_id, unnest(CAST(:users AS int[])) AS uid,"
            "       unnest(CAST(:hosts AS text[])) AS host) AS e"
            " WHERE ci.id = e.ci_id"
        ),
        {"cis": held, "users": employee_ids[: len(held)], "hosts": hosts},
    )
    conn.execute(
        text("UPDATE ci SET status = 'in_stock' WHERE ci_class = 'laptop' AND assigned_to_id IS NULL AND id % 3 = 0")
    )
    long_ci = held[0]
    conn.execute(text("UPDATE ci SET asset_tag = :tag WHERE id = :id"), {"tag": LONG_TAG, "id": long_ci})
    conn.execute(
        text(
            "INSERT INTO ci_assignment (ci_id, user_id, assigned_from, assigned_until, note, created_at, updated_at)"
            " SELECT id, assigned_to_id, LOCALTIMESTAMP - (id % 700) * interval '1 day', NULL, '',"
            "  LOCALTIMESTAMP, LOCALTIMESTAMP FROM ci WHERE assigned_to_id IS NOT NULL AND id <> :long"
        ),
        {"long": long_ci},
    )

    # --- The laptop with the long timeline: five holders, its own change log, hundreds of tickets.
    start = now - timedelta(days=4 * 365)
    holders = rng.sample(employee_ids[1:], 4) + [person_id]
    bulk(
        conn,
        CIAssignment.__table__,
        [
            {"ci_id": long_ci, "user_id": uid, "assigned_from": start + timedelta(days=292 * i),
             "assigned_until": start + timedelta(days=292 * (i + 1)) if i < 4 else None, "note": "",
             "created_at": now, "updated_at": now}
            for i, uid in enumerate(holders)
        ],
    )  # fmt: skip
    log_id = conn.scalar(text("SELECT coalesce(max(id), 0) FROM change_log"))
    logs, log_cis = [], []
    step = (now - start) / n_changes
    for i in range(n_changes):
        shape = i % 5
        if shape == 0:
            changes = {"status": ["deployed", "in_maintenance"] if i % 10 else ["in_maintenance", "deployed"]}
        elif shape == 1:
            changes = {"attributes": [{"os_version": f"23H{i % 3}"}, {"os_version": f"24H{i % 3}"}]}
        elif shape == 2:
            changes = {"assigned_to_id": [holders[i % 4], holders[(i + 1) % 5]]}
        elif shape == 3:
            changes = {"description": ["", f"inventory note {i}"]}
        else:
            changes = {"model": ["ThinkPad T14", "ThinkPad T14 Gen 2"], "serial_number": ["SN0", f"SN{i}"]}
        log_id += 1
        logs.append(
            {"id": log_id, "txid": 0, "at": start + step * i, "actor": rng.choice(("sync", AGENT_EMAIL, "intune")),
             "object_type": "ci", "object_id": long_ci, "action": "update", "summary": f"CI {long_ci} updated",
             "changes": changes}
        )  # fmt: skip
    for i in range(n_changes // 20):  # relationships to it coming and going
        log_id += 1
        logs.append(
            {"id": log_id, "txid": 0, "at": start + step * 20 * i, "actor": "discovery",
             "object_type": "relationship", "object_id": 10_000_000 + i, "action": "create" if i % 2 else "delete",
             "summary": "relationship connected_to", "changes": {}}
        )  # fmt: skip
        log_cis.append({"change_id": log_id, "ci_id": long_ci})
    linked = rng.sample(range(1, n_tickets + 1), min(n_linked, n_tickets))
    links = []
    for tid in linked:
        links.append({"ticket_id": tid, "ci_id": long_ci, "created_at": now, "updated_at": now})
        log_id += 1
        logs.append(
            {"id": log_id, "txid": 0, "at": now, "actor": "bench", "object_type": "ticket_ci", "object_id": 0,
             "action": "create", "summary": f"CI {long_ci} added", "changes": {}}
        )  # fmt: skip
        log_cis.append({"change_id": log_id, "ci_id": long_ci})
    bulk(conn, TicketCI.__table__, links)

    # --- The ticket page's ticket: an open incident on the laptop, with comments, watchers, history.
    ticket_id = conn.scalar(
        text("SELECT id FROM ticket WHERE kind = 'incident' AND id = ANY(CAST(:ids AS int[])) ORDER BY id LIMIT 1"),
        {"ids": linked},
    )
    opened = now - timedelta(days=2)
    conn.execute(
        text(
            "UPDATE ticket SET title = :title, description = :description, state = 'in_progress', priority = 2,"
            " impact = 2, urgency = 2, assignee_id = :agent, team_id = :team, requester_id = :person,"
            " created_at = :opened, updated_at = :now, acknowledged_at = :opened, resolved_at = NULL,"
            " closed_at = NULL, response_due = :response_due, resolution_due = :resolution_due,"
            " sla_breached = false WHERE id = :id"
        ),
        {"title": TICKET_TITLE, "description": "The fan runs at full speed all day. " * 20, "agent": agent.id,
         "team": team_ids[1], "person": person_id, "opened": opened, "now": now, "id": ticket_id,
         "response_due": opened + timedelta(hours=1), "resolution_due": now + timedelta(days=1)},
    )  # fmt: skip
    bulk(
        conn,
        TicketComment.__table__,
        [
            {"ticket_id": ticket_id, "author_id": agent.id if i % 2 else person_id,
             "author_label": AGENT_NAME if i % 2 else PERSON_NAME, "body": f"Comment {i}: " + "still loud. " * 15,
             "internal": i % 6 == 1, "created_at": opened + timedelta(minutes=40 * i),
             "updated_at": opened + timedelta(minutes=40 * i)}
            for i in range(40)
        ],
    )  # fmt: skip
    bulk(
        conn,
        TicketWatcher.__table__,
        [{"ticket_id": ticket_id, "user_id": uid, "created_at": now, "updated_at": now} for uid in agent_ids[1:4]],
    )
    for i in range(60):
        log_id += 1
        logs.append(
            {"id": log_id, "txid": 0, "at": opened + timedelta(minutes=45 * i), "actor": AGENT_EMAIL,
             "object_type": "ticket", "object_id": ticket_id, "action": "update" if i % 3 else "comment",
             "summary": "updated", "changes": {"priority": [3, 2]} if i % 3 else {}}
        )  # fmt: skip
        log_cis.append({"change_id": log_id, "ci_id": long_ci})
    bulk(conn, ChangeLog.__table__, logs)
    bulk(conn, ChangeLogCI.__table__, log_cis)
    for table in ("change_log", "ticket_ci", "ci_assignment"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    db.session.commit()


@dataclass
class Desk:
    """What the scenarios open and what their pages must show, read back from the database (so a
    database kept by --keep serves --reuse)."""

    long_ci: int = 0
    long_ci_name: str = ""
    busiest_ci: int = 0
    busiest_ci_name: str = ""
    busiest_tickets: int = 0
    ticket_id: int = 0
    ticket_number: str = ""
    agent_open: set[str] = field(default_factory=set)
    open_p2: set[str] = field(default_factory=set)
    counts: dict = field(default_factory=dict)


def read_desk(db) -> Desk:
    from cairn.auth.models import User
    from cmdb.models import ConfigurationItem
    from tickets.models import Ticket, TicketCI
    from tickets.workflow import DONE_STATES

    desk = Desk()
    s = db.session
    agent_id = s.scalar(select(User.id).where(User.email == AGENT_EMAIL))
    if agent_id is None:
        raise SystemExit(f"no {AGENT_EMAIL} in this database: not an estate of benchmarks/web.py")
    desk.long_ci, desk.long_ci_name = s.execute(
        select(ConfigurationItem.id, ConfigurationItem.name).where(ConfigurationItem.asset_tag == LONG_TAG)
    ).one()
    desk.ticket_id, desk.ticket_number = s.execute(
        select(Ticket.id, Ticket.number).where(Ticket.title == TICKET_TITLE)
    ).one()
    desk.busiest_ci, desk.busiest_tickets = s.execute(
        select(TicketCI.ci_id, func.count()).group_by(TicketCI.ci_id).order_by(func.count().desc()).limit(1)
    ).one()
    desk.busiest_ci_name = s.get(ConfigurationItem, desk.busiest_ci).name
    open_ = Ticket.state.not_in(DONE_STATES)
    desk.agent_open = set(s.scalars(select(Ticket.number).where(open_, Ticket.assignee_id == agent_id)))
    desk.open_p2 = set(s.scalars(select(Ticket.number).where(open_, Ticket.priority == 2)))
    for table in ("ci", "relationship", "ticket", "ticket_ci", "change_log", "change_log_ci", '"user"',
                  "ci_assignment"):  # fmt: skip
        desk.counts[table.strip('"')] = s.scalar(text(f"SELECT count(*) FROM {table}"))
    desk.counts["open tickets"] = s.scalar(select(func.count()).select_from(Ticket).where(open_))
    desk.counts["long CI change-log rows"] = s.scalar(
        text("SELECT count(*) FROM change_log WHERE object_type = 'ci' AND object_id = :id"), {"id": desk.long_ci}
    )
    desk.counts["long CI tickets"] = s.scalar(
        select(func.count()).select_from(TicketCI).where(TicketCI.ci_id == desk.long_ci)
    )
    return desk


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Row:
    name: str
    target_ms: float
    url: Callable[[int], str]
    check: Callable[[str], str | None]  # the body -> what is missing from it (None: all there)
    runs: int
    headers: dict | None = None  # a bearer token for the API rows (pages use the session cookie)


@dataclass
class Figures:
    p50: float = 0.0
    p95: float = 0.0
    statements: float = 0.0
    kilobytes: float = 0.0
    failure: str | None = None
    detail: str = ""


class Errors(logging.Handler):
    """The exceptions the app logged while answering (cairn.errors logs every unexpected one)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.exc_info[1])


class Counter:
    """SQL statements sent by the app (and their times, when asked)."""

    def __init__(self, engine):
        self.count = 0
        self.timings: list[tuple[float, str, object]] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.timings is not None:
            elapsed = (time.perf_counter() - conn.info["bench_started"]) * 1000
            self.timings.append((elapsed, statement, parameters))


def contains(*needles: str) -> Callable[[str], str | None]:
    def check(body: str) -> str | None:
        missing = [n for n in needles if n not in body]
        return f"missing {missing}" if missing else None

    return check


def numbers_from(wanted: set[str], what: str) -> Callable[[str], str | None]:
    def check(body: str) -> str | None:
        return None if wanted.intersection(_NUMBER.findall(body)) else f"no ticket number of {what}"

    return check


def measure(client, row: Row, counter: Counter, errors: Errors) -> Figures:
    figures = Figures()
    samples, statements, sizes = [], [], []
    for i in range(-WARM_UP, row.runs):
        url = row.url(max(i, 0))
        errors.seen.clear()
        counter.count = 0
        started = time.perf_counter()
        response = client.get(url, headers=row.headers)
        body = response.get_data(as_text=True)
        elapsed = (time.perf_counter() - started) * 1000
        problem = None
        if response.status_code != 200:
            problem = f"HTTP {response.status_code} on {url}"
        else:
            missing = row.check(body)
            if missing:
                problem = f"HTTP 200 on {url} but {missing} (a stub?)"
        if problem:
            figures.failure = problem
            if errors.seen:
                figures.detail = "".join(traceback.format_exception(errors.seen[0]))
            else:
                figures.detail = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))[:300]
            return figures
        if i >= 0:
            samples.append(elapsed)
            statements.append(counter.count)
            sizes.append(len(body))
    samples.sort()
    figures.p50 = statistics.median(samples)
    figures.p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    figures.statements = statistics.median(statements)
    figures.kilobytes = statistics.median(sizes) / 1024
    return figures


def profile(client, row: Row, runs: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(runs):
        client.get(row.url(i), headers=row.headers)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    print(f"\n--- cProfile of {row.name}, {runs} requests (by cumulative time, then by own time) ---")
    print(out.getvalue())


def show_sql(client, row: Row, counter: Counter, engine, explain: bool) -> None:
    counter.timings = []
    client.get(row.url(0), headers=row.headers)
    timings, counter.timings = counter.timings, None
    total = sum(ms for ms, _, _ in timings)
    print(f"\n--- SQL of one request of {row.name}: {len(timings)} statements, {total:.1f} ms in the database ---")
    slowest = sorted(timings, key=lambda t: t[0], reverse=True)
    for ms, statement, _ in slowest[:10]:
        flat = re.sub(r"\s+", " ", statement)
        print(f"{ms:8.2f} ms  {flat[:600]}")
    if not explain:
        return
    for ms, statement, parameters in slowest[:3]:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        with engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
        print(f"\n    plan of the {ms:.1f} ms statement:\n" + "\n".join("    " + line for line in plan))


def sign_in(client) -> None:
    """As a browser: the CSRF token off the form, then the session cookie."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise SystemExit("no CSRF token on /login")
    response = client.post("/login", data={"email": AGENT_EMAIL, "password": PASSWORD, "csrf_token": token[1]})
    if response.status_code != 302:
        raise SystemExit(f"sign-in: HTTP {response.status_code}: {response.get_data(as_text=True)[:500]}")


def rows_for(desk: Desk, runs: int, token: str) -> tuple[list[Row], list[Row]]:
    typed = [SURNAME[:n] for n in (2, 3, 4, 5)]
    main = [
        Row("dashboard", PAGE_TARGET_MS, lambda i: "/desk", numbers_from(desk.agent_open, "the agent's"), runs),
        Row(
            "ticket page",
            PAGE_TARGET_MS,
            lambda i: f"/tickets/{desk.ticket_id}",
            contains(desk.ticket_number, TICKET_TITLE),
            runs,
        ),
        Row(
            "CI page, long timeline",
            PAGE_TARGET_MS,
            lambda i: f"/cis/{desk.long_ci}",
            contains(desk.long_ci_name, PERSON_NAME),
            runs,
        ),
        Row(
            "ticket list, open P2",
            PAGE_TARGET_MS,
            lambda i: "/tickets?queue=open&priority=2",
            numbers_from(desk.open_p2, "an open P2"),
            runs,
        ),
        Row(
            "CI list, class + status",
            PAGE_TARGET_MS,
            lambda i: "/cis?ci_class=application&status=deployed",
            lambda body: None if re.search(r">application-\d+<", body) else "no application CI listed",
            runs,
        ),
        Row(
            "search results page",
            PAGE_TARGET_MS,
            lambda i: f"/search?q={SURNAME}",
            contains(PERSON_NAME, desk.long_ci_name),
            runs,
        ),
        Row(
            "typeahead, 2-5 chars",
            TYPEAHEAD_TARGET_MS,
            lambda i: f"/search/suggest?q={typed[i % len(typed)]}",
            lambda body: None if body.count('role="option"') >= 2 else "no suggestion",
            runs,
        ),
    ]
    extra = [
        Row(
            f"CI page, busiest ({desk.busiest_tickets} tickets)",
            PAGE_TARGET_MS,
            lambda i: f"/cis/{desk.busiest_ci}",
            contains(desk.busiest_ci_name),
            max(20, runs // 4),
        ),
    ]
    # The search service without the pages (through the API, as GET /api/v1/search): what the search
    # page and the typeahead cost in the service, whatever the templates do.
    api = {"Authorization": f"Bearer {token}"}
    extra += [
        Row(
            "API search, limit 5, 2-5 chars",
            TYPEAHEAD_TARGET_MS,
            lambda i: f"/api/v1/search?limit=5&q={typed[i % len(typed)]}",
            contains('"label"'),
            max(20, runs // 2),
            api,
        ),
        Row(
            "API search, limit 25, surname",
            PAGE_TARGET_MS,
            lambda i: f"/api/v1/search?limit=25&q={SURNAME}",
            contains(PERSON_NAME, desk.long_ci_name),
            max(20, runs // 4),
            api,
        ),
    ]
    for q in typed:
        extra.append(
            Row(
                f"typeahead q={q}",
                TYPEAHEAD_TARGET_MS,
                lambda i, q=q: f"/search/suggest?q={q}",
                lambda body: None if body.count('role="option"') >= 2 else "no suggestion",
                max(20, runs // 4),
            )
        )
    return main, extra


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min; {os.cpu_count()} cores)"


def print_table(results: list[tuple[Row, Figures]]) -> None:
    print(f"{'page':<32} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}  {'SQL/req':>7} {'KB':>6}  verdict")
    for row, fig in results:
        target = f"<= {row.target_ms:.0f}"
        if fig.failure:
            print(f"{row.name:<32} {'-':>8} {'-':>8} {target:>8}  {'-':>7} {'-':>6}  FAILED: {fig.failure}")
            continue
        verdict = "ok" if fig.p95 <= row.target_ms else "OVER"
        print(
            f"{row.name:<32} {fig.p50:8.1f} {fig.p95:8.1f} {target:>8}  {fig.statements:7.0f} {fig.kilobytes:6.1f}  "
            f"{verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per page (after a warm-up)")
    parser.add_argument("--changes", type=int, default=5000, help="change-log rows of the long-timeline CI")
    parser.add_argument("--linked", type=int, default=500, help="tickets linked to the long-timeline CI")
    parser.add_argument("--name", default=DB_NAME, help=f"the scratch database's name (default {DB_NAME})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for --reuse")
    parser.add_argument("--reuse", metavar="NAME", help="measure on a database a --keep run left (kept again)")
    parser.add_argument("--only", metavar="TEXT", help="only the rows whose name contains TEXT")
    parser.add_argument("--profile", metavar="TEXT", help="cProfile the rows whose name contains TEXT")
    parser.add_argument("--sql", action="store_true", help="print one request's statements per row, slowest first")
    parser.add_argument("--explain", action="store_true", help="with --sql: EXPLAIN ANALYZE the three slowest")
    parser.add_argument(
        "--map", action="store_true", help="then the impact map in Chromium (benchmarks/web_map.py on PostgreSQL)"
    )
    args = parser.parse_args()
    rng = random.Random(42)

    from flask_migrate import upgrade

    from cairn.app import create_app
    from cairn.auth.models import User
    from cairn.auth.services import create_token
    from cairn.config import Config
    from cairn.db import db

    print(f"load average at start: {load_average()}")
    name = args.reuse or args.name
    url = scratch.PG_ADMIN.rsplit("/", 1)[0] + f"/{name}" if args.reuse else scratch.fresh_database(name)
    instance = Path(tempfile.mkdtemp(prefix="cairn-bench-web-"))
    app = create_app(Config(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance, REDIS_URL=None, LOG_LEVEL="WARNING"))
    failed = False
    try:
        with app.app_context():
            upgrade(revision="heads")
            if not args.reuse:
                started = time.perf_counter()
                load(db, args.cis, args.tickets, rng)
                furnish(db, args.tickets, max(1000, args.cis // 5), args.changes, args.linked, rng)
                # the bulk updates left dead rows behind: what autovacuum would have cleaned by now
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM (ANALYZE)"))
                print(f"loaded in {time.perf_counter() - started:.0f} s")
            desk = read_desk(db)
            _, token = create_token(db.session.scalar(select(User).where(User.email == AGENT_EMAIL)), "bench")
            db.session.commit()
            db.session.remove()
        print(f"estate ({name}): " + ", ".join(f"{k} {v:,}" for k, v in desk.counts.items()))
        print(
            f"signed in as {AGENT_EMAIL}; long timeline: CI {desk.long_ci} ({desk.long_ci_name}, held by "
            f"{PERSON_NAME}); ticket page: {desk.ticket_number}; busiest CI: {desk.busiest_ci_name}\n"
        )

        errors = Errors()
        logging.getLogger("cairn.errors").addHandler(errors)
        with app.app_context():
            counter = Counter(db.engine)
        client = app.test_client()
        sign_in(client)
        main_rows, extra_rows = rows_for(desk, args.runs, token)

        def wanted(row: Row, pattern: str | None) -> bool:
            return pattern is None or pattern.lower() in row.name.lower()

        results = []
        for title, rows in (("", main_rows), ("extra, for reference:", extra_rows)):
            chosen = [row for row in rows if wanted(row, args.only)]
            if not chosen:
                continue
            if title:
                print(f"\n{title}")
            figures = [(row, measure(client, row, counter, errors)) for row in chosen]
            print_table(figures)
            results += figures
        print(f"\nload average at end: {load_average()}")
        for row, fig in results:
            if fig.failure:
                failed = True
                print(f"\n--- {row.name}: {fig.failure}\n{fig.detail.rstrip()[-2500:]}")
        for row, _fig in results:
            if args.sql or args.explain:
                with app.app_context():
                    show_sql(client, row, counter, db.engine, args.explain)
            if args.profile and wanted(row, args.profile):
                profile(client, row, min(args.runs, 50))
    finally:
        with app.app_context():
            db.engine.dispose()
        if args.keep or args.reuse:
            print(f"\nkept database {name}: re-run with --reuse {name}")
        else:
            scratch.drop_database(name)
    if args.map:
        import subprocess
        import sys

        print("\nthe impact map in Chromium (benchmarks/web_map.py --db postgresql):", flush=True)
        script = str(Path(__file__).with_name("web_map.py"))
        map_run = subprocess.run([sys.executable, script, "--db", "postgresql"], check=False)
        failed = failed or map_run.returncode != 0
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
