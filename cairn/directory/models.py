"""What the directory adds to a user, the group mappings, and the record of each sync."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import JSONType, TimestampedModel


class DirectoryGroupMapping(Audited, TimestampedModel):
    """Members of the directory group ``group_dn`` (directly or through nested groups) get ``role``
    and/or are members of team ``team_id``. Rules as data: admins change them through the API or CLI."""

    __tablename__ = "directory_group_mapping"

    # stored lower-cased: DNs compare without regard to case
    group_dn: Mapped[str] = mapped_column(String(500), index=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), nullable=True)
    # whose group it is: "ldap" (a DN of the directory) or "oidc" (a value of the provider's groups claim)
    source: Mapped[str] = mapped_column(String(10), default="ldap", server_default="ldap")

    team = relationship("Team")

    def audit_summary(self, action: str) -> str:
        return f"directory group mapping {self.group_dn} {action}d"[:300]


class DirectoryProfile(Audited, TimestampedModel):
    """The directory's view of one user (source ``ldap``): its entry, the attributes Cairn keeps
    beside the user's name and e-mail, and whether the directory (not an admin) deactivated it."""

    __tablename__ = "directory_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    dn: Mapped[str] = mapped_column(String(1000))
    phone: Mapped[str] = mapped_column(String(50), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    # a sync deactivated the user (left or disabled): a later sync that finds it enabled reactivates it
    deactivated_by_directory: Mapped[bool] = mapped_column(default=False)
    # when the directory last changed what this profile holds
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)

    # User.directory_profile: shown in the user's answers (not loaded unless asked for)
    user = relationship("User", foreign_keys=[user_id], backref=backref("directory_profile", uselist=False))

    def audit_summary(self, action: str) -> str:
        return f"directory profile of user {self.user_id} {action}d"


class DirectorySyncRun(Audited, TimestampedModel):
    """One sync that changed something (a dry run writes nothing, not even this): its counts and
    a line per user changed, in the change log with it."""

    __tablename__ = "directory_sync_run"

    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    lines: Mapped[list] = mapped_column(JSONType, default=list)

    def audit_summary(self, action: str) -> str:
        changed = ", ".join(f"{k} {v}" for k, v in (self.counts or {}).items() if v)
        return f"directory sync: {changed or 'nothing changed'}"[:300]
