"""The change log: one row per create, update or delete of an audited object."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db import BigIntId, JSONType, db, utcnow


class ChangeLog(db.Model):
    """Change log = CI history = audit trail = sync feed = webhook outbox.

    ``txid`` is the writing transaction's id on PostgreSQL (0 on SQLite, where writers are serial):
    the feed orders by ``(txid, id)`` and only shows transactions older than every running one, so a
    reader paging with a cursor never skips a row committed late.
    """

    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column()
    action: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(String(300), default="")
    changes: Mapped[dict] = mapped_column(JSONType, default=dict)

    __table_args__ = (
        Index("ix_change_log_txid_id", "txid", "id"),
        Index("ix_change_log_object", "object_type", "object_id", "id"),
    )


class ChangeLogCI(db.Model):
    """Which CIs a change touched beyond its own object (a relationship's ends, a ticket's CIs)."""

    __tablename__ = "change_log_ci"

    change_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("change_log.id", ondelete="CASCADE"), primary_key=True)
    ci_id: Mapped[int] = mapped_column(primary_key=True)

    __table_args__ = (Index("ix_change_log_ci_ci_id", "ci_id", "change_id"),)
