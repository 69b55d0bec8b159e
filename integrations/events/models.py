"""What monitoring leaves in the database: every received occurrence (stored before anything else),
each alert's current state (one row per source and fingerprint), the binding rules, and the
correlation groups (one open group, and one incident, per root cause)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db, utcnow

ALERT_STATUSES = ("firing", "resolved")
PROCESSING_STATUSES = ("queued", "running", "processed", "failed")
# How a processed alert ended up: in a correlation group (and its incident), suppressed into a
# change's maintenance window, or waiting for a binding rule that names its CI.
DISPOSITIONS = ("pending", "correlated", "maintenance", "unbound")
CI_FIELDS = ("hostname", "ip", "hostname_or_ip", "name", "external_id")
GROUP_STATES = ("open", "resolved", "merged")
ROOT_RULES = ("single_ci", "alerting_ancestor", "widest_blast_radius")


class EventOccurrence(db.Model):
    """One event as received, stored raw before it is processed (a durable job's row). Machine
    input, kept as the alert's history: not in the change log (what it causes is)."""

    __tablename__ = "event_occurrence"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10))
    severity: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(String(500), default="")
    labels: Mapped[dict] = mapped_column(JSONType, default=dict)
    ci_hints: Mapped[dict] = mapped_column(JSONType, default=dict)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    generator_url: Mapped[str | None] = mapped_column(String(2000))
    processing: Mapped[str] = mapped_column(String(10), default="queued")
    # What processing made of it: new | changed | repeat | stale (older than one applied already).
    outcome: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("monitoring_event.id", ondelete="SET NULL"))
    enqueued_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_event_occurrence_processing_id", "processing", "id"),
        Index("ix_event_occurrence_alert_id", "alert_id", "id"),
    )


class MonitoringEvent(db.Model):
    """An alert's current state, deduplicated by (source, fingerprint): what GET /events lists.
    Updated by the processing job only (its occurrences are its history)."""

    __tablename__ = "monitoring_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10))
    severity: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(String(500), default="")
    labels: Mapped[dict] = mapped_column(JSONType, default=dict)
    ci_hints: Mapped[dict] = mapped_column(JSONType, default=dict)
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="SET NULL"))
    # How the CI was found: "ci.hostname", "rule 3: instance -> hostname_or_ip", ...
    bound_by: Mapped[str | None] = mapped_column(String(200))
    disposition: Mapped[str] = mapped_column(String(20), default="pending")
    group_id: Mapped[int | None] = mapped_column(ForeignKey("event_group.id", ondelete="SET NULL"))
    # The incident of its group, or the change whose maintenance window suppressed it.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_change_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Status changes in a row, each within CAIRN_EVENTS_FLAP_MINUTES of the one before.
    flap_count: Mapped[int] = mapped_column(default=0)
    occurrences: Mapped[int] = mapped_column(default=0)
    # The newest occurrence applied: an older one processed later (two workers) changes nothing.
    last_occurrence_id: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint("source", "fingerprint", name="uq_monitoring_event_source_fingerprint"),
        Index("ix_monitoring_event_status_ci_id", "status", "ci_id"),
        Index("ix_monitoring_event_ci_id", "ci_id"),
        Index("ix_monitoring_event_group_id", "group_id"),
        Index("ix_monitoring_event_ticket_id", "ticket_id"),
        Index("ix_monitoring_event_disposition", "disposition", "id"),
    )


class EventBinding(Audited, TimestampedModel):
    """A binding rule: the value of label ``label`` names a CI by ``ci_field`` (of class
    ``ci_class`` when given; ``external_source`` for external ids). Rules apply by ``position``."""

    __tablename__ = "event_binding"
    __audit_type__ = "event_binding"

    position: Mapped[int] = mapped_column(default=100)
    label: Mapped[str] = mapped_column(String(128))
    ci_field: Mapped[str] = mapped_column(String(20))
    ci_class: Mapped[str | None] = mapped_column(String(50))
    external_source: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)

    def audit_summary(self, action: str) -> str:
        return f"event binding {self.id} {action}: {self.label} -> {self.ci_field}"[:300]


class EventGroup(Audited, TimestampedModel):
    """Alerts correlated through the dependency graph, and the incident opened for their root cause.

    ``open_root`` is the root CI's id while the group is open and NULL afterwards: unique, so the
    database itself refuses a second open group (and a second incident) for one root cause, whatever
    two workers decide at the same moment."""

    __tablename__ = "event_group"
    __audit_type__ = "event_group"
    __audit_exclude__ = frozenset({"last_event_at", "firing_count", "alert_count", "reasoning"})

    root_ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"))
    open_root: Mapped[int | None] = mapped_column(unique=True)
    rule: Mapped[str] = mapped_column(String(30))
    covers_all: Mapped[bool] = mapped_column(default=True)
    reasoning: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="open")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("event_group.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_event_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    alert_count: Mapped[int] = mapped_column(default=0)
    firing_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index("ix_event_group_state", "state", "last_event_at"),
        Index("ix_event_group_ticket_id", "ticket_id"),
    )

    def audit_summary(self, action: str) -> str:
        return f"event group {self.id} {self.state}: root CI {self.root_ci_id} ({self.rule})"[:300]


# pg_advisory_xact_lock key of the correlation step (any constant: "cairn-ev" in ASCII).
CORRELATION_LOCK = 0x636169726E2D6576


def lock_correlation() -> None:
    """Take the database-wide correlation lock until this transaction ends: PostgreSQL's advisory
    lock (SQLite's writers are serial already: a job takes the write lock when it begins)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CORRELATION_LOCK})
