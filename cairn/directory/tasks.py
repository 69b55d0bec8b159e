"""The periodic directory sync (cairn/jobs/schedule.py)."""

from __future__ import annotations

from cairn.directory import services


def sync_directory() -> dict | None:
    """Sync the directory users when a directory is configured; returns the counts (None: no directory)."""
    if not services.configured():
        return None
    return services.sync().counts
