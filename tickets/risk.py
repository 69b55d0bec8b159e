"""Change risk: facts about a change, scored by rules that are plain data.

Each rule reads one fact and gives the points of the highest tier the fact reaches. The reasons list
every rule that gave points, with its contribution, so a change manager sees why a change is high.
Change a weight or a threshold here, not in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from cairn.config import setting
from cairn.db import db, utcnow
from tickets import workflow
from tickets.models import Ticket, TicketCI

CRITICALITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Rule:
    name: str
    fact: str
    label: str  # "{value}" is the fact's value
    tiers: tuple[tuple[int, int], ...]  # (threshold the fact reaches, points), ascending


RULES: tuple[Rule, ...] = (
    Rule("blast_radius", "impacted_cis", "{value} CIs in the blast radius", ((1, 5), (10, 10), (50, 20), (200, 30))),
    Rule("business_services", "business_services", "{value} business services impacted", ((1, 15), (3, 25))),
    Rule("criticality", "max_criticality", "highest criticality touched: {label}", ((2, 10), (3, 20))),
    Rule(
        "open_major_incidents",
        "open_major_incidents",
        "{value} open P1/P2 incidents on impacted CIs",
        ((1, 15), (3, 25)),
    ),
    Rule(
        "recent_failed_changes",
        "recent_failed_changes",
        "{value} failed or backed-out changes on these CIs in the last 90 days",
        ((1, 15), (2, 25)),
    ),
    Rule("conflicts", "conflicts", "{value} other changes overlap and meet this one", ((1, 15), (3, 25))),
    Rule("business_hours", "in_business_hours", "window falls inside business hours", ((1, 10),)),
)

# Score at or above each threshold gives the level; checked highest first.
LEVELS: tuple[tuple[int, str], ...] = ((50, "high"), (25, "medium"), (0, "low"))

DEFAULT_BUSINESS_HOURS = {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "timezone": "UTC"}


def score(facts: dict) -> dict:
    """Apply the rules to facts: ``{risk, score, reasons: [{rule, reason, value, points}]}``."""
    reasons, total = [], 0
    for rule in RULES:
        value = int(facts.get(rule.fact) or 0)
        points = 0
        for threshold, tier_points in rule.tiers:
            if value >= threshold:
                points = tier_points
        if points:
            label = next((k for k, v in CRITICALITY_RANK.items() if v == value), str(value))
            reasons.append(
                {
                    "rule": rule.name,
                    "reason": rule.label.format(value=value, label=label),
                    "value": value,
                    "points": points,
                }
            )
            total += points
    level = next(name for threshold, name in LEVELS if total >= threshold)
    return {"risk": level, "score": total, "reasons": reasons}


def assess(ticket: Ticket, ci_ids: list[int]) -> dict:
    """Gather the facts of a change and score them."""
    return score(facts_of(ticket, ci_ids))


def facts_of(ticket: Ticket, ci_ids: list[int]) -> dict:
    from cmdb.models import ConfigurationItem
    from tickets import graph

    ci_ids = list(ci_ids)
    radius = graph.blast_radius(ci_ids) if ci_ids else None
    impacted = [item.ci_id for item in radius.impacted] if radius else []
    touched = set(ci_ids) | set(impacted)
    ranks = [CRITICALITY_RANK.get(item.criticality, 1) for item in radius.impacted] if radius else []
    if ci_ids:
        own = db.session.scalars(select(ConfigurationItem.criticality).where(ConfigurationItem.id.in_(ci_ids)))
        ranks += [CRITICALITY_RANK.get(c, 1) for c in own]
    facts = {
        "impacted_cis": len(impacted),
        "business_services": len(radius.business_services) if radius else 0,
        "max_criticality": max(ranks) if ranks else 0,
        "open_major_incidents": _open_major_incidents(touched),
        "recent_failed_changes": _recent_failed_changes(ticket, ci_ids),
        "conflicts": len(graph.conflicts(ticket, ci_ids, radius=radius)) if radius and ticket.planned_start else 0,
        "in_business_hours": int(in_business_hours(ticket.planned_start, ticket.planned_end)),
    }
    return facts


def _open_major_incidents(ci_ids: set[int]) -> int:
    if not ci_ids:
        return 0
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id.in_(ci_ids), TicketCI.removed_at.is_(None))
    return db.session.scalar(
        select(func.count()).where(
            Ticket.id.in_(linked),
            Ticket.kind == "incident",
            Ticket.priority <= 2,
            Ticket.state.not_in(workflow.DONE_STATES),
        )
    )


def _recent_failed_changes(ticket: Ticket, ci_ids: list[int]) -> int:
    if not ci_ids:
        return 0
    since = utcnow() - timedelta(days=90)
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id.in_(ci_ids))
    return db.session.scalar(
        select(func.count()).where(
            Ticket.id.in_(linked),
            Ticket.id != (ticket.id or 0),
            Ticket.kind == "change",
            Ticket.outcome.in_(("failed", "backed_out")),
            func.coalesce(Ticket.actual_end, Ticket.updated_at) >= since,
        )
    )


def business_hours() -> dict:
    configured = setting("CAIRN_BUSINESS_HOURS", {})
    return {**DEFAULT_BUSINESS_HOURS, **configured}


def in_business_hours(start: datetime | None, end: datetime | None) -> bool:
    """Whether [start, end) shares any time with the business hours (CAIRN_BUSINESS_HOURS)."""
    if start is None or end is None or end <= start:
        return False
    hours = business_hours()
    zone = ZoneInfo(hours["timezone"])
    opens, closes = time.fromisoformat(hours["start"]), time.fromisoformat(hours["end"])
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day = local_start.date()
    # A window longer than a fortnight certainly spans a working day; don't walk it.
    for _ in range(15):
        if day > local_end.date():
            return False
        if day.weekday() in hours["days"]:
            open_at = datetime.combine(day, opens, zone).astimezone(UTC)
            close_at = datetime.combine(day, closes, zone).astimezone(UTC)
            if start < close_at and end > open_at:
                return True
        day += timedelta(days=1)
    return True
