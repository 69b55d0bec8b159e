"""Kernel bookkeeping for background work: leases and outbox cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db import db


class Lease(db.Model):
    """Who may run a named piece of work now, until when; ``rerun`` asks the holder for one more pass.

    Used by outbox consumers (one process advances a cursor at a time), the periodic jobs of the
    embedded runner (at most once per interval across processes) and resumable durable jobs."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[datetime | None]
    rerun: Mapped[bool] = mapped_column(default=False)


class OutboxCursor(db.Model):
    """Where a named outbox consumer is in the change log (the gap-free feed's cursor)."""

    __tablename__ = "outbox_cursor"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer(), "sqlite"), default=0)
    change_id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer(), "sqlite"), default=0)
    started_at: Mapped[datetime]
