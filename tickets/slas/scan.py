"""The periodic SLA scan: warnings, breaches and escalations, each fired once.

Each ticket with a business-hours clock stores ``sla_next_check_at``, the earliest instant at
which one of its conditions (a warning at ``warn_at`` of a target, a breach) is reached and has not
fired; the scan reads only the tickets whose instant has come (an index seek, whatever the number
of open tickets), fires what they crossed, and stores their next instant. Idle rules read the
tickets unchanged for at least that many wall-clock hours (business hours are never fewer) and
count the business hours exactly.

"Once" is a row in ``sla_firing`` under a unique (ticket, condition, since) key, inserted before
anything else is done for it: two scans racing fire once, and a clock that starts again (a new
team's OLA, a new idle period after a change) has a new ``since``. Each firing is a change-log row
on the ticket (``sla_warning``, ``sla_breach``, ``ola_warning``, ``ola_breach``, ``escalation``),
which is the ``ticket.updated`` event webhooks carry and the notifications read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from cairn.audit.mixin import jsonable, record_rows, write_as
from cairn.auth.models import Team, User
from cairn.db import db, utcnow
from cairn.errors import DomainError
from tickets import services as ticket_services
from tickets import workflow
from tickets.models import Ticket, TicketCI
from tickets.slas import business_time, clocks, recompute
from tickets.slas.models import EscalationRule, SLAFiring, SLAPolicy

log = logging.getLogger("cairn.sla")
BATCH = 1000


def scan(now: datetime | None = None, limit: int = BATCH, max_batches: int = 1000) -> dict[str, int]:
    """Fire every warning, breach and escalation due by ``now``; returns counts."""
    now = now or utcnow()
    rules = list(db.session.scalars(select(EscalationRule).order_by(EscalationRule.order, EscalationRule.id)))
    counts = {"tickets": 0, "warnings": 0, "breaches": 0, "escalations": 0}
    last: tuple[datetime, int] | None = None
    for _ in range(max_batches):
        stmt = (
            select(Ticket)
            .options(lazyload("*"))
            .where(Ticket.sla_next_check_at <= now, Ticket.state.not_in(workflow.DONE_STATES))
            .order_by(Ticket.sla_next_check_at, Ticket.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Ticket)
        )
        if last is not None:  # keyset: a ticket whose next check is still due is not read twice
            stmt = stmt.where(tuple_(Ticket.sla_next_check_at, Ticket.id) > last)
        batch = list(db.session.scalars(stmt))
        if not batch:
            break
        last = (batch[-1].sla_next_check_at, batch[-1].id)
        counts["tickets"] += len(batch)
        _batch(batch, now, rules, counts)
    for rule in rules:
        if rule.on == "idle":
            counts["escalations"] += _idle(rule, now, limit)
    return counts


def _batch(batch: list[Ticket], now: datetime, rules: list[EscalationRule], counts: dict) -> None:
    """Fire what a batch of tickets crossed: the firing rows, the history rows and the tickets' new
    next-check times each written in one statement; then the escalations, one by one."""
    fired = clocks.fired_keys(t.id for t in batch)
    loaded = clocks.all_policies()
    policies = {p.id: p for p in loaded}
    # While a recomputation after an edit is pending, a ticket may still name a policy it no
    # longer matches: match it again first, so what fires is what its policy now says.
    rematch = recompute.pending()
    firings, history, escalations = [], [], []
    plain, breached = [], []
    for ticket in batch:
        done = fired.setdefault(ticket.id, set())
        if rematch:
            for key, value in clocks.refresh(ticket, now, policies=loaded, fired=done).items():
                set_committed_value(ticket, key, value)
        newly_breached = False
        running_clocks = clocks.clocks(clocks.View(ticket), now, policies)
        for running in running_clocks:
            already = clocks.fired_for(running, done)
            for target, condition in running.crossed(now):
                key = f"{running.name}.{target}.{condition}"
                if key in already:
                    continue
                done.add(f"{key}@{running.since.isoformat()}")
                firings.append({"ticket_id": ticket.id, "key": key, "since": running.since, "fired_at": now})
                changes = {f"{running.name}_{condition}": [None, target]}
                if running.name == "sla" and condition == "breach" and not ticket.sla_breached and not newly_breached:
                    newly_breached = True
                    changes.update(sla_breached=[False, True], sla_breached_at=[None, jsonable(now)])
                label = "OLA" if running.name == "ola" else "SLA"
                verb = "breached" if condition == "breach" else "reached the warning share of"
                history.append((ticket, changes, f"{ticket.number} {verb} its {target} {label}"))
                counts["breaches" if condition == "breach" else "warnings"] += 1
                escalations += [(rule, ticket, key, running.since) for rule in rules if rule.on == condition]
        values = {"sla_next_check_at": clocks.next_check(ticket, now, done, running=running_clocks)}
        (breached if newly_breached else plain).append((ticket, values))
    if firings:
        db.session.execute(insert(SLAFiring), firings)
    if history:
        links = _ci_ids({ticket.id for ticket, _, _ in history})
        record_rows(
            db.session,
            [
                ("ticket", t.id, "update", changes, summary[:300], links.get(t.id, set()))
                for t, changes, summary in history
            ],
        )
    clocks.store(plain)
    clocks.store(breached, {"sla_breached": True, "sla_breached_at": now})
    for rule, ticket, key, since in escalations:
        if clocks.matches(rule, clocks.facts(ticket), team="assigned"):
            counts["escalations"] += _escalate(rule, ticket, key, since, now)


def _ci_ids(ticket_ids: set[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    rows = db.session.execute(
        select(TicketCI.ticket_id, TicketCI.ci_id).where(
            TicketCI.ticket_id.in_(ticket_ids), TicketCI.removed_at.is_(None)
        )
    )
    for ticket_id, ci_id in rows:
        out.setdefault(ticket_id, set()).add(ci_id)
    return out


def _claim(ticket_id: int, key: str, since: datetime, rule_id: int | None, now: datetime) -> bool:
    """Insert the firing row; False when it fired already (here or in a concurrent scan)."""
    try:
        with db.session.begin_nested():
            db.session.add(SLAFiring(ticket_id=ticket_id, key=key, since=since, rule_id=rule_id, fired_at=now))
        return True
    except IntegrityError:
        return False


def _record(ticket: Ticket, values: dict, summary: str, extra: dict) -> None:
    db.session.flush()
    for key, value in values.items():
        setattr(ticket, key, value)
    write_as(db.session, ticket, "update", summary[:300], extra)


def _idle(rule: EscalationRule, now: datetime, limit: int) -> int:
    """Fire an idle rule for the open tickets (not on hold) unchanged for its business hours."""
    seconds = rule.idle_business_hours * 3600
    key = f"rule:{rule.id}:idle"
    t = Ticket
    stmt = select(t).where(
        t.state.not_in(workflow.DONE_STATES),
        t.on_hold_since.is_(None),
        t.updated_at <= now - timedelta(seconds=seconds),
        ~exists().where(SLAFiring.ticket_id == t.id, SLAFiring.key == key, SLAFiring.since == t.updated_at),
    )
    for name in ("kind", "priority", "category_id", "team_id"):
        wanted = getattr(rule, f"match_{name}")
        if wanted is not None:
            stmt = stmt.where(getattr(t, name) == wanted)
    if rule.match_service_ci_id is not None:
        stmt = stmt.where(
            exists().where(
                and_(
                    TicketCI.ticket_id == t.id,
                    TicketCI.ci_id == rule.match_service_ci_id,
                    TicketCI.removed_at.is_(None),
                )
            )
        )
    fired = 0
    for ticket in list(db.session.scalars(stmt.order_by(t.id).limit(limit).with_for_update(skip_locked=True, of=t))):
        policy = db.session.get(SLAPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
        calendar = clocks.to_calendar(policy.calendar) if policy else business_time.always_open()
        if business_time.business_seconds_between(calendar, ticket.updated_at, now) >= seconds:
            fired += _escalate(rule, ticket, "idle", ticket.updated_at, now)
    return fired


def _escalate(rule: EscalationRule, ticket: Ticket, condition: str, since: datetime, now: datetime) -> int:
    """Run the rule's actions on the ticket once for (rule, ticket, condition, since); record it."""
    key = f"rule:{rule.id}:idle" if condition == "idle" else f"rule:{rule.id}:{condition}"
    if not _claim(ticket.id, key, since, rule.id, now):
        return 0
    recipients: list[str] = []
    outcomes: list[str] = []
    for action in rule.actions:
        if "notify" in action:
            recipients += _recipients(ticket, action["notify"])
            continue
        try:
            with db.session.begin_nested():
                outcomes.append(_act(ticket, action))
        except DomainError as error:
            outcomes.append(f"skipped: {error.detail}")
    _record(
        ticket,
        {},
        f"{ticket.number} escalated by rule {rule.name} ({condition})",
        {
            "escalation": [
                None,
                {
                    "rule_id": rule.id,
                    "rule": rule.name,
                    "condition": condition,
                    "notify": sorted(set(recipients)),
                    "outcomes": outcomes,
                },
            ]
        },
    )
    log.info("escalation rule %s fired for ticket %s (%s)", rule.id, ticket.id, condition)
    return 1


def _act(ticket: Ticket, action: dict) -> str:
    if "reassign_team_id" in action:
        team_id = action["reassign_team_id"]
        if team_id == ticket.team_id:
            return f"already with team {team_id}"
        ticket_services.update_ticket(ticket, {"team_id": team_id}, None)
        return f"reassigned to team {team_id}"
    if "raise_priority" in action:
        if ticket.urgency > 1:
            ticket_services.update_ticket(ticket, {"urgency": ticket.urgency - 1}, None)
        elif ticket.impact > 1:
            ticket_services.update_ticket(ticket, {"impact": ticket.impact - 1}, None)
        else:
            return "priority already 1"
        return f"priority raised to {ticket.priority}"
    user_id = action["add_watcher_id"]
    ticket_services.add_watcher(ticket, user_id)
    return f"user {user_id} watches"


def _recipients(ticket: Ticket, notify: list[str]) -> list[str]:
    out: list[str] = []
    for target in notify:
        if target == "assignee":
            user = db.session.get(User, ticket.assignee_id) if ticket.assignee_id else None
            out += [user.email] if user is not None and user.active else []
        elif target == "team":
            team = db.session.get(Team, ticket.team_id) if ticket.team_id else None
            if team is not None:
                out += [team.email] if team.email else [m.email for m in team.members if m.active]
        else:
            out.append(target)
    return [address.lower() for address in out]
