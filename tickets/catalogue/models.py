"""Catalogue items, the request items of an order, their approval steps and fulfilment tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel

APPROVAL_MODES = ("sequential", "any_of")
STEP_KINDS = ("manager", "team", "user")
STEP_MODES = ("any", "all")
ITEM_STATES = ("approval", "fulfilment", "fulfilled", "rejected", "canceled")
STEP_STATES = ("waiting", "open", "approved", "rejected", "skipped")
TASK_STATES = ("pending", "open", "done", "canceled")


class CatalogueItem(Audited, TimestampedModel):
    """Something people may order. ``form``: ``[{field, required}]``, custom fields that apply to
    ``request`` tickets (cmdb.custom_fields), each required for this item or not; ``audience``:
    ``{roles: [...], team_ids: [...]}``, who may order it (both empty: everyone); ``approval_steps``:
    ``[{kind: manager|team|user, team_id, user_id, mode: any|all}]`` taken one after another
    (``approval_mode`` sequential) or at once with the first approval deciding (any_of);
    ``tasks``: ``[{title, description, team_id, stage, delivers_ci}]``, tasks of one stage in
    parallel, stages in order; ``deliver_ci_class``: the CI class a ``delivers_ci`` task takes
    from stock."""

    __tablename__ = "catalogue_item"
    __audit_type__ = "catalogue_item"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(default=True)
    form: Mapped[list] = mapped_column(JSONType, default=list)
    audience: Mapped[dict] = mapped_column(JSONType, default=dict)
    approval_mode: Mapped[str] = mapped_column(String(20), default="sequential")
    approval_steps: Mapped[list] = mapped_column(JSONType, default=list)
    tasks: Mapped[list] = mapped_column(JSONType, default=list)
    deliver_ci_class: Mapped[str | None] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class CatalogueRequestItem(Audited, TimestampedModel):
    """One catalogue item ordered on a request ticket, with the form values given for it."""

    __tablename__ = "catalogue_request_item"
    __audit_type__ = "catalogue_request_item"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    catalogue_item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_item.id", ondelete="RESTRICT"), index=True)
    requested_for_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(default=1)
    fields: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="approval")
    # the catalogue item's approval mode when the order was placed (its steps are frozen then too)
    approval_mode: Mapped[str] = mapped_column(String(20), default="sequential")
    delivered_ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1)

    catalogue_item: Mapped[CatalogueItem] = relationship(lazy="joined", innerjoin=True)
    ticket = relationship("Ticket", lazy="joined", innerjoin=True)
    requested_for = relationship("User", lazy="joined", innerjoin=True)
    steps: Mapped[list[CatalogueApprovalStep]] = relationship(
        back_populates="request_item", order_by="CatalogueApprovalStep.number", lazy="selectin"
    )
    work: Mapped[list[CatalogueTask]] = relationship(
        back_populates="request_item", order_by="CatalogueTask.position", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        return f"{self.ticket.number} item {self.position} ({self.catalogue_item.name}) {action}d: {self.state}"[:300]


class CatalogueApprovalStep(Audited, TimestampedModel):
    """One step of a request item's approval chain, resolved to people when the order was placed.
    ``number`` is unique on the ticket: the decisions are the ticket's TicketApproval rows of that
    ``round``."""

    __tablename__ = "catalogue_approval_step"
    __audit_type__ = "catalogue_approval_step"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    request_item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_request_item.id", ondelete="CASCADE"))
    number: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))
    mode: Mapped[str] = mapped_column(String(5), default="any")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    approver_ids: Mapped[list] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(10), default="waiting")
    decided_at: Mapped[datetime | None]

    request_item: Mapped[CatalogueRequestItem] = relationship(back_populates="steps")
    team = relationship("Team", lazy="joined", innerjoin=False)

    __table_args__ = (
        Index("ix_catalogue_approval_step_item", "request_item_id", "number"),
        Index("ix_catalogue_approval_step_state", "state"),
    )

    def audit_summary(self, action: str) -> str:
        return f"approval step {self.number} of ticket {self.ticket_id} ({self.kind}) {action}d: {self.state}"[:300]


class CatalogueTask(Audited, TimestampedModel):
    """A fulfilment task of a request item for a team. ``pending`` until its stage opens, then
    ``open`` in the team's queue, ``done`` when completed (``canceled`` when the request was)."""

    __tablename__ = "catalogue_task"
    __audit_type__ = "catalogue_task"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    request_item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_request_item.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=1)
    stage: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    delivers_ci_class: Mapped[str | None] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    note: Mapped[str] = mapped_column(String(2000), default="")
    opened_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    delivered_ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1)

    request_item: Mapped[CatalogueRequestItem] = relationship(back_populates="work")
    ticket = relationship("Ticket", lazy="joined", innerjoin=True)
    team = relationship("Team", lazy="joined", innerjoin=False)
    assignee = relationship("User", foreign_keys=[assignee_id], lazy="joined", innerjoin=False)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_catalogue_task_item", "request_item_id", "position"),
        Index("ix_catalogue_task_queue", "state", "team_id"),
    )

    def audit_summary(self, action: str) -> str:
        return f"{self.ticket.number} task {self.title} {action}d: {self.state}"[:300]
