"""RQ job functions for mail (run through cairn.jobs.execute, which is their unit of work).

Notifications are the outbox consumer ``notifications`` (integrations/email/notify.py), nudged
by every commit that wrote a ticket event and run by the kernel's outbox sweep."""

from __future__ import annotations

from integrations.email import intake, notify, settings


def process_inbound(email_id: int) -> str | None:
    """Process one stored message (the notifications it causes follow from the ticket events)."""
    return intake.process(email_id)


def sweep_inbound() -> int:
    """Queue stored mail that was not queued (Redis was down) or whose job was lost (the durable
    sweep, cairn.jobs.durable.sweep, does it for every kind every minute)."""
    return intake.sweep()


def send_notification(*outbound_ids: int) -> dict[str, int]:
    """Send these notifications, each committed on its own (a crash re-sends none before it)."""
    from cairn.uow import checkpoint

    counts: dict[str, int] = {}
    for outbound_id in outbound_ids:
        status = notify.send(outbound_id) or "skipped"
        checkpoint()
        counts[status] = counts.get(status, 0) + 1
    return counts


def dispatch_notifications() -> int:
    """Record and queue the notifications for ticket events not seen yet (`cairn mail dispatch`)."""
    created = notify.dispatch()
    notify.queue_due()
    return created


def poll_imap() -> dict:
    """Periodic: fetch new mail from the configured IMAP mailbox (does nothing when none is set)."""
    from integrations.email import imap

    if not settings.get("CAIRN_MAIL_IMAP_HOST"):
        return {"skipped": "CAIRN_MAIL_IMAP_HOST is not set"}
    return imap.poll(imap.ImapAccount.from_settings())
