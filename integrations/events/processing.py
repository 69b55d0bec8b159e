"""Processing stored occurrences: a batch at a time, bound to CIs, applied to each alert's state and
correlated.

Processing claims the queued rows (``SKIP LOCKED`` on PostgreSQL, so two workers never take the same
rows), binds them to CIs (binding.py, outside any lock), then, under one database-wide lock (a
PostgreSQL advisory lock held to the commit; SQLite's writers are serial anyway), updates each
alert's current state and correlates (correlation.py). One incident per root cause is also guarded
by the database: a unique key on the open group's root CI. An occurrence older than one already
applied to its alert (two workers, out of order) is kept as history and changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import nullcontext
from datetime import timedelta

from sqlalchemy import select, tuple_, update

from cairn.db import db, utcnow
from cairn.uow import checkpoint
from cmdb.models import ConfigurationItem
from integrations.events import binding, settings
from integrations.events.correlation import Correlator, GroupState, Member
from integrations.events.incidents import evaluate, maintenance_map, note_on_change, write_incident
from integrations.events.models import EventGroup, EventOccurrence, MonitoringEvent, lock_correlation
from relations import graphd
from relations.graph import live_graph
from tickets import services as tickets
from tickets import workflow
from tickets.models import Ticket

log = logging.getLogger("cairn.events")

# ---------------------------------------------------------------------------------------------
# Processing


def process_range(first_id: int, last_id: int) -> dict[str, int]:
    """Process the queued occurrences from ``first_id`` on, a batch per transaction, until the ones up
    to ``last_id`` are done. A job that finds a backlog takes whole batches of it (rows past its
    range included), so a storm is processed in a few large batches rather than many small ones.
    Idempotent: processed rows are skipped, rows another worker holds are left to it."""
    counts: dict[str, int] = defaultdict(int)
    batch = int(settings.get("CAIRN_EVENTS_BATCH"))
    # Seed the default binding rules outside the batches' savepoints: seeded inside a batch that
    # failed, they would be rolled back and seeded again by each event's retry.
    binding.rules()
    while True:
        rows = _claim(first_id, batch)
        if not rows:
            break
        try:
            with db.session.begin_nested():
                done = process_batch(rows)
        except Exception:  # noqa: BLE001 - one bad event must not hold back the others
            log.warning("events %s-%s: the batch failed, processing its events one by one", first_id, last_id,
                        exc_info=True)  # fmt: skip
            done = _one_by_one([row.id for row in rows])
        for outcome, n in done.items():
            counts[outcome] += n
        checkpoint()
        if rows[0].id > last_id:
            break  # the range is done (or held by another worker): this batch was the backlog's
    return dict(counts)


def _one_by_one(ids: list[int]) -> dict[str, int]:
    """Process each occurrence alone; one that fails is marked ``failed`` with the reason."""
    counts: dict[str, int] = defaultdict(int)
    for occurrence_id in ids:
        row = db.session.get(EventOccurrence, occurrence_id, populate_existing=True)
        try:
            with db.session.begin_nested():
                done = process_batch([row])
        except Exception as exc:  # noqa: BLE001
            log.warning("event occurrence %s failed: %s", occurrence_id, exc, exc_info=True)
            row = db.session.get(EventOccurrence, occurrence_id, populate_existing=True)
            row.processing, row.processed_at = "failed", utcnow()
            row.reason = f"{type(exc).__name__}: {exc}"[:500]
            done = {"failed": 1}
        for outcome, n in done.items():
            counts[outcome] += n
    return dict(counts)


def _claim(first_id: int, limit: int) -> list[EventOccurrence]:
    o = EventOccurrence
    stmt = select(o).where(o.id >= first_id, o.processing == "queued").order_by(o.id).limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(db.session.scalars(stmt.execution_options(populate_existing=True)))


def process_batch(rows: list[EventOccurrence]) -> dict[str, int]:
    """Bind, update the alerts' state, correlate and write the incidents, for rows claimed together."""
    rules = binding.rules()
    keys = {row.id: binding.keys_of(row.ci_hints or {}, row.labels or {}, rules) for row in rows}
    found = binding.resolve({k for ks in keys.values() for k in ks})
    bound = {row.id: binding.bind(keys[row.id], found) for row in rows}
    lock_correlation()
    return Batch(rows, bound).run()


class Batch:
    """One batch's work under the correlation lock."""

    def __init__(self, rows: list[EventOccurrence], bound: dict[int, tuple[int | None, str]]):
        self.rows = rows
        self.bound = bound
        self.now = utcnow()
        self.window = timedelta(seconds=int(settings.get("CAIRN_EVENTS_WINDOW_SECONDS")))
        self.flap = timedelta(minutes=float(settings.get("CAIRN_EVENTS_FLAP_MINUTES")))
        self.hops = int(settings.get("CAIRN_EVENTS_CORRELATION_HOPS"))
        self.counts: dict[str, int] = defaultdict(int)
        self.groups: dict[int, GroupState] = {}
        # CI -> the active groups with a CI that is it or depends on it (built when first needed)
        self.near: dict[int, set[int]] | None = None
        self.suppressed: dict[int, list[MonitoringEvent]] = defaultdict(list)

    def run(self) -> dict[str, int]:
        alerts = self._alerts()
        maintenance = maintenance_map()
        self._load_open_groups()
        # With a graph host, the walks are asked of it (one graph per host); else this process's own.
        with nullcontext() if graphd.socket_path() else live_graph() as graph:
            self.correlator = Correlator(graph, self.hops)
            self.correlator.prefetch({ci_id for ci_id, _ in self.bound.values() if ci_id is not None})
            for row in self.rows:
                alert = alerts[(row.source, row.fingerprint)]
                self._apply(row, alert, maintenance)
            for state in list(self.groups.values()):
                if state.touched and state.group.state == "open":
                    self._settle_root(state)
        for state in list(self.groups.values()):
            if state.touched and state.group.state == "open":
                write_incident(state, self.hops)
                evaluate(state, self.now, self.flap)
        for change_id, suppressed in self.suppressed.items():
            note_on_change(change_id, suppressed)
        db.session.flush()
        return dict(self.counts)

    # -- alerts
    def _alerts(self) -> dict[tuple[str, str], MonitoringEvent]:
        m = MonitoringEvent
        pairs = sorted({(r.source, r.fingerprint) for r in self.rows})
        alerts = {}
        for i in range(0, len(pairs), 500):
            for alert in db.session.scalars(select(m).where(tuple_(m.source, m.fingerprint).in_(pairs[i : i + 500]))):
                alerts[(alert.source, alert.fingerprint)] = alert
        for source, fingerprint in pairs:
            if (source, fingerprint) not in alerts:
                alert = MonitoringEvent(
                    source=source, fingerprint=fingerprint, status="new", severity="", summary="", labels={},
                    ci_hints={}, disposition="pending", first_seen_at=self.now, last_seen_at=self.now,
                    last_change_at=self.now, flap_count=0, occurrences=0, last_occurrence_id=0,
                )  # fmt: skip
                db.session.add(alert)
                alerts[(source, fingerprint)] = alert
        db.session.flush()
        return alerts

    def _apply(self, row: EventOccurrence, alert: MonitoringEvent, maintenance: dict[int, int]) -> None:
        ci_id, bound_by = self.bound[row.id]
        if row.id < alert.last_occurrence_id:
            row.processing, row.outcome, row.alert_id, row.processed_at = "processed", "stale", alert.id, self.now
            self.counts["stale"] += 1
            return
        alert.last_occurrence_id = row.id
        changed = alert.status != row.status
        outcome = "new" if alert.status == "new" else ("changed" if changed else "repeat")
        if changed and alert.status != "new":
            recent = self.now - alert.last_change_at < self.flap
            alert.flap_count = (alert.flap_count or 0) + 1 if recent else 1
        if changed:
            alert.last_change_at = self.now
        alert.status = row.status
        alert.severity, alert.summary, alert.labels, alert.ci_hints = (
            row.severity, row.summary, row.labels, row.ci_hints,
        )  # fmt: skip
        alert.starts_at = row.starts_at or alert.starts_at
        alert.ends_at = row.ends_at if row.status == "resolved" else None
        alert.last_seen_at = self.now
        alert.occurrences = (alert.occurrences or 0) + 1
        if ci_id is not None:
            alert.ci_id, alert.bound_by = ci_id, bound_by[:200]
        elif alert.ci_id is None:
            alert.bound_by = bound_by[:200]
        row.processing, row.outcome, row.alert_id, row.processed_at = "processed", outcome, alert.id, self.now
        self.counts[outcome] += 1
        state = self.groups.get(alert.group_id) if alert.group_id else None
        if state is not None:
            member = state.members.get(alert.id)
            if member is not None:
                member.status, member.flap_count, member.last_change_at = (
                    alert.status, alert.flap_count, alert.last_change_at,
                )  # fmt: skip
            state.touched = True
            state.group.last_event_at = self.now
            return
        if alert.status != "firing":
            return
        if outcome == "repeat" and alert.disposition not in ("pending", "unbound"):
            return  # the same firing again (a sender's re-send): it was handled when it began
        self._route(alert, maintenance)

    def _route(self, alert: MonitoringEvent, maintenance: dict[int, int]) -> None:
        """A firing alert that is in no open group: unbound, maintenance, a reopened group, or placed."""
        if alert.ci_id is None:
            alert.disposition, alert.group_id, alert.ticket_id = "unbound", None, None
            self.counts["unbound"] += 1
            return
        change_id = maintenance.get(alert.ci_id)
        if change_id is not None:
            alert.disposition, alert.group_id, alert.ticket_id = "maintenance", None, change_id
            self.suppressed[change_id].append(alert)
            self.counts["suppressed"] += 1
            return
        state = self._reopen(alert) or self._place(alert.ci_id)
        state.add(alert.id, Member(alert.ci_id, alert.status, alert.flap_count, alert.last_change_at))
        state.touched, state.joined = True, state.joined + 1
        state.group.last_event_at = self.now
        alert.group_id, alert.disposition, alert.ticket_id = state.group.id, "correlated", state.group.ticket_id
        self._index_near(state, {alert.ci_id})

    # -- groups
    def _load_open_groups(self) -> None:
        g = EventGroup
        found = list(db.session.scalars(select(g).where(g.state == "open").order_by(g.id)))
        done = set()
        if found:
            done = set(
                db.session.scalars(
                    select(Ticket.id).where(
                        Ticket.id.in_([x.ticket_id for x in found if x.ticket_id]),
                        Ticket.state.in_(workflow.DONE_STATES),
                    )
                )
            )
        for group in found:
            if group.ticket_id in done:  # a person resolved or closed the incident: the group is over
                group.state, group.open_root, group.resolved_at = "resolved", None, self.now
                continue
            self.groups[group.id] = GroupState(group, started_root=group.root_ci_id)
        self._load_members(list(self.groups))

    def _load_members(self, group_ids: list[int]) -> None:
        m = MonitoringEvent
        for i in range(0, len(group_ids), 500):
            for alert_id, group_id, ci_id, status, flaps, changed_at in db.session.execute(
                select(m.id, m.group_id, m.ci_id, m.status, m.flap_count, m.last_change_at).where(
                    m.group_id.in_(group_ids[i : i + 500]), m.ci_id.is_not(None)
                )
            ):
                self.groups[group_id].add(alert_id, Member(ci_id, status, flaps, changed_at))

    def _active(self, state: GroupState) -> bool:
        return self.now - state.group.last_event_at <= self.window

    def _near(self) -> dict[int, set[int]]:
        """The index of the active groups' upstream CIs, built the first time an alert is not
        explained by a group's root (in a storm, after the first few alerts, every one is)."""
        if self.near is None:
            self.near = defaultdict(set)
            for state in self.groups.values():
                if state.group.state == "open" and self._active(state):
                    self._index_near(state, state.cis())
        return self.near

    def _index_near(self, state: GroupState, cis) -> None:
        if self.near is None:
            return  # added when the index is built
        group_id = state.group.id
        for ci_id in cis:
            for n in self.correlator.upstream(ci_id):
                self.near[n].add(group_id)

    def _place(self, ci_id: int) -> GroupState:
        open_groups = [s for s in self.groups.values() if s.group.state == "open"]
        fitting = [s for s in open_groups if self.correlator.explained(ci_id, s)]
        if not fitting:
            near = self._near()
            fitting = [s for s in open_groups if self._active(s) and self.correlator.near(ci_id, s, near)]
        if not fitting:
            return self._new_group(ci_id)
        target = min(fitting, key=lambda s: s.group.id)
        for other in fitting:
            if other is not target:
                self._merge(other, target)
        if not self.correlator.extend_root(target, ci_id):
            target.group.covers_all = False  # a full ranking once the batch has placed everything
        return target

    def _new_group(self, ci_id: int) -> GroupState:
        group = EventGroup(
            root_ci_id=ci_id, open_root=ci_id, rule="single_ci", covers_all=True, reasoning={}, state="open",
            opened_at=self.now, last_event_at=self.now, alert_count=0, firing_count=0,
        )  # fmt: skip
        db.session.add(group)
        db.session.flush()  # the unique open root: a second open group for one root fails here
        state = self.groups[group.id] = GroupState(group, new=True)
        self.counts["groups_opened"] += 1
        return state

    def _merge(self, source: GroupState, target: GroupState) -> None:
        """``source``'s alerts join ``target``; its incident is resolved as a duplicate of target's."""
        moved = list(source.members)
        target.absorb(source)
        target.touched = True
        target.group.covers_all = False
        db.session.execute(
            update(MonitoringEvent)
            .where(MonitoringEvent.group_id == source.group.id)
            .values(group_id=target.group.id, ticket_id=target.group.ticket_id)
        )
        group = source.group
        group.state, group.open_root, group.merged_into_id, group.resolved_at = (
            "merged",
            None,
            target.group.id,
            self.now,
        )
        db.session.flush()
        for alert_id in moved:
            alert = db.session.get(MonitoringEvent, alert_id)
            if alert is not None:
                alert.group_id = target.group.id
        target.merged_tickets.append(group.ticket_id)
        self.counts["groups_merged"] += 1

    def _reopen(self, alert: MonitoringEvent) -> GroupState | None:
        """An alert re-firing within the flap window of its resolved group reopens that group."""
        if alert.group_id is None:
            return None
        group = db.session.get(EventGroup, alert.group_id)
        if group is None or group.state != "resolved" or group.resolved_at is None:
            return None
        if self.now - group.resolved_at > self.flap:
            return None
        if any(s.group.open_root == group.root_ci_id for s in self.groups.values()):
            return None
        ticket = db.session.get(Ticket, group.ticket_id) if group.ticket_id else None
        if ticket is None or ticket.state in workflow.CLOSED_STATES:
            return None
        group.state, group.open_root, group.resolved_at = "open", group.root_ci_id, None
        db.session.flush()
        state = self.groups[group.id] = GroupState(group, started_root=group.root_ci_id)
        self._load_members([group.id])
        if ticket.state == "resolved":
            tickets.transition(
                ticket, "in_progress",
                {"note": f"Alert {alert.summary or alert.fingerprint} fired again within "
                 f"{self.flap.total_seconds() / 60:g} minutes of the resolution: flapping. The incident "
                 "stays open until its alerts have been quiet that long."},
                None, system=True,
            )  # fmt: skip
        self.counts["groups_reopened"] += 1
        return state

    def _settle_root(self, state: GroupState) -> None:
        group = state.group
        cis = state.cis()
        if not cis:
            return
        if not group.covers_all or state.new:
            root, rule, covers_all, figures = self.correlator.choose_root(cis)
            group.rule, group.covers_all = rule, covers_all
        else:
            root = group.root_ci_id
            figures = {"explained": len(cis), "alerting": len(cis)}
        if root != group.root_ci_id or group.open_root != root:
            taken = next((s for s in self.groups.values() if s is not state and s.group.open_root == root), None)
            if taken is not None:
                self._merge(state, taken)
                taken.touched = True
                self._settle_root(taken)
                return
            group.open_root = None
            db.session.flush()
            group.root_ci_id, group.open_root = root, root
            db.session.flush()
        services = (group.reasoning or {}).get("business_services")
        group.reasoning = _reasoning(group, figures, self.hops)
        if services is not None and root == state.started_root:
            group.reasoning["business_services"] = services  # known for this root: not walked again


def _reasoning(group: EventGroup, figures: dict, hops: int) -> dict:
    root = db.session.get(ConfigurationItem, group.root_ci_id)
    name = root.name if root else f"CI {group.root_ci_id}"
    n, k = figures.get("alerting", 0), figures.get("explained", 0)
    if group.rule == "single_ci":
        why = f"One alerting CI: {name}."
    elif group.rule == "alerting_ancestor":
        why = f"{name} is alerting and the other {n - 1} alerting CIs depend on it (within {hops} hops)."
    else:
        why = (
            f"No alerting CI explains the others; {name}'s blast radius covers {k} of the {n} alerting CIs, "
            "more than any other CI's."
        )
    return {"rule": group.rule, "root_ci_id": group.root_ci_id, "root_name": name, "text": why, **figures}
