"""Custom field definitions and the version row that tells every process when they changed."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import JSON, BigInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.audit.mixin import Audited
from cairn.db import TimestampedModel, db, utcnow

TYPES = (
    "text", "long_text", "integer", "decimal", "date", "datetime", "boolean", "choice", "multi_choice",
    "url", "email", "ip_address", "ci", "user", "team",
)  # fmt: skip


class CustomField(Audited, TimestampedModel):
    """A field an admin added to some CI classes (and their subclasses), ticket kinds and/or ticket
    categories (and their subcategories). Its
    values live in the ``custom_fields`` JSON column of the CIs and tickets, by ``name``."""

    __tablename__ = "custom_field"
    __audit_type__ = "custom_field"

    name: Mapped[str] = mapped_column(String(50), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    ci_classes: Mapped[list] = mapped_column(JSON, default=list)
    ticket_kinds: Mapped[list] = mapped_column(JSON, default=list)
    # Ticket category ids (tickets.models.TicketCategory): tickets of the category and its subcategories.
    ticket_categories: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    required: Mapped[bool] = mapped_column(default=False)
    # JSON text (a JSON column would not do: SQLite's numeric affinity turns a stored 1 into a number)
    default_json: Mapped[str | None] = mapped_column(Text)
    choices: Mapped[list] = mapped_column(JSON, default=list)
    validation: Mapped[dict] = mapped_column(JSON, default=dict)
    help_text: Mapped[str] = mapped_column(String(500), default="")
    group_name: Mapped[str] = mapped_column(String(100), default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def default(self):
        return None if self.default_json is None else json.loads(self.default_json)

    @default.setter
    def default(self, value) -> None:
        self.default_json = None if value is None else json.dumps(value, separators=(",", ":"))

    @property
    def applies_to(self) -> dict:
        return {
            "ci_classes": list(self.ci_classes or []),
            "ticket_kinds": list(self.ticket_kinds or []),
            "ticket_categories": list(self.ticket_categories or []),
        }

    def audit_summary(self, action: str) -> str:
        return f"custom field {self.name} {action}d"[:300]


class CustomFieldState(db.Model):
    """One row, bumped (with a fresh random stamp) in every transaction that changes a definition:
    a process compares it with the definitions it holds, once per unit of work (see registry.py)."""

    __tablename__ = "custom_field_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    stamp: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
