"""Directory accounts: sign-in by bind, what a directory entry makes of a user, the sync.

A directory entry becomes a user of source ``ldap`` keyed by the directory's stable id
(``external_id``): first sign-in or a sync creates it, later ones update its name, e-mail, phone,
department and manager. Its role is the highest-ranked role mapped from its groups (``ROLE_RANK``),
``requester`` when none of its groups is mapped. Teams named by a mapping are the directory's: the
user is in exactly those of them its groups map to; teams no mapping names are left alone, and so
are local users everywhere. A local account whose e-mail a directory entry also carries is never
taken over (the entry is skipped and reported): an admin's local account keeps working whatever the
directory says.

The sync deactivates (never deletes) directory users the directory no longer lists or marks
disabled; deactivation revokes their tokens and sessions at once. A user the sync deactivated is
reactivated by a later sync that finds them enabled again; one an admin deactivated is not. A dry
run does all of it in a savepoint rolled back at the end: the same answers, nothing changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from cairn.audit.context import Actor, acting_as
from cairn.audit.mixin import record
from cairn.auth import services as auth
from cairn.auth.models import Team, User
from cairn.auth.roles import (
    ADMIN,
    AGENT,
    ALL_ROLES,
    ASSET_MANAGER,
    AUDITOR,
    CHANGE_MANAGER,
    INTEGRATION,
    REQUESTER,
)
from cairn.db import db, utcnow
from cairn.directory import client
from cairn.directory.client import DirectoryConfig, DirectoryEntry, DirectoryUnavailable
from cairn.directory.models import DirectoryGroupMapping, DirectoryProfile, DirectorySyncRun
from cairn.errors import Conflict, Invalid

log = logging.getLogger("cairn.directory")
LDAP = "ldap"
MAPPING_SOURCES = ("ldap", "oidc")  # whose groups a mapping names: the directory's, the OpenID provider's
DIRECTORY_ACTOR = Actor("directory")
# When a user's groups map to several roles, the first of these wins.
ROLE_RANK = (ADMIN, CHANGE_MANAGER, ASSET_MANAGER, AGENT, AUDITOR, INTEGRATION, REQUESTER)
DEFAULT_ROLE = REQUESTER


def configured() -> bool:
    """Whether a directory is configured (CAIRN_LDAP_URL is set)."""
    return DirectoryConfig.from_settings() is not None


# --- group mappings -------------------------------------------------------------------------


def normalise_dn(dn: str) -> str:
    """DNs compare without regard to case or the spaces around separators."""
    return ",".join(part.strip() for part in dn.strip().split(",")).lower()


def create_mapping(
    group_dn: str, role: str | None = None, team_id: int | None = None, source: str = LDAP
) -> DirectoryGroupMapping:
    """Map a directory group to a role, a team, or both (422 without either; 409 when it exists).
    ``source`` ``oidc``: ``group_dn`` is a value of the OpenID provider's groups claim (a name or id)."""
    if source not in MAPPING_SOURCES:
        raise Invalid(f"unknown source {source!r}", errors={"source": [f"Choose one of {', '.join(MAPPING_SOURCES)}."]})
    group_dn = normalise_dn(group_dn) if source == LDAP else group_dn.strip().lower()
    if source == LDAP and "=" not in group_dn:
        raise Invalid(
            "Give the group's DN, such as cn=helpdesk,ou=groups,dc=example,dc=org.", errors={"group_dn": ["Not a DN."]}
        )
    if role is None and team_id is None:
        raise Invalid("A mapping needs a role, a team, or both.", errors={"role": ["Give a role or a team_id."]})
    if role is not None and role not in ALL_ROLES:
        raise Invalid(f"unknown role {role!r}", errors={"role": [f"Choose one of {', '.join(ALL_ROLES)}."]})
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise Invalid(f"no team with id {team_id}", errors={"team_id": ["No such team."]})
    same = select(DirectoryGroupMapping.id).where(
        DirectoryGroupMapping.source == source,
        DirectoryGroupMapping.group_dn == group_dn,
        DirectoryGroupMapping.role.is_(None) if role is None else DirectoryGroupMapping.role == role,
        DirectoryGroupMapping.team_id.is_(None) if team_id is None else DirectoryGroupMapping.team_id == team_id,
    )
    if db.session.scalar(same) is not None:
        raise Conflict("This group is mapped so already.")
    mapping = DirectoryGroupMapping(group_dn=group_dn, role=role, team_id=team_id, source=source)
    db.session.add(mapping)
    db.session.flush()
    return mapping


def delete_mapping(mapping: DirectoryGroupMapping) -> None:
    """Remove a mapping: the users it gave a role or a team keep them until the next sign-in or sync."""
    db.session.delete(mapping)
    db.session.flush()


def mappings(source: str | None = None) -> list[DirectoryGroupMapping]:
    """Every group mapping (of ``source``, ldap or oidc, when given), oldest first."""
    stmt = select(DirectoryGroupMapping).order_by(DirectoryGroupMapping.id)
    if source is not None:
        stmt = stmt.where(DirectoryGroupMapping.source == source)
    return list(db.session.scalars(stmt))


@dataclass
class MappingRules:
    """The mappings, read once per sign-in or sync."""

    rules: list[DirectoryGroupMapping]
    managed_team_ids: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, source: str = LDAP) -> MappingRules:
        rules = mappings(source)
        return cls(rules, {m.team_id for m in rules if m.team_id is not None})

    def role_for(self, groups: set[str]) -> str:
        roles = {m.role for m in self.rules if m.role and m.group_dn in groups}
        return next((role for role in ROLE_RANK if role in roles), DEFAULT_ROLE)

    def team_ids_for(self, groups: set[str]) -> set[int]:
        return {m.team_id for m in self.rules if m.team_id is not None and m.group_dn in groups}


# --- one entry -> one user ------------------------------------------------------------------


def _profile(user: User) -> DirectoryProfile | None:
    return user.directory_profile


class KnownUsers:
    """Every user, read once per sync with their teams and profiles, by directory id and e-mail:
    an unchanged entry then costs no query at all."""

    def __init__(self):
        users = db.session.scalars(
            select(User).options(selectinload(User.teams), selectinload(User.directory_profile))
        ).all()
        self.by_id = {u.external_id: u for u in users if u.external_id}
        self.by_email = {u.email: u for u in users}

    def add(self, user: User) -> None:
        self.by_id[user.external_id] = self.by_email[user.email] = user


def _find(entry: DirectoryEntry, known: KnownUsers | None) -> User | None:
    if known is not None:
        return known.by_id.get(entry.external_id) or known.by_email.get(entry.email)
    user = db.session.scalar(select(User).where(User.external_id == entry.external_id))
    return user if user is not None else auth.find_user(entry.email)


def apply_entry(
    entry: DirectoryEntry, mapped: MappingRules, known: KnownUsers | None = None
) -> tuple[User | None, list[str]]:
    """Create or update the user ``entry`` describes; returns it (None when skipped) and what
    changed, in words (empty: nothing). A disabled entry never creates a user."""
    user = _find(entry, known)
    if user is not None and user.source != LDAP:
        return None, [f"skipped: a {user.source} account has the e-mail {entry.email}"]
    if user is None and entry.disabled:
        return None, []
    changes: list[str] = []
    if user is None:
        user = auth.create_user(entry.email, mapped.role_for(entry.groups), entry.name)
        user.source, user.external_id = LDAP, entry.external_id
        if known is not None:
            known.add(user)
        changes.append("created")
    else:
        if user.external_id != entry.external_id:
            changes.append("directory id updated")
            user.external_id = entry.external_id
        if entry.email != user.email:
            if auth.find_user(entry.email) is not None:
                return user, [f"skipped: the new e-mail {entry.email} belongs to another user"]
            changes.append(f"e-mail {user.email} -> {entry.email}")
            user.email = entry.email
        if entry.name and entry.name != user.name:
            changes.append(f"name -> {entry.name}")
            user.name = entry.name
        role = mapped.role_for(entry.groups)
        if role != user.role:
            try:
                auth.update_user(user, {"role": role})
                changes.append(f"role -> {role}")
            except Conflict as exc:
                changes.append(f"role kept: {exc.detail}")
    changes += _move_teams(user, mapped.team_ids_for(entry.groups), mapped.managed_team_ids)
    profile_changes = _update_profile(user, entry)
    return user, changes if changes[:1] == ["created"] else changes + profile_changes


def _move_teams(user: User, wanted: set[int], managed: set[int]) -> list[str]:
    current = {t.id for t in user.teams}
    target = (current - managed) | wanted
    if target == current:
        return []
    teams = {t.id: t for t in db.session.scalars(select(Team).where(Team.id.in_(current | target)))}
    user.teams = sorted((teams[i] for i in target), key=lambda t: t.name)
    db.session.flush()
    added = sorted(teams[i].name for i in target - current)
    removed = sorted(teams[i].name for i in current - target)
    record(db.session, user, "update", {"teams": {"added": added, "removed": removed}})
    return [f"teams +{', '.join(added) or '-'} -{', '.join(removed) or '-'}"]


def _update_profile(user: User, entry: DirectoryEntry) -> list[str]:
    profile = _profile(user)
    if profile is None:
        profile = DirectoryProfile(user=user, dn="", phone="", department="")
        db.session.add(profile)
    if user.active and profile.deactivated_by_directory:
        profile.deactivated_by_directory = False  # an admin reactivated them: a later deactivation is theirs
    changed = [
        name
        for name, value in (("dn", entry.dn), ("phone", entry.phone), ("department", entry.department))
        if getattr(profile, name) != value
    ]
    if not changed:
        return []  # an unchanged entry writes nothing: a sync of 2,000 people is 2,000 reads
    profile.dn, profile.phone, profile.department = entry.dn, entry.phone, entry.department
    profile.synced_at = utcnow()
    db.session.flush()
    return [f"{', '.join(changed)} updated"]


def _resolve_managers(entries: list[DirectoryEntry]) -> int:
    """Point each profile's manager at the user whose entry the manager attribute names."""
    by_dn = {p.dn.lower(): p for p in db.session.scalars(select(DirectoryProfile))}
    changed = 0
    for entry in entries:
        profile = by_dn.get(entry.dn.lower())
        if profile is None:
            continue
        manager = by_dn.get(entry.manager_dn.lower()) if entry.manager_dn else None
        manager_id = manager.user_id if manager is not None else None
        if profile.manager_id != manager_id:
            profile.manager_id = manager_id
            changed += 1
    db.session.flush()
    return changed


def deactivate(user: User, reason: str) -> bool:
    """Deactivate a directory user (sync): tokens revoked, sessions refused, the sign-in audit
    told why. False when refused: the last active admin stays active."""
    try:
        auth.update_user(user, {"active": False}, deactivation_reason=reason)
    except Conflict:
        return False
    profile = _profile(user)
    if profile is not None:
        profile.deactivated_by_directory = True
    return True


# --- sign-in ------------------------------------------------------------------------------------


def sign_in(login: str, password: str, user: User | None) -> tuple[User | None, str]:
    """Authenticate ``login`` against the directory by bind; on success create or update the user
    (first sign-in: created with the role and teams its groups map to). Returns (user, "") or
    (the user if known, the failure's reason for the sign-in audit). The password is passed to
    the bind only: never logged, never stored."""
    config = DirectoryConfig.from_settings()
    if config is None:
        return user, "unknown e-mail" if user is None else "directory not configured"
    try:
        entry, reason = client.authenticate(config, login, password)
    except DirectoryUnavailable as exc:
        log.warning("directory unavailable at sign-in: %s", exc)
        return user, auth.DIRECTORY_UNAVAILABLE
    if entry is None:
        return user, reason
    if entry.disabled:
        return user, "disabled in directory"
    if not entry.email:
        return user, "no e-mail in directory"
    with acting_as(DIRECTORY_ACTOR):
        known = _provision(entry)
    if known is None:
        return user, "local account"
    if not known.active:
        return known, "deactivated"
    return known, ""


def _provision(entry: DirectoryEntry) -> User | None:
    """apply_entry in a savepoint; once more if a sync (or another sign-in) created the same user
    in the meantime (a duplicate e-mail or directory id): the second time finds it."""
    try:
        with db.session.begin_nested():
            return apply_entry(entry, MappingRules.load())[0]
    except (IntegrityError, Conflict):
        log.info("directory user %s created meanwhile; applying the entry again", entry.email)
    with db.session.begin_nested():
        return apply_entry(entry, MappingRules.load())[0]


# --- sync ---------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    dry_run: bool
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("created", "updated", "deactivated", "reactivated", "unchanged", "skipped"), 0
        )
    )
    lines: list[str] = field(default_factory=list)

    def add(self, kind: str, email: str, what: list[str] | str) -> None:
        self.counts[kind] += 1
        text = "; ".join(what) if isinstance(what, list) else what
        self.lines.append(f"{kind} {email}: {text}" if text else f"{kind} {email}")

    @property
    def changed(self) -> bool:
        return any(self.counts[k] for k in ("created", "updated", "deactivated", "reactivated"))


def sync(dry_run: bool = False) -> SyncReport:
    """Bring the directory users in line with the directory (see the module's docstring); raises
    DirectoryUnavailable when it cannot be read, before changing anything."""
    config = DirectoryConfig.from_settings()
    if config is None:
        raise DirectoryUnavailable("the directory is not configured (CAIRN_LDAP_URL)")
    connection = client.service_connection(config)
    try:
        entries = client.all_entries(config, connection)
    finally:
        connection.unbind()
    if not entries:
        raise DirectoryUnavailable("the directory listed no users: check CAIRN_LDAP_USER_BASE and _FILTER")
    report = SyncReport(dry_run)
    savepoint = db.session.begin_nested() if dry_run else None
    try:
        _sync_entries(entries, report)
        if report.changed and not dry_run:
            db.session.add(DirectorySyncRun(counts=dict(report.counts), lines=report.lines[:5000]))
            db.session.flush()
    finally:
        if savepoint is not None:
            savepoint.rollback()
    log.info("directory sync%s: %s", " (dry run)" if dry_run else "", report.counts)
    return report


def _sync_entries(entries: list[DirectoryEntry], report: SyncReport) -> None:
    mapped, known = MappingRules.load(), KnownUsers()
    seen: set[int] = set()
    for entry in entries:
        if not entry.email:
            report.add("skipped", entry.dn, "no e-mail in the directory")
            continue
        user, changes = apply_entry(entry, mapped, known)
        if user is None:
            if changes:
                report.add("skipped", entry.email, changes)
            continue
        seen.add(user.id)
        if entry.disabled and user.active:
            _deactivate_into(report, user, "disabled in the directory", changes)
        elif not entry.disabled and not user.active and _deactivated_by_directory(user):
            auth.update_user(user, {"active": True})
            _profile(user).deactivated_by_directory = False
            report.add("reactivated", user.email, changes)
        elif changes[:1] == ["created"]:
            report.add("created", user.email, changes[1:])
        elif changes:
            report.add("updated", user.email, changes)
        else:
            report.counts["unchanged"] += 1
    active = db.session.scalars(select(User).where(User.source == LDAP, User.active.is_(True))).all()
    for user in active:
        if user.id not in seen:
            _deactivate_into(report, user, "left the directory", [])
    if _resolve_managers(entries):
        report.lines.append("managers updated")


def _deactivated_by_directory(user: User) -> bool:
    profile = _profile(user)
    return profile is not None and profile.deactivated_by_directory


def _deactivate_into(report: SyncReport, user: User, reason: str, changes: list[str]) -> None:
    if deactivate(user, reason):
        report.add("deactivated", user.email, [reason, *changes])
    else:
        report.add("skipped", user.email, [f"{reason}, but kept active: the last active admin", *changes])
