"""A ticket's business-hours clocks: which policy applies, how much of each target has run, when
it is (or was) due, and when the periodic scan must next look at it.

Everything is recomputed from what the ticket stores as wall-clock facts (created, acknowledged,
resolved, the holds as [start, end] pairs, when the OLA started) and the calendar as it is now; no
business-time figure is stored, so a calendar or policy edit followed by a recomputation is exact.
A clock runs in the calendar's open hours only (paused outside them by construction) and not at
all while the ticket is on hold. A ticket no policy matches keeps the wall-clock SLA of
tickets.sla.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm.attributes import set_committed_value

from cairn.auth.models import User
from cairn.db import db
from tickets import workflow
from tickets.models import Ticket
from tickets.slas import business_time
from tickets.slas.models import BusinessCalendar, SLAFiring, SLAPolicy

TARGETS = ("response", "resolution")
CONDITIONS = ("warning", "breach")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_built: dict[str, business_time.Calendar] = {}

# ---------------------------------------------------------------------------------------------
# Calendars as data -> business_time.Calendar


def parse_time(text: str):
    """``HH:MM`` local time; ``24:00`` is None (the end of the day)."""
    from datetime import time

    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def parse_closure(closure: dict) -> tuple[datetime, datetime]:
    """A closure's local wall-time [start, end): a date covers its whole day (``end`` inclusive)."""
    from datetime import date, timedelta

    def point(text: str, *, end: bool) -> datetime:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, datetime.min.time())
        return datetime.fromisoformat(text).replace(tzinfo=None)

    start = point(closure["start"], end=False)
    return start, point(closure.get("end") or closure["start"], end=True)


def to_calendar(calendar: BusinessCalendar) -> business_time.Calendar:
    """The pure calendar of a stored one, kept on the row for as long as its version holds (so a
    scan over many tickets builds each calendar's days once)."""
    cached = calendar.__dict__.get("_pure")
    if cached is not None and cached[0] == calendar.version:
        return cached[1]
    # Rows come and go from the session; the same content keeps its built days (process-wide).
    key = json.dumps([calendar.time_zone, calendar.hours, calendar.closures], sort_keys=True)
    pure = _built.get(key)
    if pure is None:
        hours = {
            index: [(parse_time(start), parse_time(end)) for start, end in calendar.hours.get(name, [])]
            for index, name in enumerate(WEEKDAYS)
        }
        pure = business_time.Calendar(calendar.time_zone, hours, [parse_closure(c) for c in calendar.closures])
        if len(_built) >= 64:
            _built.pop(next(iter(_built)))
        _built[key] = pure
    calendar.__dict__["_pure"] = (calendar.version, pure)
    return pure


# ---------------------------------------------------------------------------------------------
# Matching


class View:
    """The ticket as it will be once ``overrides`` are applied (a transition computes its clocks
    before it writes, so the due times land in the same change-log row)."""

    # Read once: the clocks read these many times per ticket, and an ORM attribute costs more.
    FIELDS = (
        "id", "kind", "priority", "category_id", "requester_id", "team_id", "state", "created_at",
        "acknowledged_at", "resolved_at", "actual_end", "closed_at", "canceled_at", "on_hold_since",
        "on_hold_seconds", "hold_intervals", "planned_end", "sla_policy_id", "ola_policy_id",
        "ola_started_at", "response_due", "resolution_due",
    )  # fmt: skip

    def __init__(self, ticket, overrides: dict[str, Any] | None = None):
        self._ticket = ticket
        if isinstance(ticket, View):
            self.__dict__.update({name: getattr(ticket, name) for name in self.FIELDS})
        else:
            self.__dict__.update({name: getattr(ticket, name, None) for name in self.FIELDS})
        self.__dict__.update(overrides or {})

    def __getattr__(self, name):  # anything else (ci_ids): the ticket's own
        return getattr(self._ticket, name)


def facts(ticket, ci_ids: list[int] | None = None, *, teams: bool = True, cis: bool = True) -> dict[str, Any]:
    """What policies and rules match on: the ticket's kind, priority, category, requester's teams,
    assigned team and CIs (the last two only read when asked: no rule may need them)."""
    requester = db.session.get(User, ticket.requester_id) if teams and ticket.requester_id else None
    return {
        "kind": ticket.kind,
        "priority": ticket.priority,
        "category_id": getattr(ticket, "category_id", None),
        "requester_team_ids": {team.id for team in requester.teams} if requester is not None else set(),
        "team_id": ticket.team_id,
        "ci_ids": set(ticket.ci_ids if ci_ids is None else ci_ids) if cis else set(),
    }


def matches(rule, known: dict[str, Any], *, team: str) -> bool:
    """Whether ``rule`` (a policy or an escalation rule) matches; ``team`` says which team its
    ``team_id`` means: ``requester`` (an SLA) or ``assigned`` (an OLA, an escalation rule)."""
    if rule.match_kind is not None and rule.match_kind != known["kind"]:
        return False
    if rule.match_priority is not None and rule.match_priority != known["priority"]:
        return False
    if rule.match_category_id is not None and rule.match_category_id != known["category_id"]:
        return False
    if rule.match_team_id is not None:
        teams = known["requester_team_ids"] if team == "requester" else {known["team_id"]}
        if rule.match_team_id not in teams:
            return False
    return rule.match_service_ci_id is None or rule.match_service_ci_id in known["ci_ids"]


def most_specific(candidates, known: dict[str, Any], *, team: str):
    """The matching candidate with the most conditions, then the lowest ``order``, then the oldest."""
    hits = [c for c in candidates if matches(c, known, team=team)]
    return min(hits, key=lambda c: (-c.specificity, c.order, c.id), default=None)


def all_policies() -> list[SLAPolicy]:
    return list(db.session.scalars(select(SLAPolicy).order_by(SLAPolicy.id)))


# (policies, {ticket id: fired keys}) read once for the tickets a bulk edit changes (see ``prefetched``)
_prefetched: ContextVar[tuple[list[SLAPolicy], dict[int, set[str]]] | None] = ContextVar("sla_prefetched", default=None)


@contextmanager
def prefetched(ticket_ids):
    """Within it, ``refresh`` takes the policies and the fired conditions of ``ticket_ids`` from one
    query each instead of two queries a ticket (a bulk edit of 1,000 tickets). Only for work that
    changes no policy and fires nothing meanwhile."""
    ids = list(ticket_ids)
    fired = fired_keys(ids)
    token = _prefetched.set((all_policies(), {i: fired.get(i, set()) for i in ids}))
    try:
        yield
    finally:
        _prefetched.reset(token)


def pick_policies(ticket, ci_ids: list[int] | None = None, policies: list[SLAPolicy] | None = None):
    """(SLA policy, OLA policy) for the ticket; either may be None."""
    policies = all_policies() if policies is None else policies
    if not policies:
        return None, None
    known = facts(
        ticket,
        ci_ids,
        teams=any(p.type == "sla" and p.match_team_id is not None for p in policies),
        cis=any(p.match_service_ci_id is not None for p in policies),
    )
    sla = most_specific([p for p in policies if p.type == "sla"], known, team="requester")
    ola = None
    if ticket.team_id is not None:
        ola = most_specific(
            [p for p in policies if p.type == "ola" and p.match_team_id is not None], known, team="assigned"
        )
    return sla, ola


# ---------------------------------------------------------------------------------------------
# Clocks


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class Target:
    seconds: int
    elapsed: float
    due_at: datetime | None  # None: met, or paused before it was reached
    warn_due_at: datetime | None
    stopped: bool

    @property
    def remaining(self) -> int:
        return int(self.seconds - self.elapsed)


@dataclass
class Clock:
    name: str  # sla | ola
    policy: SLAPolicy
    since: datetime
    paused: bool
    response: Target
    resolution: Target

    def targets(self):
        return (("response", self.response), ("resolution", self.resolution))

    def crossed(self, now: datetime) -> list[tuple[str, str]]:
        """(target, condition) pairs reached by ``now``."""
        out = []
        for name, target in self.targets():
            if target.warn_due_at is not None and target.warn_due_at <= now:
                out.append((name, "warning"))
            if target.due_at is not None and target.due_at <= now:
                out.append((name, "breach"))
        return out

    def pending(self, fired: set[str]) -> list[datetime]:
        """Instants at which a condition not fired yet is reached."""
        out = []
        for name, target in self.targets():
            for condition, instant in (("warning", target.warn_due_at), ("breach", target.due_at)):
                if instant is not None and f"{self.name}.{name}.{condition}" not in fired:
                    out.append(instant)
        return out


def _segments(view, since: datetime, stop: datetime | None) -> tuple[list[tuple[datetime, datetime | None]], bool]:
    """The wall-clock spans in which a clock started at ``since`` runs: from ``since`` to ``stop``
    (None: still running) minus the holds. Returns (spans, paused now)."""
    spans: list[tuple[datetime, datetime | None]] = []
    cursor = since
    for raw_start, raw_end in view.hold_intervals or []:
        hold_start, hold_end = _instant(raw_start), _instant(raw_end)
        if hold_end <= cursor:
            continue
        if stop is not None and hold_start >= stop:
            break
        if hold_start > cursor:
            spans.append((cursor, hold_start))
        cursor = max(cursor, hold_end)
    held_since = _aware(view.on_hold_since)
    if held_since is not None and (stop is None or held_since < stop):
        if held_since > cursor:
            spans.append((cursor, held_since))
        return spans, stop is None
    if stop is None or stop > cursor:
        spans.append((cursor, stop))
    return spans, False


def _target(calendar, spans, seconds: int, warn_at: float, now: datetime, stopped: bool) -> Target:
    try:
        elapsed, (due, warn) = business_time.run(calendar, spans, now, [seconds, seconds * warn_at])
    except business_time.NeverOpen:
        elapsed, _ = business_time.run(calendar, spans, now, [])
        due = warn = None
    return Target(seconds, elapsed, due, warn, stopped)


def clock(view, name: str, policy: SLAPolicy, since: datetime, now: datetime) -> Clock:
    """One clock (``sla`` from creation, ``ola`` from the assignment) of a ticket as of ``now``."""
    calendar = to_calendar(policy.calendar)
    acknowledged = _aware(view.acknowledged_at)
    finished = next(
        (_aware(v) for v in (view.resolved_at, view.actual_end, view.closed_at, view.canceled_at) if v is not None),
        None,
    )
    response_stop = max(acknowledged, since) if acknowledged is not None else finished
    spans, paused = _segments(view, since, response_stop)
    response = _target(calendar, spans, policy.response_seconds, policy.warn_at, now, response_stop is not None)
    spans, paused = _segments(view, since, finished)
    resolution = _target(calendar, spans, policy.resolution_seconds, policy.warn_at, now, finished is not None)
    return Clock(name, policy, since, paused, response, resolution)


def clocks(view, now: datetime, policies: dict[int, SLAPolicy] | None = None) -> list[Clock]:
    """The ticket's running or finished clocks (none for a ticket without policies); ``policies``
    by id, when the caller holds them loaded (a scan, a recomputation)."""

    def policy_of(policy_id):
        if not policy_id:
            return None
        if policies is not None and policy_id in policies:
            return policies[policy_id]
        return db.session.get(SLAPolicy, policy_id)

    out = []
    policy = policy_of(view.sla_policy_id)
    if policy is not None:
        out.append(clock(view, "sla", policy, _aware(view.created_at), now))
    policy = policy_of(view.ola_policy_id)
    if policy is not None and view.ola_started_at is not None:
        out.append(clock(view, "ola", policy, _aware(view.ola_started_at), now))
    return out


def fired_keys(ticket_ids) -> dict[int, set[str]]:
    """The conditions already fired per ticket, for the clocks now running (their ``since``)."""
    out: dict[int, set[str]] = {}
    rows = db.session.execute(
        select(SLAFiring.ticket_id, SLAFiring.key, SLAFiring.since).where(SLAFiring.ticket_id.in_(list(ticket_ids)))
    )
    for ticket_id, key, since in rows:
        out.setdefault(ticket_id, set()).add(f"{key}@{_aware(since).isoformat()}")
    return out


def fired_for(clock_: Clock, fired: set[str]) -> set[str]:
    """``fired`` (keys with their since) narrowed to this clock's run, as plain keys."""
    suffix = f"@{clock_.since.isoformat()}"
    return {key.removesuffix(suffix) for key in fired if key.endswith(suffix)}


def next_check(
    view,
    now: datetime,
    fired: set[str],
    policies: dict[int, SLAPolicy] | None = None,
    *,
    running: list[Clock] | None = None,
) -> datetime | None:
    """When the scan must next look at the ticket: the earliest condition not fired yet (None when
    done, on hold with nothing pending, or without policies)."""
    if view.state in workflow.DONE_STATES:
        return None
    instants = []
    for item in clocks(view, now, policies) if running is None else running:
        instants += item.pending(fired_for(item, fired))
    return min(instants, default=None)


def refresh(
    ticket,
    now: datetime,
    *,
    ci_ids: list[int] | None = None,
    overrides: dict | None = None,
    rematch: bool = True,
    policies: list[SLAPolicy] | None = None,
    fired: set[str] | None = None,
    orphaned: bool = False,
) -> dict[str, Any]:
    """The clock columns of the ticket as of ``now`` (with ``overrides`` applied first): the
    policies (re-matched unless ``rematch`` is false), the OLA start, the stored due times and the
    next scan time. Returns them; the caller writes them (so they land in its change-log row).
    ``orphaned``: the ticket's SLA policy was deleted (its column already cleared), so without a
    new match it goes back to the wall clock's due times."""
    known = _prefetched.get()
    if known is not None and ticket.id in known[1]:
        policies = known[0] if policies is None else policies
        fired = known[1][ticket.id] if fired is None else fired
    view = View(ticket, overrides)
    values: dict[str, Any] = {}
    if rematch:
        sla_policy, ola_policy = pick_policies(view, ci_ids, policies)
        values["sla_policy_id"] = sla_policy.id if sla_policy else None
        values["ola_policy_id"] = ola_policy.id if ola_policy else None
        if ola_policy is None:
            values["ola_started_at"] = None
        elif view.ola_started_at is None or values["ola_policy_id"] != view.ola_policy_id:
            values["ola_started_at"] = now
    view = View(view, values)
    if view.sla_policy_id is None and (ticket.sla_policy_id is not None or orphaned):
        values.update(_wall_clock_due(view))
    if fired is None:
        fired = fired_keys([ticket.id]).get(ticket.id, set()) if ticket.id is not None else set()
    by_id = {p.id: p for p in policies} if policies is not None else None
    running = clocks(view, now, by_id)
    sla_clock = next((c for c in running if c.name == "sla"), None)
    if sla_clock is not None:
        if sla_clock.response.due_at is not None or sla_clock.response.stopped:
            values["response_due"] = sla_clock.response.due_at or view.response_due
        if sla_clock.resolution.due_at is not None:
            values["resolution_due"] = sla_clock.resolution.due_at
    values["sla_next_check_at"] = next_check(view, now, fired, running=running)
    return {key: value for key, value in values.items() if getattr(ticket, key) != value}


def _wall_clock_due(view) -> dict[str, Any]:
    """The due times of tickets.sla for a ticket that no longer has a policy."""
    from tickets import sla

    response, resolution = sla.targets(view.kind, view.priority)
    created = _aware(view.created_at)
    due = {"response_due": created + response}
    if view.kind == "change" and view.planned_end is not None:
        due["resolution_due"] = view.planned_end
    else:
        due["resolution_due"] = created + resolution + timedelta(seconds=view.on_hold_seconds or 0)
    return due


def status(ticket, now: datetime) -> dict[str, Any]:
    """The business-hours part of a ticket's ``sla`` answer."""
    running = clocks(ticket, now)
    blocks: dict[str, Any] = {}
    for item in running:
        policy = item.policy
        blocks[item.name] = {
            "policy": {"id": policy.id, "name": policy.name},
            "calendar": {"id": policy.calendar.id, "name": policy.calendar.name},
            "response_remaining_seconds": None if item.response.stopped else item.response.remaining,
            "resolution_remaining_seconds": None if item.resolution.stopped else item.resolution.remaining,
            "response_due_at": item.response.due_at,
            "resolution_due_at": item.resolution.due_at,
            "paused": item.paused,
            "warned": any(condition == "warning" for _, condition in item.crossed(now)),
            "breached": any(condition == "breach" for _, condition in item.crossed(now)),
            "response_breached": ("response", "breach") in item.crossed(now),
            "resolution_breached": ("resolution", "breach") in item.crossed(now),
            "started_at": item.since,
        }
    return blocks


CLOCK_COLUMNS = (
    "sla_policy_id",
    "ola_policy_id",
    "ola_started_at",
    "response_due",
    "resolution_due",
    "sla_next_check_at",
)


def store(updates: list[tuple[Any, dict[str, Any]]], extra: dict[str, Any] | None = None) -> None:
    """Write recomputed clock columns (and ``extra`` ones, the same for every row) of many tickets
    in one statement. No change-log rows: these are figures derived from the calendar and the
    policy, whose own edit is in the change log; a ticket's facts (and its ``updated_at``, which
    idle rules read as its last activity) stay as they were."""
    if not updates:
        return
    extra = extra or {}
    rows = []
    for ticket, values in updates:
        merged = {**values, **extra}
        rows.append((ticket.id, *(_naive(merged.get(c, getattr(ticket, c))) for c in CLOCK_COLUMNS)))
    if db.session.get_bind().dialect.name == "postgresql":
        _store_postgresql(rows, extra)
    else:
        table = Ticket.__table__
        columns = [*CLOCK_COLUMNS, *extra]
        stmt = (
            table.update()
            .where(table.c.id == bindparam("row_id"))
            .values({**{c: bindparam(f"new_{c}") for c in columns}, "updated_at": table.c.updated_at})
        )
        db.session.execute(
            stmt,
            [
                {"row_id": row[0], **{f"new_{c}": v for c, v in zip(CLOCK_COLUMNS, row[1:], strict=True)},
                 **{f"new_{c}": v for c, v in extra.items()}}
                for row in rows
            ],
        )  # fmt: skip
    for ticket, values in updates:
        for key, value in {**values, **extra}.items():
            set_committed_value(ticket, key, value)


def _naive(value):
    """Timestamps as the columns store them: naive UTC (cairn.db.UTCDateTime)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _store_postgresql(rows: list[tuple], extra: dict[str, Any]) -> None:
    """One UPDATE .. FROM unnest(arrays) per batch: one round trip instead of one per ticket."""
    columns = list(zip(*rows, strict=True))
    types = ("int", "int", "int", "timestamp", "timestamp", "timestamp", "timestamp")
    names = ("id", *CLOCK_COLUMNS)
    arrays = ", ".join(f"CAST(:c{i} AS {t}[])" for i, t in enumerate(types))
    assignments = [f"{c} = v.{c}" for c in CLOCK_COLUMNS]
    params = {f"c{i}": list(column) for i, column in enumerate(columns)}
    for index, (key, value) in enumerate(extra.items()):
        assignments.append(f"{key} = :e{index}")
        params[f"e{index}"] = _naive(value)
    db.session.execute(
        text(
            f"UPDATE ticket SET {', '.join(assignments)} FROM unnest({arrays}) AS v({', '.join(names)}) "
            "WHERE ticket.id = v.id"
        ),
        params,
    )
