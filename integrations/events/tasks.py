"""RQ job functions for monitoring events (run through cairn.jobs.execute, their unit of work)."""

from __future__ import annotations

from integrations.events import incidents, processing


def process_range(first_id: int, last_id: int) -> dict[str, int]:
    """Process the stored occurrences of the range (and a backlog after it, a batch at a time)."""
    return processing.process_range(first_id, last_id)


def settle() -> int:
    """Periodic: resolve groups whose flapping alerts have been quiet for the flap window."""
    return incidents.settle()
