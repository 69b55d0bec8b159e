"""A saved view: a list's filters, columns and sort under a name, its owner's or shared with a team."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel

RESOURCES = ("cis", "tickets")


class SavedView(Audited, TimestampedModel):
    """``filters`` are the list's query parameters as the API takes them (``{"ci_class":
    "server,laptop", "status": "deployed"}``), checked by that list's own query schema when saved."""

    __tablename__ = "saved_view"

    name: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str] = mapped_column(String(20))
    filters: Mapped[dict] = mapped_column(JSONType, default=dict)
    columns: Mapped[list] = mapped_column(JSONType, default=list)
    sort: Mapped[str] = mapped_column(String(200), default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    shared_with_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"), nullable=True)

    __table_args__ = (
        UniqueConstraint("owner_id", "resource", "name"),
        Index("ix_saved_view_shared_with_team_id", "shared_with_team_id"),
    )
