"""Change risk: facts about a change, scored by rules that are plain data.

Each rule reads one fact and gives the points of the highest tier the fact reaches. Every factor is
listed in the answer (``risk_factors``: the rule, what it found, its points and the most it can
give); those that gave points are the ``risk_reasons``. Change a weight or a threshold here, not in
code. The factors, and why each weighs what it does:

- ``criticality``: the most critical CI the change touches itself (low 0 .. critical 25).
- ``ci_class``: what kind of CI it is (CLASS_TIERS): an end-user device or a printer 0, an
  application, VM or access point 5, servers, storage, databases and clusters 10, the core
  (switches, routers, firewalls, racks, power) 15. A printer's firmware is not a core switch.
- ``blast_radius``: how many CIs fail with the change's CIs; a CI only degraded (a cluster that
  keeps enough members) counts half.
- ``business_services``: business services taken down (15, three or more 25);
  ``business_services_degraded``: those only degraded (5, three or more 10).
- ``impacted_criticality``: the most critical CI the change would take down (high 5, critical 10).
- ``open_major_incidents``: open P1/P2 incidents on the CIs or their blast radius.
- ``recent_failed_changes``: failed or backed-out changes on the same CIs in the last 90 days.
- ``conflicts``: other open changes whose window overlaps and whose CIs or blast radius meet this one's.
- ``business_hours``: the window meets business hours (CAIRN_BUSINESS_HOURS).
- ``blackout``: the window meets a blackout (only an emergency change gets that far).
- ``emergency``: an emergency change, built and tested under time pressure.

Levels: ``high`` from 50 points, ``medium`` from 25, else ``low``. An open change's risk is computed
when it is read (``current``), so a new incident or a colliding change shows at once; the stored copy
(written at each transition and edit) is what the change log keeps and what a finished change shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from cairn.config import setting
from cairn.db import db, id_in, utcnow
from tickets import workflow
from tickets.models import Ticket, TicketCI

CRITICALITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
CRITICALITY_NAMES = {v: k for k, v in CRITICALITY_RANK.items()}

# How sensitive a kind of CI is to change, 0 (an end-user device) .. 3 (the core everything runs on).
CLASS_TIER_NAMES = {0: "end-user device", 1: "edge or application", 2: "infrastructure", 3: "core infrastructure"}
CLASS_TIERS = {
    "laptop": 0, "desktop": 0, "mobile_phone": 0, "tablet": 0, "printer": 0,
    "access_point": 1, "virtual_machine": 1, "container": 1, "application": 1, "software": 1,
    "cloud_service": 1,
    "server": 2, "storage": 2, "database": 2, "cluster": 2, "load_balancer": 2, "cloud_account": 2,
    "business_service": 2,
    "network_switch": 3, "router": 3, "firewall": 3, "rack": 3, "pdu": 3, "ups": 3,
}  # fmt: skip
# Classes not named above (custom ones) by their category.
CATEGORY_TIERS = {"mobile": 0, "hardware": 1, "software": 1, "cloud": 1, "service": 2, "network": 2}


@dataclass(frozen=True)
class Rule:
    name: str
    fact: str
    label: str  # formatted with the facts; "{value}" is this rule's fact, "{label}" its name
    tiers: tuple[tuple[int, int], ...]  # (threshold the fact reaches, points), ascending
    names: dict[int, str] | None = None  # names of the fact's values, for "{label}"

    @property
    def max_points(self) -> int:
        return self.tiers[-1][1]


RULES: tuple[Rule, ...] = (
    Rule("criticality", "criticality", "most critical CI changed: {label}", ((1, 5), (2, 15), (3, 25)),
         CRITICALITY_NAMES),
    Rule("ci_class", "class_tier", "most sensitive kind of CI changed: {label} ({class_name})",
         ((1, 5), (2, 10), (3, 15)), CLASS_TIER_NAMES),
    Rule("blast_radius", "impacted_cis",
         "{value} CIs in the blast radius ({impacted_down} down, {impacted_degraded} degraded, counted half)",
         ((1, 5), (10, 10), (50, 20), (150, 30))),
    Rule("business_services", "business_services", "{value} business services down", ((1, 15), (3, 25))),
    Rule("business_services_degraded", "business_services_degraded", "{value} business services degraded",
         ((1, 5), (3, 10))),
    Rule("impacted_criticality", "impacted_criticality", "most critical CI taken down: {label}",
         ((2, 5), (3, 10)), CRITICALITY_NAMES),
    Rule("open_major_incidents", "open_major_incidents", "{value} open P1/P2 incidents on impacted CIs",
         ((1, 15), (3, 25))),
    Rule("recent_failed_changes", "recent_failed_changes",
         "{value} failed or backed-out changes on these CIs in the last 90 days", ((1, 15), (2, 25))),
    Rule("conflicts", "conflicts", "{value} other changes overlap and meet this one", ((1, 15), (3, 25))),
    Rule("business_hours", "in_business_hours", "window falls inside business hours", ((1, 10),)),
    Rule("blackout", "in_blackout", "window meets a blackout", ((1, 25),)),
    Rule("emergency", "emergency", "emergency change: built and tested under time pressure", ((1, 15),)),
)  # fmt: skip

# Score at or above each threshold gives the level; checked highest first.
LEVELS: tuple[tuple[int, str], ...] = ((50, "high"), (25, "medium"), (0, "low"))

DEFAULT_BUSINESS_HOURS = {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "timezone": "UTC"}


def score(facts: dict) -> dict:
    """Apply the rules to facts: ``{risk, score, reasons, factors}``; each factor is ``{rule,
    reason, value, points, max_points}``, the reasons are the factors that gave points."""
    factors, total = [], 0
    for rule in RULES:
        value = int(facts.get(rule.fact) or 0)
        points = 0
        for threshold, tier_points in rule.tiers:
            if value >= threshold:
                points = tier_points
        label = (rule.names or {}).get(value, str(value))
        context = {"class_name": "", "impacted_down": 0, "impacted_degraded": 0, **facts}
        factors.append(
            {
                "rule": rule.name,
                "reason": rule.label.format(**{**context, "value": value, "label": label}),
                "value": value,
                "points": points,
                "max_points": rule.max_points,
            }
        )
        total += points
    level = next(name for threshold, name in LEVELS if total >= threshold)
    return {"risk": level, "score": total, "reasons": [f for f in factors if f["points"]], "factors": factors}


def assess(ticket: Ticket, ci_ids: list[int]) -> dict:
    """Gather the facts of a change and score them, as of now."""
    return {**score(facts_of(ticket, ci_ids)), "assessed_at": utcnow()}


def current(ticket: Ticket) -> dict:
    """The change's risk as of now."""
    return assess(ticket, ticket.ci_ids)


def stored(ticket: Ticket) -> dict:
    """The assessment last stored on the change (older rows stored only the factors with points)."""
    factors = list(ticket.risk_reasons or [])
    return {
        "risk": ticket.risk,
        "score": ticket.risk_score,
        "reasons": [f for f in factors if f.get("points")],
        "factors": factors,
        "assessed_at": ticket.risk_assessed_at,
    }


def class_tier(ci_class: str) -> int:
    if ci_class in CLASS_TIERS:
        return CLASS_TIERS[ci_class]
    from cmdb.classes import get_class

    cls = get_class(ci_class)
    return CATEGORY_TIERS.get(cls.category, 1) if cls else 1


def facts_of(ticket: Ticket, ci_ids: list[int]) -> dict:
    from cmdb.models import ConfigurationItem
    from tickets import graph

    ci_ids = list(ci_ids)
    radius = graph.blast_radius(ci_ids) if ci_ids else None
    items = list(radius.impacted) if radius else []
    down = [item for item in items if item.state == "down"]
    degraded = [item for item in items if item.state != "down"]
    services = [item for item in items if item.ci_class == "business_service"]
    own = db.session.execute(
        select(ConfigurationItem.ci_class, ConfigurationItem.criticality).where(id_in(ConfigurationItem.id, ci_ids))
    ).all()
    tiers = sorted(((class_tier(ci_class), ci_class) for ci_class, _ in own), reverse=True)
    touched = set(ci_ids) | {item.ci_id for item in items}
    windowed = ticket.planned_start is not None and ticket.planned_end is not None
    return {
        "criticality": max((CRITICALITY_RANK.get(c, 1) for _, c in own), default=0),
        "class_tier": tiers[0][0] if tiers else 0,
        "class_name": tiers[0][1] if tiers else "",
        "impacted_cis": len(down) + len(degraded) // 2,
        "impacted_down": len(down),
        "impacted_degraded": len(degraded),
        "business_services": sum(1 for item in services if item.state == "down"),
        "business_services_degraded": sum(1 for item in services if item.state != "down"),
        "impacted_criticality": max((CRITICALITY_RANK.get(item.criticality, 1) for item in down), default=0),
        "open_major_incidents": _open_major_incidents(touched),
        "recent_failed_changes": _recent_failed_changes(ticket, ci_ids),
        "conflicts": len(graph.conflicts(ticket, ci_ids, radius=radius)) if radius is not None and windowed else 0,
        "in_business_hours": int(in_business_hours(ticket.planned_start, ticket.planned_end)),
        "in_blackout": int(windowed and _in_blackout(ticket.planned_start, ticket.planned_end)),
        "emergency": int(ticket.change_type == "emergency"),
    }


def _in_blackout(start: datetime, end: datetime) -> bool:
    from tickets.services import blackouts_overlapping

    return bool(blackouts_overlapping(start, end))


def _open_major_incidents(ci_ids: set[int]) -> int:
    if not ci_ids:
        return 0
    linked = select(TicketCI.ticket_id).where(id_in(TicketCI.ci_id, ci_ids), TicketCI.removed_at.is_(None))
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
    linked = select(TicketCI.ticket_id).where(id_in(TicketCI.ci_id, ci_ids))
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
