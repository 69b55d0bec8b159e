"""Users, teams and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel, db, utcnow

USER_SOURCES = ("local", "ldap", "oidc")

team_members = Table(
    "team_member",
    db.metadata,
    Column("team_id", ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(Audited, TimestampedModel):
    __tablename__ = "user"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Where the account comes from (USER_SOURCES): a directory's users sign in against it, with no
    # local password; external_id is the directory's stable id (entryUUID, objectGUID, else the DN).
    source: Mapped[str] = mapped_column(String(10), default="local", server_default="local")
    external_id: Mapped[str | None] = mapped_column(String(500), nullable=True, unique=True)
    # Set when the user is deactivated: part of the session stamp, so a reactivation does not
    # bring the browser sessions of before back (cairn/auth/sessions.py session_id).
    sessions_revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # How the web desk shows text, dates and numbers to this user.
    locale: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    version: Mapped[int] = mapped_column(default=1)

    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members", order_by="Team.name")

    __mapper_args__ = {"version_id_col": version}

    def audit_summary(self, action: str) -> str:
        return f"user {self.email} {action}d"

    # What a browser session (Flask-Login, cairn/auth/sessions.py) asks of its user.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        from cairn.auth.sessions import session_id

        return session_id(self)


class Team(Audited, TimestampedModel):
    __tablename__ = "team"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    version: Mapped[int] = mapped_column(default=1)

    members: Mapped[list[User]] = relationship(secondary=team_members, back_populates="teams", order_by="User.email")

    __mapper_args__ = {"version_id_col": version}


class ApiToken(Audited, TimestampedModel):
    """A bearer token. Only the SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_token"
    __audit_exclude__ = frozenset({"last_used_at"})

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # None: whatever the user's role allows; else only these scopes (cairn/auth/scopes.py)
    scopes: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    # None: from anywhere; else only from these networks (CIDR)
    allowed_networks: Mapped[list | None] = mapped_column(JSONType, nullable=True)

    user: Mapped[User] = relationship()

    def audit_summary(self, action: str) -> str:
        return f"token {self.prefix}… {action}d"


class TwoFactor(Audited, TimestampedModel):
    """A local account's TOTP enrolment (cairn/auth/two_factor.py): the secret, encrypted (it must
    be read back to check codes), active once confirmed with a first code."""

    __tablename__ = "two_factor"
    __audit_exclude__ = frozenset({"secret_encrypted", "last_used_step"})

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The time step of the last code accepted: a code of that step or an earlier one is a replay.
    last_used_step: Mapped[int | None] = mapped_column(nullable=True)
    recovery_codes_made_at: Mapped[datetime | None] = mapped_column(nullable=True)

    user: Mapped[User] = relationship()

    def audit_summary(self, action: str) -> str:
        return f"two-factor sign-in of user {self.user_id} {action}d"


class RecoveryCode(db.Model):
    """One single-use recovery code of a user's two-factor sign-in; only its SHA-256 is kept."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


AUTH_EVENT_KINDS = (
    "sign_in",
    "sign_in_failed",
    "sign_in_throttled",
    "sign_out",
    "token_used",
    "two_factor_enrolled",
    "two_factor_failed",
    "two_factor_recovery_used",
    "two_factor_codes_renewed",
    "two_factor_disabled",
    "two_factor_reset",
    "deactivated",
)


class AuthEvent(db.Model):
    """One sign-in, failed sign-in (with its reason, never the password), throttling, sign-out, or
    a token's use from an address (recorded when the token's last use is touched, not per call)."""

    __tablename__ = "auth_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True, index=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    reason: Mapped[str] = mapped_column(String(100), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    token_prefix: Mapped[str] = mapped_column(String(16), default="")
