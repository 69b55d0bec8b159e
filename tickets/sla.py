"""Service levels: response and resolution targets per kind and priority; time on hold doesn't count.

``CAIRN_SLA_POLICIES`` (a dict, or its JSON in the environment) overrides any part of the defaults:
``{"incident": {"1": {"response": 10, "resolution": 120}}}`` (minutes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cairn.config import setting
from tickets.models import KINDS

MINUTE = 1
HOUR = 60
DAY = 24 * HOUR

# (response, resolution) in minutes per priority, wall-clock.
DEFAULT_TARGETS: dict[int, tuple[int, int]] = {
    1: (15 * MINUTE, 4 * HOUR),
    2: (1 * HOUR, 8 * HOUR),
    3: (4 * HOUR, 3 * DAY),
    4: (1 * DAY, 10 * DAY),
    5: (2 * DAY, 20 * DAY),
}


def policies() -> dict[str, dict[int, tuple[int, int]]]:
    """The effective targets: defaults merged with CAIRN_SLA_POLICIES."""
    merged = {kind: dict(DEFAULT_TARGETS) for kind in KINDS}
    raw = setting("CAIRN_SLA_POLICIES", {})
    for kind, per_priority in raw.items():
        for priority, target in per_priority.items():
            response, resolution = merged[kind][int(priority)]
            merged[kind][int(priority)] = (
                int(target.get("response", response)),
                int(target.get("resolution", resolution)),
            )
    return merged


def targets(kind: str, priority: int) -> tuple[timedelta, timedelta]:
    response, resolution = policies()[kind][priority]
    return timedelta(minutes=response), timedelta(minutes=resolution)


def apply_targets(ticket) -> None:
    """Set the stored due times from the priority; the resolution clock is pushed back by the time
    already spent on hold (a hold in progress is added when it ends)."""
    response, resolution = targets(ticket.kind, ticket.priority)
    ticket.response_due = ticket.created_at + response
    if ticket.kind == "change" and ticket.planned_end is not None:
        # A planned change is due by the end of its window, not by a clock started when it was filed.
        ticket.resolution_due = ticket.planned_end
    else:
        ticket.resolution_due = ticket.created_at + resolution + timedelta(seconds=ticket.on_hold_seconds or 0)


def held_seconds(ticket, now: datetime) -> int:
    """Seconds spent on hold so far, including a hold still running."""
    total = ticket.on_hold_seconds or 0
    if ticket.on_hold_since is not None:
        total += max(0, int((now - ticket.on_hold_since).total_seconds()))
    return total


def status(ticket, now: datetime) -> dict:
    """The ``sla`` object of a ticket as of ``now``: the business-hours clock of its SLA policy
    (tickets.slas.clocks) when it has one, else the wall clock from the priority."""
    if ticket.sla_policy_id is not None:
        return _business_status(ticket, now)
    if ticket.response_due is None or ticket.resolution_due is None:
        return {"response_due": None, "resolution_due": None, "paused": False, "breached": False}
    resolution_due = ticket.resolution_due
    paused = ticket.on_hold_since is not None
    if paused:
        resolution_due = resolution_due + (now - ticket.on_hold_since)
    responded = ticket.acknowledged_at or now
    finished = ticket.resolved_at or ticket.actual_end or ticket.closed_at or ticket.canceled_at
    response_breached = responded > ticket.response_due
    # While paused the due time moves with the clock, so only a breach from before the hold shows.
    resolution_breached = (finished or now) > resolution_due
    return {
        "response_due": ticket.response_due,
        "resolution_due": resolution_due,
        "paused": paused,
        "on_hold_seconds": held_seconds(ticket, now),
        "response_breached": response_breached,
        "resolution_breached": resolution_breached,
        "breached": bool(ticket.sla_breached or response_breached or resolution_breached),
        "response_remaining_seconds": None if ticket.acknowledged_at else _seconds(ticket.response_due - now),
        "resolution_remaining_seconds": None if finished else _seconds(resolution_due - now),
        "response_due_at": ticket.response_due,
        "resolution_due_at": resolution_due,
        "warned": False,
        "policy": None,
        "calendar": None,
    }


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _business_status(ticket, now: datetime) -> dict:
    from tickets.slas import clocks

    blocks = clocks.status(ticket, now)
    block = blocks.get("sla")
    if block is None:  # the policy was deleted under a ticket not recomputed yet
        return {"response_due": None, "resolution_due": None, "paused": False, "breached": False}
    return {
        **block,
        "response_due": block["response_due_at"] or ticket.response_due,
        "resolution_due": block["resolution_due_at"] or ticket.resolution_due,
        "on_hold_seconds": held_seconds(ticket, now),
        "response_breached": block["response_breached"],
        "resolution_breached": block["resolution_breached"],
        "breached": bool(ticket.sla_breached or block["breached"]),
    }


def ola_status(ticket, now: datetime) -> dict | None:
    """The ``ola`` object: the assigned team's own clock, when an OLA policy applies."""
    if ticket.ola_policy_id is None:
        return None
    from tickets.slas import clocks

    return clocks.status(ticket, now).get("ola")
