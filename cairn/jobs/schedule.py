"""Periodic jobs, declared once: (dotted job name, interval in seconds)."""

PERIODIC_JOBS: list[tuple[str, int]] = [
    ("cairn.jobs.tasks.heartbeat", 60),
]
