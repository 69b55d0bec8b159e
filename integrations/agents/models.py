"""Site tokens the inventory agents post with, and the devices they reported."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, utcnow


class AgentToken(Audited, TimestampedModel):
    """A per-site secret in the agents' server URL. Only its SHA-256 is kept; it grants inventory only
    (it is no API token: the bearer-token guard never sees this table)."""

    __tablename__ = "agent_token"

    site: Mapped[str] = mapped_column(String(60))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    def audit_summary(self, action: str) -> str:
        return f"agent token {self.prefix}… for site {self.site} {action}d"


class AgentDevice(TimestampedModel):
    """A device an agent reported: its DEVICEID (the third identification key after serial and MAC),
    the CI it became, what the CI's attributes cannot hold (BIOS, CPUs, disks, interfaces), and the
    digest of its last inventory (an identical one is acknowledged without reconciling)."""

    __tablename__ = "agent_device"

    device_id: Mapped[str] = mapped_column(String(200), unique=True)
    site: Mapped[str] = mapped_column(String(60))
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="SET NULL"), nullable=True)
    agent: Mapped[str] = mapped_column(String(100), default="")
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    logged_in_user: Mapped[str] = mapped_column(String(200), default="")
    proposed_assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    inventory_digest: Mapped[str] = mapped_column(String(64), default="")
    last_inventory_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_agent_device_ci_id", "ci_id"),)
