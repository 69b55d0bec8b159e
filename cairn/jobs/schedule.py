"""Periodic jobs, declared once: (dotted job name, interval in seconds)."""

PERIODIC_JOBS: list[tuple[str, int]] = [
    ("cairn.jobs.tasks.heartbeat", 60),
    ("tickets.tasks.mark_sla_breaches", 60),
    ("cmdb.assets.tasks.asset_reminders", 3600),
    ("integrations.email.tasks.sweep_inbound", 60),
    ("integrations.email.tasks.poll_imap", 60),
    ("integrations.email.tasks.dispatch_notifications", 30),
    ("integrations.email.tasks.retry_notifications", 300),
    ("integrations.webhooks.tasks.sweep", 30),
]
