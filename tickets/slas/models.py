"""Business-hours calendars, SLA/OLA policies, escalation rules, and the record of what fired."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db

POLICY_TYPES = ("sla", "ola")
ESCALATION_TRIGGERS = ("warning", "breach", "idle")
MATCH_FIELDS = ("kind", "priority", "category_id", "team_id", "service_ci_id")


class BusinessCalendar(Audited, TimestampedModel):
    """Weekly open hours in a time zone's local wall time, and closures (holidays, timed closures).
    ``hours``: ``{"mon": [["09:00", "17:00"]], ...}``; ``closures``: ``[{name, start, end}]`` where
    start/end are dates (all day, end inclusive) or local date-times (end exclusive)."""

    __tablename__ = "business_calendar"
    __audit_type__ = "business_calendar"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    hours: Mapped[dict] = mapped_column(JSONType, default=dict)
    closures: Mapped[list] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class _Match:
    """The conditions a ticket must meet (each one unset matches everything)."""

    match_kind: Mapped[str | None] = mapped_column(String(10))
    match_priority: Mapped[int | None]
    match_category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_category.id", ondelete="RESTRICT"))
    match_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    match_service_ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))

    @property
    def match(self) -> dict:
        return {name: getattr(self, f"match_{name}") for name in MATCH_FIELDS}

    @property
    def specificity(self) -> int:
        return sum(value is not None for value in self.match.values())


class SLAPolicy(_Match, Audited, TimestampedModel):
    """Targets in business seconds of a calendar for the tickets it matches. ``type`` sla: the
    customer's clock (``match.team_id`` is the requester's team); ola: the assigned team's own clock,
    started when the ticket is assigned to it (``match.team_id`` is the assigned team)."""

    __tablename__ = "sla_policy"
    __audit_type__ = "sla_policy"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(3), default="sla")
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendar.id", ondelete="RESTRICT"), index=True)
    response_seconds: Mapped[int]
    resolution_seconds: Mapped[int]
    warn_at: Mapped[float] = mapped_column(default=0.75)
    order: Mapped[int] = mapped_column("sort_order", default=0)
    version: Mapped[int] = mapped_column(default=1)

    calendar: Mapped[BusinessCalendar] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": version}


class EscalationRule(_Match, Audited, TimestampedModel):
    """On a warning, a breach, or a ticket idle for ``idle_business_hours``: the ``actions``
    (``[{"notify": ...}, {"reassign_team_id": 3}, {"raise_priority": true}, {"add_watcher_id": 7}]``)."""

    __tablename__ = "escalation_rule"
    __audit_type__ = "escalation_rule"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    on: Mapped[str] = mapped_column(String(10))
    idle_business_hours: Mapped[float | None]
    actions: Mapped[list] = mapped_column(JSONType, default=list)
    order: Mapped[int] = mapped_column("sort_order", default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class SLAFiring(db.Model):
    """One condition that fired for one ticket (``key``: ``sla.resolution.warning``,
    ``rule:4:sla.response.breach``, ``rule:5:idle``), for the clock or idle period that began at
    ``since``: the unique key makes it fire once. The history is the ticket's change-log row."""

    __tablename__ = "sla_firing"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80))
    since: Mapped[datetime]
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_rule.id", ondelete="CASCADE"), index=True)
    fired_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("ticket_id", "key", "since", name="uq_sla_firing_ticket_key_since"),
        Index("ix_sla_firing_key", "key", "ticket_id"),
    )


RECOMPUTE_STATUSES = ("queued", "running", "done", "failed", "merged")


class SLARecompute(TimestampedModel):
    """A recomputation of open tickets' clocks after a calendar or policy edit: a durable job
    (cairn/jobs/durable.py) whose input is this row. ``policy_ids`` None means every open ticket;
    ``orphan_ids`` are tickets whose SLA policy was deleted (back to the wall clock). Runs one at a
    time; a run that starts takes in the queued ones (``merged``, with ``merged_into_id``), and
    ``position`` (the last ticket id done) lets a run whose worker died resume."""

    __tablename__ = "sla_recompute"

    status: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str] = mapped_column(String(300), default="")
    actor: Mapped[str] = mapped_column(String(255), default="")
    rematch: Mapped[bool] = mapped_column(default=False)
    policy_ids: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    orphan_ids: Mapped[list] = mapped_column(JSONType, default=list)
    merged_into_id: Mapped[int | None]
    tickets: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(2000), default="")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    position: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_sla_recompute_status", "status"),)
