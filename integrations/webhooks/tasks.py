"""RQ jobs for webhooks (they take ids). Dispatching is the outbox consumer ``webhooks``
(cairn/outbox.py), run after each commit that wrote CIs, relationships or tickets and by the sweep."""

from __future__ import annotations

from integrations.webhooks import services


def deliver(*delivery_ids: int) -> dict[str, int]:
    """Send these deliveries; each is committed on its own."""
    return services.deliver(list(delivery_ids))


def deliver_due(hook_id: int) -> dict[str, int]:
    """Send a subscription's due deliveries in order (one sender per subscription at a time)."""
    return services.deliver_due(hook_id)
