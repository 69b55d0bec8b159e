"""Sync bookkeeping: long-running jobs (discovery runs, CSV imports), which source saw a CI when,
and which source last set each field of a CI (for per-attribute precedence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db import JSONType, TimestampedModel, db, utcnow

JOB_KINDS = ("discovery", "import_cis", "import_relationships")
JOB_STATUSES = ("queued", "running", "done", "failed")


class SyncJob(TimestampedModel):
    """A discovery run or an import: its input until it has run, then its counts and item results."""

    __tablename__ = "sync_job"

    kind: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    dry_run: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(255), default="")
    payload: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    payload_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    results: Mapped[list] = mapped_column(JSONType, default=list)
    error: Mapped[str] = mapped_column(String(2000), default="")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Durable job bookkeeping (cairn/jobs/durable.py): when it was put in the queue, the run's
    # heartbeat (a stopped one means its worker died), and how many input rows are committed.
    enqueued_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    position: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_sync_job_kind_status", "kind", "status"),)


class CISourceSeen(db.Model):
    """When a source (a discovery agent, an import) last reported a CI."""

    __tablename__ = "ci_source_seen"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_ci_source_seen_last_seen_at", "last_seen_at"),)


class CIFieldSource(db.Model):
    """Which source last wrote a CI field (``model``, ``attributes.os_version``) and the value it
    wrote: a current value that differs was edited by someone else (by hand), and a manual edit wins."""

    __tablename__ = "ci_field_source"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"), primary_key=True)
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    value_digest: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
