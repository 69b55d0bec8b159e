"""Periodic jobs, declared once: (dotted job name, interval in seconds)."""

PERIODIC_JOBS: list[tuple[str, int]] = [
    ("cairn.jobs.tasks.heartbeat", 60),
    ("tickets.tasks.mark_sla_breaches", 60),
    ("cmdb.assets.tasks.asset_reminders", 3600),
]
