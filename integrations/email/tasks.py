"""RQ job functions for mail (run through cairn.jobs.execute, which commits)."""

from __future__ import annotations

from cairn.db import db
from cairn.jobs import enqueue
from integrations.email import intake, notify, settings

DISPATCH_JOB = "integrations.email.tasks.dispatch_notifications"


def process_inbound(email_id: int) -> str | None:
    """Process one stored message; then let the notifier look at what it changed (without SMTP
    there is nothing to send: the periodic dispatcher records the events then)."""
    status = intake.process(email_id)
    db.session.commit()
    if status == "processed" and settings.get("CAIRN_MAIL_SMTP_HOST"):
        enqueue(DISPATCH_JOB, job_id="cairn-mail-dispatch", queue_name=settings.get("CAIRN_MAIL_QUEUE"))
    return status


def sweep_inbound() -> int:
    """Periodic: queue stored mail that was not queued (Redis was down) or whose job was lost."""
    return intake.sweep()


def dispatch_notifications() -> int:
    """Periodic (and after each processed mail): turn new ticket events into queued notifications."""
    ids = notify.dispatch()
    db.session.commit()
    for outbound_id in ids:
        enqueue(
            "integrations.email.tasks.send_notification",
            outbound_id,
            job_id=f"cairn-mail-out-{outbound_id}",
            queue_name=settings.get("CAIRN_MAIL_QUEUE"),
        )
    return len(ids)


def send_notification(outbound_id: int) -> str | None:
    return notify.send(outbound_id)


def retry_notifications() -> int:
    """Periodic: queue notifications left queued (Redis or SMTP was down)."""
    ids = notify.pending_ids()
    db.session.commit()
    for outbound_id in ids:
        enqueue(
            "integrations.email.tasks.send_notification",
            outbound_id,
            job_id=f"cairn-mail-out-{outbound_id}",
            queue_name=settings.get("CAIRN_MAIL_QUEUE"),
        )
    return len(ids)


def poll_imap() -> dict:
    """Periodic: fetch new mail from the configured IMAP mailbox (does nothing when none is set)."""
    from integrations.email import imap

    if not settings.get("CAIRN_MAIL_IMAP_HOST"):
        return {"skipped": "CAIRN_MAIL_IMAP_HOST is not set"}
    return imap.poll(imap.ImapAccount.from_settings())
