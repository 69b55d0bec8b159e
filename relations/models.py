"""Relationship types, relationships between CIs, and the graph version counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, inspect, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db, utcnow


class RelationshipType(Audited, TimestampedModel):
    """A kind of relationship, as data: labels both ways, which way impact flows, allowed classes."""

    __tablename__ = "relationship_type"

    name: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    reverse_label: Mapped[str] = mapped_column(String(100))
    impact: Mapped[str] = mapped_column(String(30))
    # Empty list: any class may stand at that end.
    source_classes: Mapped[list] = mapped_column(JSONType, default=list)
    target_classes: Mapped[list] = mapped_column(JSONType, default=list)
    description: Mapped[str] = mapped_column(String(1000), default="")


class Relationship(Audited, TimestampedModel):
    """``source`` —type→ ``target``, valid from ``valid_from`` until ``valid_to`` (NULL: still valid).

    Never hard-deleted: deleting closes ``valid_to``, so the graph of any past moment can be rebuilt.
    """

    __tablename__ = "relationship"
    __audit_type__ = "relationship"
    # Closing is recorded as one "delete" change by the service, not as an update of valid_to.
    __audit_exclude__ = frozenset({"valid_to"})

    source_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))
    target_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))
    type: Mapped[str] = mapped_column(String(40), ForeignKey("relationship_type.name", ondelete="RESTRICT"))
    valid_from: Mapped[datetime] = mapped_column(default=utcnow)
    valid_to: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(1000), default="")
    version: Mapped[int] = mapped_column(default=1)

    source = relationship("ConfigurationItem", foreign_keys=[source_id], lazy="select")
    target = relationship("ConfigurationItem", foreign_keys=[target_id], lazy="select")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # One open relationship per (source, target, type); closed ones may repeat.
        Index(
            "uq_relationship_open",
            "source_id",
            "target_id",
            "type",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        # Covering indexes for walking the graph in SQL both ways (and for the CTE comparison).
        Index("ix_relationship_target", "target_id", "source_id", "type", "valid_to"),
        Index("ix_relationship_source", "source_id", "target_id", "type", "valid_to"),
        Index("ix_relationship_valid_from", "valid_from"),
    )

    def audit_ci_ids(self) -> set[int]:
        return {self.source_id, self.target_id}

    def audit_summary(self, action: str) -> str:
        loaded = inspect(self).dict
        source, target = loaded.get("source"), loaded.get("target")
        left = source.name if source is not None else f"CI {self.source_id}"
        right = target.name if target is not None else f"CI {self.target_id}"
        verb = {"create": "added", "delete": "removed", "update": "changed"}.get(action, action)
        return f"relationship {left} {self.type} {right} {verb}"[:300]


class GraphState(db.Model):
    """One row: bumped (with a fresh random stamp) in every transaction that changes the graph.

    The UPDATE takes the row lock before the transaction writes its change-log rows, so on
    PostgreSQL graph-changing transactions commit in the order of their change-log ids: a reader
    that has applied every graph change up to id N never sees one below N appear later. The stamp
    tells a reader that a version it cached was rolled back and reused.
    """

    __tablename__ = "graph_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    stamp: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
