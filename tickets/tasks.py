"""RQ job functions of the tickets domain (run through cairn.jobs.execute, which commits)."""

from __future__ import annotations

from tickets import services
from tickets.slas import scan


def mark_sla_breaches() -> int:
    """Periodic: flag the open tickets past their wall-clock SLA due times, then fire the warnings,
    breaches and escalations of the business-hours clocks; returns how many were flagged or fired."""
    counts = scan.scan()
    return len(services.mark_sla_breaches()) + counts["warnings"] + counts["breaches"] + counts["escalations"]
