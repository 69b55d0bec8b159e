"""RQ job functions of the tickets domain (run through cairn.jobs.execute, which commits)."""

from __future__ import annotations

from tickets import services


def mark_sla_breaches() -> int:
    """Periodic: flag the open tickets past their SLA due times; returns how many were flagged."""
    return len(services.mark_sla_breaches())
