"""Tickets (incidents, requests, problems, changes) and what hangs off them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db

KINDS = ("incident", "request", "problem", "change")
NUMBER_PREFIXES = {"incident": "INC", "request": "REQ", "problem": "PRB", "change": "CHG"}
LINK_TYPES = ("caused_by", "duplicate_of", "related", "fixes")
OUTCOMES = ("successful", "failed", "backed_out")
RISK_LEVELS = ("low", "medium", "high")


class TicketCategory(Audited, TimestampedModel):
    """A category of one ticket kind, or (``parent_id`` set) a subcategory of one; data, not code.
    A ticket opened in it with no team goes to its ``default_team_id``."""

    __tablename__ = "ticket_category"
    __audit_type__ = "ticket_category"

    name: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_category.id", ondelete="RESTRICT"), index=True)
    default_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)

    parent: Mapped[TicketCategory | None] = relationship(remote_side="TicketCategory.id", lazy="joined")
    default_team = relationship("Team", lazy="joined", innerjoin=False)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_ticket_category_kind_name", "kind", "name"),)


class TicketCounter(db.Model):
    """Last number handed out per kind on SQLite (PostgreSQL uses one sequence per kind instead).
    Internal bookkeeping, never changed by users: not audited."""

    __tablename__ = "ticket_counter"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    last_value: Mapped[int] = mapped_column(default=0)


# tickets.workflow.DONE_STATES, as the partial-index condition of both databases
_OPEN = "state NOT IN ('resolved', 'closed', 'canceled')"
OPEN_ONLY = {"postgresql_where": text(_OPEN), "sqlite_where": text(_OPEN)}


class Ticket(Audited, TimestampedModel):
    __tablename__ = "ticket"
    __audit_type__ = "ticket"
    # The risk level is in the diffs; its score, factors and time are derived detail.
    __audit_exclude__ = frozenset(
        {"risk_score", "risk_reasons", "risk_assessed_at", "hold_intervals", "sla_next_check_at"}
    )

    number: Mapped[str] = mapped_column(String(10), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(30), default="new")
    impact: Mapped[int] = mapped_column(default=3)
    urgency: Mapped[int] = mapped_column(default=3)
    priority: Mapped[int] = mapped_column(default=5)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    # A category (or subcategory) of the ticket's kind (TicketCategory). No foreign key: SQLite can
    # add and drop a plain column in place, while a key would need a copy of the table that loses its
    # search triggers (migration 0014); tickets.categories checks it on every write and refuses to
    # delete a category in use (the row locks of both sides make that safe on PostgreSQL).
    category_id: Mapped[int | None] = mapped_column(index=True)

    # Milestones and the resolution.
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    resolution_code: Mapped[str | None] = mapped_column(String(40))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    hold_reason: Mapped[str | None] = mapped_column(String(500))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))

    # SLA: due times are stored so the breach job and list filters can use an index.
    on_hold_since: Mapped[datetime | None]
    on_hold_seconds: Mapped[int] = mapped_column(default=0)
    response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    sla_breached: Mapped[bool] = mapped_column(default=False)
    sla_breached_at: Mapped[datetime | None]
    # Business-hours clocks (tickets.slas): the matched policies, the holds that ended (wall-clock
    # [start, end] pairs, so a recomputation after a calendar edit is exact), when the assigned team's
    # OLA clock started, and when the periodic scan must next look at the ticket.
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policy.id", ondelete="SET NULL"), index=True)
    ola_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policy.id", ondelete="SET NULL"), index=True)
    ola_started_at: Mapped[datetime | None]
    hold_intervals: Mapped[list] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    sla_next_check_at: Mapped[datetime | None] = mapped_column(index=True)

    # Problems.
    root_cause: Mapped[str | None] = mapped_column(Text)
    workaround: Mapped[str | None] = mapped_column(Text)
    known_error: Mapped[bool] = mapped_column(default=False)

    # Changes.
    planned_start: Mapped[datetime | None]
    planned_end: Mapped[datetime | None]
    implementation_plan: Mapped[str | None] = mapped_column(Text)
    backout_plan: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(20))
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    approval_round: Mapped[int] = mapped_column(default=1)
    # standard | normal | emergency (tickets.workflow.CHANGE_TYPES); None for the other kinds.
    change_type: Mapped[str | None] = mapped_column(String(20))
    # The template a standard change was opened from.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("change_template.id", ondelete="SET NULL"))
    # The last stored assessment (tickets.risk): an open change's answer computes it afresh, a
    # finished one shows this. ``risk_reasons`` holds every factor weighed, with its points.
    risk: Mapped[str | None] = mapped_column(String(10))
    risk_score: Mapped[int | None]
    risk_reasons: Mapped[list | None] = mapped_column(JSONType)
    risk_assessed_at: Mapped[datetime | None]

    # Values of the custom fields (cmdb/custom_fields) by name; the kind picks the fields.
    custom_fields: Mapped[dict] = mapped_column(JSONType, default=dict, server_default=text("'{}'"))
    version: Mapped[int] = mapped_column(default=1)

    # The column whose value picks the custom fields that apply (cmdb.custom_fields.registry).
    __custom_fields_scope__ = ("ticket", "kind")

    # Set by a transition that resolved linked tickets with it (not stored: part of that answer).
    resolved_linked = None

    requester = relationship("User", foreign_keys=[requester_id], lazy="joined", innerjoin=False)
    assignee = relationship("User", foreign_keys=[assignee_id], lazy="joined", innerjoin=False)
    team = relationship("Team", lazy="joined", innerjoin=False)
    category: Mapped[TicketCategory | None] = relationship(
        primaryjoin="foreign(Ticket.category_id) == TicketCategory.id", lazy="joined", innerjoin=False, viewonly=True
    )
    external_ids: Mapped[list[TicketExternalId]] = relationship(
        back_populates="ticket", lazy="selectin", cascade="all, delete-orphan", order_by="TicketExternalId.source"
    )
    ci_links: Mapped[list[TicketCI]] = relationship(
        primaryjoin="and_(Ticket.id == TicketCI.ticket_id, TicketCI.removed_at.is_(None))",
        order_by="TicketCI.id",
        viewonly=True,
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("impact BETWEEN 1 AND 3", name="impact_range"),
        CheckConstraint("urgency BETWEEN 1 AND 3", name="urgency_range"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        Index("ix_ticket_kind_state", "kind", "state"),
        Index("ix_ticket_state_priority", "state", "priority"),
        Index("ix_ticket_requester_id", "requester_id"),
        Index("ix_ticket_assignee_id", "assignee_id"),
        Index("ix_ticket_team_id", "team_id"),
        Index("ix_ticket_created_at", "created_at"),
        Index("ix_ticket_planned_window", "kind", "planned_start", "planned_end"),
        Index("ix_ticket_sla", "sla_breached", "state", "resolution_due"),
        Index("ix_ticket_template_id", "template_id"),
        # The open tickets (the desk's queues, near-breach and major-incident lists): "not done" is a
        # NOT IN that no plain index can seek, so these partial indexes hold only the open ones.
        Index("ix_ticket_open_queue", "assignee_id", "team_id", "sla_breached", **OPEN_ONLY),
        Index("ix_ticket_open_due", "sla_breached", "resolution_due", **OPEN_ONLY),
        Index("ix_ticket_open_priority", "priority", "created_at", **OPEN_ONLY),
        Index(
            "ix_ticket_custom_fields",
            "custom_fields",
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        ),
    )

    @property
    def ci_ids(self) -> list[int]:
        return [link.ci_id for link in self.ci_links]

    def audit_summary(self, action: str) -> str:
        verbs = {
            "create": "opened",
            "update": "updated",
            "delete": "deleted",
            "transition": "moved",
            "comment": "commented",
        }
        return f"{self.number} {verbs.get(action, action)}: {self.title}"[:300]

    def audit_ci_ids(self) -> set[int]:
        session = object_session(self)
        if session is None or self.id is None:
            return set()
        # Read through the connection: this runs inside the flush hook, where the ORM can't query.
        return set(
            session.connection().scalars(
                select(TicketCI.ci_id).where(TicketCI.ticket_id == self.id, TicketCI.removed_at.is_(None))
            )
        )


class ChangeTemplate(Audited, TimestampedModel):
    """A standard change, pre-approved once by the change managers: what it does, how it is done and
    undone, and the CIs it usually touches. A change opened from it (``template_id``) is a
    ``standard`` change: it skips assessment and CAB approval (tickets.workflow). Templates are
    retired (``active`` false), never deleted, so the changes made from them keep their origin."""

    __tablename__ = "change_template"
    __audit_type__ = "change_template"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    implementation_plan: Mapped[str | None] = mapped_column(Text)
    backout_plan: Mapped[str | None] = mapped_column(Text)
    ci_ids: Mapped[list] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class TicketCI(Audited, TimestampedModel):
    """A CI affected by a ticket. Removing it sets ``removed_at`` (kept for the history); adding it
    again reopens the same row."""

    __tablename__ = "ticket_ci"
    __audit_type__ = "ticket_ci"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))
    removed_at: Mapped[datetime | None]

    ticket: Mapped[Ticket] = relationship()
    ci = relationship("ConfigurationItem")

    __table_args__ = (
        UniqueConstraint("ticket_id", "ci_id", name="uq_ticket_ci_ticket_ci"),
        Index("ix_ticket_ci_ci_id", "ci_id", "removed_at", "ticket_id"),
    )

    def audit_summary(self, action: str) -> str:
        removed = action == "update" and self.removed_at is not None
        verb = "removed from" if removed else "added to"
        return f"CI {self.ci_id} {verb} {self.ticket.number}: {self.ticket.title}"[:300]

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class TicketComment(TimestampedModel):
    """A comment or internal work note. Comments are never edited or deleted, so the one write is
    recorded on the ticket itself (action ``comment``), which is the ``ticket.commented`` event."""

    __tablename__ = "ticket_comment"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    author_label: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)

    author = relationship("User", lazy="joined", innerjoin=False)


class TicketWatcher(Audited, TimestampedModel):
    __tablename__ = "ticket_watcher"
    __audit_type__ = "ticket_watcher"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)

    user = relationship("User", lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("ticket_id", "user_id", name="uq_ticket_watcher_ticket_user"),)

    def audit_summary(self, action: str) -> str:
        return f"user {self.user_id} {'stopped watching' if action == 'delete' else 'watches'} ticket {self.ticket_id}"


class TicketLink(Audited, TimestampedModel):
    """``source`` <type> ``target``: INC caused_by PRB, CHG fixes PRB, INC duplicate_of INC."""

    __tablename__ = "ticket_link"
    __audit_type__ = "ticket_link"

    source_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))

    source: Mapped[Ticket] = relationship(foreign_keys=[source_id], lazy="joined", innerjoin=True)
    target: Mapped[Ticket] = relationship(foreign_keys=[target_id], lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("source_id", "target_id", "type", name="uq_ticket_link_source_target_type"),)

    def audit_summary(self, action: str) -> str:
        return f"{self.source.number} {self.type} {self.target.number} {action}d"[:300]


class TicketAttachment(Audited, TimestampedModel):
    __tablename__ = "ticket_attachment"
    __audit_type__ = "ticket_attachment"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    declared_content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    ticket: Mapped[Ticket] = relationship(lazy="joined", innerjoin=True)

    def audit_summary(self, action: str) -> str:
        return f"{self.ticket.number}: attachment {self.filename} ({self.content_type}, {self.size} bytes) {action}d"[
            :300
        ]

    def audit_ci_ids(self) -> set[int]:
        return self.ticket.audit_ci_ids()


class TicketApproval(Audited, TimestampedModel):
    """A change manager's decision on a change in one approval round (a rejection starts a new one)."""

    __tablename__ = "ticket_approval"
    __audit_type__ = "ticket_approval"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    approver_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    round: Mapped[int] = mapped_column(default=1)
    decision: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(String(2000), default="")

    approver = relationship("User", lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("ticket_id", "round", "approver_id", name="uq_ticket_approval_round_approver"),)

    def audit_summary(self, action: str) -> str:
        return f"change {self.ticket_id} {self.decision}d by user {self.approver_id}"


class BlackoutWindow(Audited, TimestampedModel):
    """A period in which no change may be scheduled (besides those in CAIRN_CHANGE_BLACKOUTS)."""

    __tablename__ = "blackout_window"
    __audit_type__ = "blackout_window"

    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(2000), default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_blackout_window_span", "starts_at", "ends_at"),)


class TicketExternalId(Audited, TimestampedModel):
    """The id another tool (an external ITSM, a monitoring system) knows a ticket by; one per source."""

    __tablename__ = "ticket_external_id"
    __audit_type__ = "ticket_external_id"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(255))

    ticket: Mapped[Ticket] = relationship(back_populates="external_ids")

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_ticket_external_id_source_external_id"),
        UniqueConstraint("ticket_id", "source", name="uq_ticket_external_id_ticket_source"),
    )

    def audit_summary(self, action: str) -> str:
        return f"external id {self.source}:{self.external_id} {action}d"[:300]
