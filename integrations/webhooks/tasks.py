"""RQ jobs for webhooks (they take ids; the periodic sweep is in cairn/jobs/schedule.py)."""

from __future__ import annotations

from integrations.webhooks import services


def dispatch() -> dict[str, int]:
    """Read new changes into deliveries and queue them (queued after a commit that wrote changes)."""
    return services.sweep()


def deliver(*delivery_ids: int) -> dict[str, int]:
    """Send these deliveries; each is committed on its own."""
    return services.deliver(list(delivery_ids))


def sweep() -> dict[str, int]:
    """Periodic: dispatch what was committed while Redis was down, queue due retries and lost jobs."""
    return services.sweep()
