"""What e-mail leaves in the database: every inbound message (raw, before anything else), every
notification sent, addresses that bounce, the IMAP poller's place and the notifier's cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import TimestampedModel, db

INBOUND_STATUSES = ("queued", "processed", "ignored", "failed")
OUTBOUND_STATUSES = ("queued", "sent", "failed", "suppressed")


class InboundEmail(Audited, TimestampedModel):
    """One received message. The raw bytes are stored before parsing; (mailbox, message_key) is
    unique, so a message delivered twice (MTA retry, IMAP re-fetch, two sources) is stored once.
    ``message_key`` is the Message-ID, or ``sha256:<hash of the header block>`` when there is none."""

    __tablename__ = "inbound_email"
    __audit_type__ = "inbound_email"
    # Raw bytes never go into change-log diffs (size); the rest is a small, useful record.
    __audit_exclude__ = frozenset({"raw", "enqueued_at", "attempts"})

    mailbox: Mapped[str] = mapped_column(String(255), default="default")
    message_key: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    raw: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    source: Mapped[str] = mapped_column(String(20))
    kind_hint: Mapped[str | None] = mapped_column(String(20))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    envelope_to: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str | None] = mapped_column(String(500))
    # new_ticket | comment | reopened | related_ticket (how it was processed), None until then.
    outcome: Mapped[str | None] = mapped_column(String(20))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_comment.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)
    enqueued_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("mailbox", "message_key", name="uq_inbound_email_mailbox_message_key"),
        Index("ix_inbound_email_status_id", "status", "id"),
        Index("ix_inbound_email_message_id", "message_id"),
        Index("ix_inbound_email_sender", "from_address", "outcome", "processed_at"),
        Index("ix_inbound_email_ticket_id", "ticket_id"),
    )

    def audit_summary(self, action: str) -> str:
        what = {"create": "received", "update": self.status, "delete": "deleted"}.get(action, action)
        return f"mail {self.id} {what}: {self.subject or self.message_key}"[:300]


class OutboundEmail(Audited, TimestampedModel):
    """A notification: one per (change-log event, recipient), so dispatching twice sends once.
    Its Message-ID encodes the ticket, and replies naming it thread back to the ticket."""

    __tablename__ = "outbound_email"
    __audit_type__ = "outbound_email"
    __audit_exclude__ = frozenset({"body_text", "attempts"})

    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    change_id: Mapped[int | None]
    event: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("change_id", "recipient", name="uq_outbound_email_change_recipient"),
        Index("ix_outbound_email_status_id", "status", "id"),
        Index("ix_outbound_email_recipient", "recipient", "created_at"),
    )

    def audit_summary(self, action: str) -> str:
        return f"notification {self.id} to {self.recipient} {self.status}: {self.subject}"[:300]


class MailAddressState(Audited, TimestampedModel):
    """Addresses a DSN said are undeliverable: no notification goes to them until cleared."""

    __tablename__ = "email_address_state"
    __audit_type__ = "email_address_state"

    address: Mapped[str] = mapped_column(String(320), unique=True)
    undeliverable_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(500))


class ImapState(db.Model):
    """Per IMAP mailbox: UIDVALIDITY, the last UID stored, and a lease so runs never overlap.
    Bookkeeping, never changed by users: not audited."""

    __tablename__ = "email_imap_state"

    mailbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int | None]
    last_uid: Mapped[int] = mapped_column(default=0)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
