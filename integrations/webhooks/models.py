"""Webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class Webhook(Audited, TimestampedModel):
    """A subscription: which events go to which URL, signed with which secret.

    ``cursor_txid``/``cursor_id`` is how far the dispatcher has read the change log (the outbox) for
    this subscription; ``failing_since`` is the first failed attempt since the last success.
    """

    __tablename__ = "webhook"
    __audit_exclude__ = frozenset({"secret_encrypted", "cursor_txid", "cursor_id", "failing_since"})

    name: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    conditions: Mapped[list] = mapped_column(JSONType, default=list)
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")
    failing_since: Mapped[datetime | None]
    cursor_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        return f"webhook {self.name or self.url} {action}d"[:300]


class WebhookDelivery(TimestampedModel):
    """One event for one subscription: its payload (fixed at dispatch, so retries send the same data),
    where it stands, and a log of its attempts (time, response code, duration, error)."""

    __tablename__ = "webhook_delivery"

    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    change_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    response_code: Mapped[int | None]
    duration_ms: Mapped[int | None]
    error: Mapped[str] = mapped_column(String(1000), default="")
    log: Mapped[list] = mapped_column(JSONType, default=list)

    __table_args__ = (
        UniqueConstraint("webhook_id", "change_id", name="uq_webhook_delivery_webhook_change"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook", "webhook_id", "id"),
    )
