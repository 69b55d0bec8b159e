"""Periodic jobs, declared once: (dotted job name, interval in seconds). Run by `cairn scheduler`
with Redis, by the embedded runner of the serving process without."""

PERIODIC_JOBS: list[tuple[str, int]] = [
    ("cairn.jobs.tasks.heartbeat", 60),
    ("cairn.outbox.sweep", 30),
    ("tickets.tasks.mark_sla_breaches", 60),
    ("cmdb.assets.tasks.asset_reminders", 3600),
    ("cairn.jobs.durable.sweep", 60),
    ("integrations.email.tasks.poll_imap", 60),
    ("relations.tasks.refresh_graph_snapshot", 3600),
    ("integrations.events.tasks.settle", 60),
    # a no-op unless CAIRN_LDAP_URL is set; a leaver loses access within this interval
    ("cairn.directory.tasks.sync_directory", 900),
    ("cairn.auth.tasks.prune_auth_events", 86400),
]
