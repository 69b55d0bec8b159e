"""Asset records that hang off CIs: vendors, contracts, licences, maintenance, retirement, audits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from cairn.audit.mixin import Audited
from cairn.db import TimestampedModel

CONTRACT_TYPES = ("support", "maintenance", "lease", "warranty_extension", "subscription", "saas")
RECURRING_PERIODS = {"monthly": 1, "quarterly": 3, "yearly": 12}
LICENCE_MODELS = ("per_device", "per_user", "per_core", "site", "subscription")
MAINTENANCE_KINDS = ("repair", "upgrade", "patch", "inspection", "replacement", "other")
WIPE_METHODS = ("overwrite", "crypto_erase", "degauss", "physical_destruction", "factory_reset", "other")
DISPOSAL_METHODS = ("recycle", "resell", "donate", "destroy")
DEPRECIATION_METHODS = ("straight_line", "declining_balance")
RETIREMENT_STATES = ("requested", "approved", "rejected")
REMINDER_KINDS = ("contract_renewal", "contract_expiry", "warranty_expiry", "licence_expiry")

MONEY = Numeric(14, 2)


class Vendor(Audited, TimestampedModel):
    __tablename__ = "vendor"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    portal_url: Mapped[str | None] = mapped_column(String(2000))
    notes: Mapped[str] = mapped_column(String(4000), default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class ContractCI(Audited, TimestampedModel):
    """A CI covered by a contract."""

    __tablename__ = "contract_ci"

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))

    __table_args__ = (
        UniqueConstraint("contract_id", "ci_id", name="uq_contract_ci_contract_ci"),
        Index("ix_contract_ci_ci_id", "ci_id", "contract_id"),
    )

    def audit_summary(self, action: str) -> str:
        verb = "now covered by" if action == "create" else "no longer covered by"
        return f"CI {self.ci_id} {verb} contract {self.contract_id}"

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class Contract(Audited, TimestampedModel):
    """Support, maintenance, lease, warranty extension, subscription or SaaS contract with a vendor."""

    __tablename__ = "contract"

    name: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(100), default="")
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendor.id", ondelete="RESTRICT"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    recurring_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    recurring_period: Mapped[str | None] = mapped_column(String(10))
    currency: Mapped[str | None] = mapped_column(String(3))
    auto_renew: Mapped[bool] = mapped_column(default=False)
    notice_days: Mapped[int] = mapped_column(default=0)
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(String(4000), default="")
    version: Mapped[int] = mapped_column(default=1)

    vendor: Mapped[Vendor] = relationship(lazy="joined")
    covered: Mapped[list[ContractCI]] = relationship(
        cascade="all, delete-orphan", order_by="ContractCI.ci_id", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_not_before_start"),
        CheckConstraint("cost >= 0 AND recurring_cost >= 0", name="costs_not_negative"),
        CheckConstraint("notice_days >= 0", name="notice_not_negative"),
        Index("ix_contract_end_date", "end_date"),
    )

    @property
    def ci_ids(self) -> list[int]:
        return [link.ci_id for link in self.covered]

    def audit_summary(self, action: str) -> str:
        label = self.name or self.reference or f"#{self.id}"
        return f"{self.type} contract {label} {action}d"[:300]

    def audit_ci_ids(self) -> set[int]:
        session = object_session(self)
        if session is None or self.id is None:
            return set()
        return set(session.scalars(select(ContractCI.ci_id).where(ContractCI.contract_id == self.id)))


class Licence(Audited, TimestampedModel):
    """An entitlement to use a software product (a CI of class ``software``)."""

    __tablename__ = "licence"

    software_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"), index=True)
    model: Mapped[str] = mapped_column(String(20))
    # NULL only for site licences (unlimited).
    quantity: Mapped[int | None]
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id", ondelete="RESTRICT"), index=True)
    reference: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(String(4000), default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_not_before_start"),
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        CheckConstraint("quantity IS NULL OR quantity >= 0", name="quantity_not_negative"),
    )

    def audit_summary(self, action: str) -> str:
        amount = "site" if self.quantity is None else str(self.quantity)
        return f"{self.model} licence ({amount}) for software CI {self.software_id} {action}d"

    def audit_ci_ids(self) -> set[int]:
        return {self.software_id}


class MaintenanceRecord(Audited, TimestampedModel):
    """A repair, upgrade or patch done to a CI: the CI's maintenance history and part of its TCO."""

    __tablename__ = "maintenance_record"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))
    performed_at: Mapped[date]
    kind: Mapped[str] = mapped_column(String(20))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendor.id", ondelete="RESTRICT"))
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3))
    # The ticket that caused the work. No foreign key: the tickets table is created by another
    # migration branch; the service checks the id exists.
    ticket_id: Mapped[int | None] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(String(4000), default="")

    __table_args__ = (
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        Index("ix_maintenance_record_ci_id", "ci_id", "performed_at"),
    )

    def audit_summary(self, action: str) -> str:
        return f"{self.kind} on CI {self.ci_id} ({self.performed_at}) {action}d"

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class RetirementRequest(Audited, TimestampedModel):
    """A request to retire a CI; an admin or asset manager approves (the CI moves to retired) or rejects."""

    __tablename__ = "retirement_request"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(10), default="requested")
    reason: Mapped[str] = mapped_column(String(2000), default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(String(2000), default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        if action == "create":
            return f"retirement of CI {self.ci_id} requested"
        return f"retirement request for CI {self.ci_id} {self.state}"

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class WipeRecord(Audited, TimestampedModel):
    """Proof that a retired CI's data was destroyed: required before it may be disposed."""

    __tablename__ = "wipe_record"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"), index=True)
    method: Mapped[str] = mapped_column(String(30))
    performed_by: Mapped[str] = mapped_column(String(200))
    performed_at: Mapped[datetime]
    certificate: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")

    def audit_summary(self, action: str) -> str:
        return f"data wipe ({self.method}) of CI {self.ci_id} by {self.performed_by} {action}d"[:300]

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class DisposalRecord(Audited, TimestampedModel):
    """How a CI left the estate: recycled, resold, donated or destroyed, and what it brought in."""

    __tablename__ = "disposal_record"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"), unique=True)
    method: Mapped[str] = mapped_column(String(10))
    proceeds: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3))
    disposed_at: Mapped[date]
    recipient: Mapped[str] = mapped_column(String(200), default="")
    certificate: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")

    __table_args__ = (CheckConstraint("proceeds >= 0", name="proceeds_not_negative"),)

    def audit_summary(self, action: str) -> str:
        return f"CI {self.ci_id} disposed of ({self.method}) {action}d"

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class PhysicalAudit(Audited, TimestampedModel):
    """A CI seen (scanned by asset tag) at a location; a mismatch when that is not where it is recorded."""

    __tablename__ = "physical_audit"

    ci_id: Mapped[int] = mapped_column(ForeignKey("ci.id", ondelete="RESTRICT"))
    asset_tag: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id", ondelete="RESTRICT"))
    expected_location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="SET NULL"))
    mismatch: Mapped[bool] = mapped_column(default=False)
    audited_at: Mapped[datetime]
    audited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    next_audit_due: Mapped[date]
    note: Mapped[str] = mapped_column(String(2000), default="")

    __table_args__ = (
        Index("ix_physical_audit_ci_id", "ci_id", "audited_at"),
        Index("ix_physical_audit_mismatch", "mismatch", "audited_at"),
    )

    def audit_summary(self, action: str) -> str:
        where = f"location {self.location_id}"
        extra = f" (recorded at location {self.expected_location_id})" if self.mismatch else ""
        return f"CI {self.ci_id} seen at {where}{extra}"[:300]

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id}


class AssetClassPolicy(Audited, TimestampedModel):
    """Per CI class: how it depreciates and how often it is audited (classes without a row use defaults)."""

    __tablename__ = "asset_class_policy"

    ci_class: Mapped[str] = mapped_column(String(40), unique=True)
    depreciation_method: Mapped[str] = mapped_column(String(20), default="straight_line")
    useful_life_years: Mapped[int] = mapped_column(default=5)
    salvage_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    declining_factor: Mapped[Decimal] = mapped_column(Numeric(4, 2), default=Decimal("2"))
    audit_interval_days: Mapped[int] = mapped_column(default=365)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        return f"asset policy of class {self.ci_class} {action}d"


class AssetReminder(Audited, TimestampedModel):
    """One reminder raised by the scheduled job (renewal notice, warranty or licence expiry); the row's
    change-log entry is the event, and its uniqueness keeps the job from repeating itself."""

    __tablename__ = "asset_reminder"

    kind: Mapped[str] = mapped_column(String(20))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[int]
    due_date: Mapped[date]
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(String(500), default="")
    # Set when an e-mail went out; mail is not configured yet, so it stays NULL.
    notified_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("kind", "object_type", "object_id", "due_date", name="uq_asset_reminder_once"),
        Index("ix_asset_reminder_due_date", "due_date"),
    )

    def audit_summary(self, action: str) -> str:
        return self.message[:300] or f"{self.kind} reminder for {self.object_type} {self.object_id}"

    def audit_ci_ids(self) -> set[int]:
        ids = {self.ci_id} if self.ci_id else set()
        if self.object_type == "contract":
            session = object_session(self)
            if session is not None:
                ids |= set(session.scalars(select(ContractCI.ci_id).where(ContractCI.contract_id == self.object_id)))
        return ids
