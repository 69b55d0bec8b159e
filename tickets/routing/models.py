"""Routing rules (conditions and actions, tried in ``position`` order on a new or re-categorised
ticket) and each team's assignment settings (manual, round-robin or least-loaded)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel

ASSIGNMENT_MODES = ("manual", "round_robin", "least_loaded")
# The conditions a rule may hold, in the order a dry run explains them.
CONDITIONS = (
    "kind",
    "category_id",
    "ci_class",
    "ci_team_id",
    "requester_team_id",
    "requester_location_id",
    "mail_route",
    "title_words",
)
ACTIONS = ("team_id", "priority", "category_id", "assignee_id")


class RoutingRule(Audited, TimestampedModel):
    """When a ticket meets every condition set (``match_*``; unset ones match anything), the
    ``set_*`` actions apply. Rules are tried by ``position``, then id; the first that matches wins.
    ``override``: the actions replace values the client sent explicitly (else those are kept)."""

    __tablename__ = "routing_rule"
    __audit_type__ = "routing_rule"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    override: Mapped[bool] = mapped_column(default=False)

    match_kind: Mapped[str | None] = mapped_column(String(10))
    match_category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_category.id", ondelete="RESTRICT"))
    match_ci_class: Mapped[str | None] = mapped_column(String(60))
    match_ci_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    match_requester_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    match_requester_location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="RESTRICT"))
    match_mail_route: Mapped[str | None] = mapped_column(String(254))
    match_title_words: Mapped[list | None] = mapped_column(JSONType)

    set_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    set_priority: Mapped[int | None]
    set_category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_category.id", ondelete="RESTRICT"))
    set_assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_routing_rule_position", "position", "id"),)

    @property
    def match(self) -> dict:
        return {name: getattr(self, f"match_{name}") for name in CONDITIONS}

    @property
    def actions(self) -> dict:
        return {name: getattr(self, f"set_{name}") for name in ACTIONS}

    def audit_summary(self, action: str) -> str:
        return f"routing rule {self.name} {action}d"[:300]


class TeamAssignment(Audited, TimestampedModel):
    """How a team hands out its new tickets: ``manual`` (nobody, the team picks), ``round_robin``
    (the on-shift member after ``last_assignee_id``) or ``least_loaded`` (the on-shift member with
    the fewest open tickets). On shift: an active member that can work tickets, not in
    ``away_user_ids``, and inside the hours of ``calendar_id`` when the team has one. ``turns``
    counts hand-outs; its UPDATE is the row lock that serialises concurrent creates per team."""

    __tablename__ = "team_assignment"
    __audit_type__ = "team_assignment"
    __audit_exclude__ = frozenset({"turns", "last_assignee_id"})

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[str] = mapped_column(String(20), default="manual")
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendar.id", ondelete="RESTRICT"), index=True)
    away_user_ids: Mapped[list] = mapped_column(JSONType, default=list)
    last_assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    turns: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        return f"assignment of team {self.team_id} {action}d ({self.mode})"[:300]
