"""Configuration items, their assignment history, and locations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db

LOCATION_KINDS = ("site", "building", "floor", "room")


class Location(Audited, TimestampedModel):
    """site > building > floor > room; each level's parent is the level above (a site has none)."""

    __tablename__ = "location"

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="RESTRICT"), index=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(String(2000), default="")
    version: Mapped[int] = mapped_column(default=1)

    parent: Mapped[Location | None] = relationship(remote_side="Location.id")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_location_parent_name"),)

    @property
    def path(self) -> str:
        parts, node, seen = [], self, set()
        while node is not None and node.id not in seen:
            seen.add(node.id)
            parts.append(node.name)
            node = node.parent
        return " > ".join(reversed(parts))


class ConfigurationItem(Audited, TimestampedModel):
    __tablename__ = "ci"
    __audit_type__ = "ci"

    name: Mapped[str] = mapped_column(String(200))
    ci_class: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="planned")
    criticality: Mapped[str] = mapped_column(String(10), default="medium")
    asset_tag: Mapped[str | None] = mapped_column(String(100), unique=True)
    # '' rather than NULL when unknown, so (vendor, serial_number) is unique in both databases.
    vendor: Mapped[str] = mapped_column(String(200), default="")
    serial_number: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(4000), default="")
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="RESTRICT"))
    purchase_date: Mapped[date | None]
    purchase_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    warranty_expires: Mapped[date | None]
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Values of the custom fields (cmdb/custom_fields) by name; the class picks the fields.
    custom_fields: Mapped[dict] = mapped_column(JSONType, default=dict, server_default=text("'{}'"))
    version: Mapped[int] = mapped_column(default=1)

    # The column whose value picks the custom fields that apply (cmdb.custom_fields.registry).
    __custom_fields_scope__ = ("ci", "ci_class")

    external_ids: Mapped[list[CIExternalId]] = relationship(
        back_populates="ci", lazy="selectin", cascade="all, delete-orphan", order_by="CIExternalId.source"
    )
    owner_team = relationship("Team", lazy="joined", innerjoin=False)
    assigned_to = relationship("User", lazy="joined", innerjoin=False)
    location: Mapped[Location | None] = relationship(lazy="joined", innerjoin=False)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("vendor", "serial_number", name="uq_ci_vendor_serial"),
        CheckConstraint("purchase_cost IS NULL OR purchase_cost >= 0", name="purchase_cost_not_negative"),
        Index("ix_ci_class_status", "ci_class", "status"),
        Index("ix_ci_status", "status"),
        Index("ix_ci_owner_team_id", "owner_team_id"),
        Index("ix_ci_assigned_to_id", "assigned_to_id"),
        Index("ix_ci_location_id", "location_id"),
        Index("ix_ci_name", "name"),
        Index("ix_ci_updated_at", "updated_at"),
        Index("ix_ci_serial_number", "serial_number"),
        # cf_<name>= filters: containment (@>) on PostgreSQL
        Index(
            "ix_ci_custom_fields",
            "custom_fields",
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        ),
    )

    def audit_summary(self, action: str) -> str:
        return f"{self.ci_class} {self.name} {action}d"[:300]


class CIExternalId(Audited, TimestampedModel):
    """The id a source (an ITSM tool, a discovery agent, procurement) knows a CI by; one per source."""

    __tablename__ = "ci_external_id"
    __audit_type__ = "ci_external_id"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(255))

    ci: Mapped[ConfigurationItem] = relationship(back_populates="external_ids")

    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_ci_external_id_source_external_id"),
        UniqueConstraint("ci_id", "source", name="uq_ci_external_id_ci_source"),
    )

    def audit_summary(self, action: str) -> str:
        return f"external id {self.source}:{self.external_id} {action}d"[:300]

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class CIAssignment(Audited, TimestampedModel):
    """Who had a CI, from when to when; the open row (assigned_until NULL) is the current holder."""

    __tablename__ = "ci_assignment"
    __audit_type__ = "ci_assignment"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    assigned_from: Mapped[datetime]
    assigned_until: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(String(1000), default="")

    user = relationship("User", lazy="joined")

    def audit_summary(self, action: str) -> str:
        verb = "assigned to" if self.assigned_until is None else "returned by"
        return f"CI {verb} user {self.user_id}"

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class CustomCIClass(Audited, TimestampedModel):
    """A CI class an admin added at run time (the built-in ones are code, in ``cmdb.classes``).

    It inherits its parent's attribute schema; ``relationship_types`` None means its parent's rules
    for each relationship type, a list means it takes part in those types and no others."""

    __tablename__ = "ci_class"
    __audit_type__ = "ci_class"

    name: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    parent: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20))
    icon: Mapped[str] = mapped_column(String(40), default="")
    relationship_types: Mapped[list | None] = mapped_column(JSONType)
    lifecycle: Mapped[str] = mapped_column(String(40), default="default")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class CIClassState(db.Model):
    """One row, bumped (version + a fresh random stamp) by every transaction that changes a custom
    class: each process compares it with the registry it holds at its first lookup of a unit of work."""

    __tablename__ = "ci_class_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    stamp: Mapped[int] = mapped_column(BigInteger, default=0)
