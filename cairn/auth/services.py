"""Users, teams and tokens: every write to them goes through here."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload, make_transient_to_detached, object_session
from sqlalchemy.orm.attributes import set_committed_value

from cairn.auth.models import ApiToken, AuthEvent, Team, User
from cairn.auth.roles import ADMIN, ALL_ROLES
from cairn.config import setting
from cairn.db import db, utcnow
from cairn.errors import Conflict, Forbidden, Invalid
from cairn.uow import checkpoint
from cairn.zones import time_zones

TOKEN_PREFIX = "cairn_"
LOCAL = "local"
DIRECTORY_UNAVAILABLE = "directory unavailable"


def hash_token(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe and keeps every request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(email: str, role: str, name: str = "", password: str | None = None) -> User:
    """Create a user with one of the roles of API.md."""
    if role not in ALL_ROLES:
        raise Invalid(f"unknown role {role!r}; choose one of {', '.join(ALL_ROLES)}")
    email = email.strip().lower()
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} exists already")
    user = User(email=email, role=role, name=name or email.split("@")[0], source=LOCAL)
    if password:
        set_password(user, password)
    db.session.add(user)
    db.session.flush()
    return user


# argon2id's parameter sets (argon2-cffi's profiles): RFC 9106's second recommendation by default
# (64 MiB, 3 passes; about 0.13 s a hash here), its first (2 GiB, 1 pass) for hosts with the memory,
# and the cheapest, which protects nothing, for test suites that sign in thousands of times.
PASSWORD_HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST")
PASSWORD_HASH_PROFILE_SETTING = "CAIRN_PASSWORD_HASH_PROFILE"


@cache
def _hasher_of(profile: str) -> PasswordHasher:
    if profile not in PASSWORD_HASH_PROFILES:
        raise ValueError(
            f"{PASSWORD_HASH_PROFILE_SETTING}={profile!r} is not an argon2 profile Cairn knows; "
            f"choose one of {', '.join(PASSWORD_HASH_PROFILES)}"
        )
    return PasswordHasher.from_parameters(getattr(profiles, profile))


def password_hasher() -> PasswordHasher:
    """The argon2id hasher of the configured profile (``CAIRN_PASSWORD_HASH_PROFILE``). A password
    hashed under another profile is verified with the parameters its hash carries and hashed again
    under this one at its next successful sign-in."""
    return _hasher_of(setting(PASSWORD_HASH_PROFILE_SETTING, "") or PASSWORD_HASH_PROFILES[0])


def check_password_hash_profile() -> None:
    """At start: an unknown profile stops the app (not the first sign-in); the test profile is logged."""
    password_hasher()
    if setting(PASSWORD_HASH_PROFILE_SETTING, "") == "CHEAPEST":
        logging.getLogger(__name__).warning(
            "%s=CHEAPEST: passwords are hashed for a test suite and protected by nothing",
            PASSWORD_HASH_PROFILE_SETTING,
        )


MIN_PASSWORD_LENGTH = 12  # as the API's user schema (cairn/auth/schemas.py)
MAX_PASSWORD_LENGTH = 200


def check_password_rules(user: User, password: str) -> None:
    """A new password must be long enough and not the user's e-mail or name (422 otherwise)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid("That password is too long.", errors={"password": [f"At most {MAX_PASSWORD_LENGTH} characters."]})
    lowered = password.strip().lower()
    if lowered in {user.email.lower(), user.email.split("@")[0].lower(), (user.name or "").lower()}:
        raise Invalid("A password may not be your e-mail or your name.", errors={"password": ["Choose another."]})


def refuse_directory_password(user: User) -> None:
    """A directory (or single sign-on) user has no local password: setting one is a 409."""
    if user.source != LOCAL:
        raise Conflict(
            f"{user.email} signs in through the directory ({user.source}): its password is changed there, not in Cairn."
        )


def set_password(user: User, password: str) -> None:
    refuse_directory_password(user)
    user.password_hash = password_hasher().hash(password)


def change_password(user: User, current: str, new: str) -> None:
    """The user's own change: the current password first, then the rules. Other browser sessions of
    the user end (their session cookie carries a stamp of the old hash)."""
    refuse_directory_password(user)
    if not verify_password(user, current):
        raise Invalid("The current password is wrong.", errors={"current_password": ["Wrong password."]})
    check_password_rules(user, new)
    set_password(user, new)


def set_preferences(user: User, locale: str, timezone: str, locales: list[str]) -> None:
    """The language (one of ``locales``) and the IANA time zone the desk shows this user."""
    errors = {}
    if locale not in locales:
        errors["locale"] = [f"Choose one of {', '.join(locales)}."]
    if timezone not in time_zones():
        errors["timezone"] = ["Choose a time zone such as Europe/Paris or UTC."]
    if errors:
        raise Invalid("Some settings are invalid.", errors=errors)
    user.locale = locale
    user.timezone = timezone


def update_user(user: User, data: dict, actor: User | None = None, deactivation_reason: str = "by an admin") -> User:
    """Change a user's ``name``, ``role``, ``active`` flag or ``password`` (an admin's edit).

    Refused with 409: an admin demoting or deactivating itself (``actor``), any change that would
    leave no active admin (the last one demoted or deactivated), and a password for a directory
    user. A new role applies to the user's next request; a deactivation revokes the user's tokens
    (for good) and refuses their browser sessions at once, and is recorded in the sign-in audit."""
    data = dict(data)
    if data.get("password"):
        refuse_directory_password(user)
    deactivating = user.active and data.get("active", True) is False
    if "role" in data and data["role"] not in ALL_ROLES:
        raise Invalid(f"unknown role {data['role']!r}", errors={"role": [f"Choose one of {', '.join(ALL_ROLES)}."]})
    stays_admin = data.get("role", user.role) == ADMIN and data.get("active", user.active)
    if user.role == ADMIN and user.active and not stays_admin:
        if actor is not None and actor.id == user.id:
            raise Conflict("An admin cannot demote or deactivate itself.")
        # Lock the active admins' rows: two admins demoting each other at once cannot both succeed.
        admins = db.session.scalars(
            select(User.id).where(User.role == ADMIN, User.active.is_(True)).with_for_update()
        ).all()
        if set(admins) <= {user.id}:
            raise Conflict(f"{user.email} is the last active admin; make another user an admin first.")
    password = data.pop("password", None)
    for key in ("name", "role", "active"):
        if key in data:
            setattr(user, key, data[key])
    if password:
        set_password(user, password)
    if deactivating:
        user.sessions_revoked_at = utcnow()
        for token in tokens_of(user):
            if token.revoked_at is None:
                token.revoked_at = utcnow()
        record_auth_event("deactivated", user, reason=deactivation_reason)
    db.session.flush()
    forget_tokens()
    return user


def reset_password(user: User, password: str | None = None) -> str:
    """An admin's reset: set ``password`` (checked by the password rules) or, without one, a new
    random one; returns it (show it once: only its hash is kept). The user's browser sessions end."""
    refuse_directory_password(user)
    if password:
        check_password_rules(user, password)
    else:
        password = secrets.token_urlsafe(15)
    set_password(user, password)
    db.session.flush()
    return password


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    hasher = password_hasher()
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        set_password(user, password)
    return True


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def sign_in_with_password(email: str, password: str) -> tuple[User | None, str]:
    """Who ``email`` and ``password`` sign in as: (the user, "") or (the user if known, the
    reason it failed, for the sign-in audit). A local account is checked against its own hash,
    without the directory (so local admins sign in while the directory is down); a directory
    account, or an e-mail Cairn does not know while a directory is configured, is checked by a
    bind to the directory (cairn/directory), which creates or updates the user on success."""
    if not email or len(email) > 254 or len(password) > 1024:
        return None, "unknown e-mail"
    user = find_user(email)
    if user is not None and user.source == LOCAL:
        if not user.active:
            return user, "deactivated"
        return user, "" if verify_password(user, password) else "wrong password"
    if user is not None and not user.active:
        return user, "deactivated"
    from cairn.directory import services as directory

    if user is None and not directory.configured():
        return None, "unknown e-mail"
    if user is not None and user.source != directory.LDAP:
        return user, f"signs in with {user.source}"
    return directory.sign_in(email.strip(), password, user)


def create_token(
    user: User,
    name: str = "",
    expires_in_days: int | None = None,
    *,
    scopes: list[str] | None = None,
    allowed_networks: list[str] | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for ``user`` (limited to ``scopes`` and ``allowed_networks`` when given);
    returns the row and the secret, which is not stored anywhere."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=secret[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8],
        token_hash=hash_token(secret),
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
        scopes=sorted(set(scopes)) if scopes is not None else None,
        allowed_networks=list(dict.fromkeys(allowed_networks)) if allowed_networks else None,
    )
    db.session.add(token)
    db.session.flush()
    return token, secret


def narrower_limits(caller: ApiToken | None, scopes, networks) -> tuple[list | None, list | None]:
    """The limits of a token made by ``caller``: what was asked, which may not exceed the caller's
    own (a limited token cannot mint a broader one: Forbidden); not asked, the caller's."""
    import ipaddress

    if caller is None:
        return scopes, networks
    if caller.scopes is not None:
        if scopes is None:
            scopes = list(caller.scopes)
        elif not set(scopes) <= set(caller.scopes):
            raise Forbidden(f"This token may only make tokens within its scopes ({', '.join(caller.scopes)}).")
    if caller.allowed_networks:
        if not networks:
            networks = list(caller.allowed_networks)
        else:
            mine = [ipaddress.ip_network(n, strict=False) for n in caller.allowed_networks]
            for network in networks:
                asked = ipaddress.ip_network(network, strict=False)
                if not any(asked.version == m.version and asked.subnet_of(m) for m in mine):
                    raise Forbidden("This token may only make tokens within its networks.")
    return scopes, networks


# token hash -> (monotonic deadline, the token with its user, detached): see authenticate().
_recent: dict[str, tuple[float, ApiToken]] = {}


def forget_tokens() -> None:
    """Drop this process's remembered tokens (after a revocation or a change of user)."""
    _recent.clear()


def authenticate(secret: str, touch_after_seconds: int = 300, remember_seconds: float = 0) -> ApiToken | None:
    """The live token for ``secret`` (not revoked, not expired, user active), or None.

    With ``remember_seconds`` a process re-uses a token it checked that recently without asking the
    database again: a revocation or a deactivated user takes at most that long to reach the other
    processes (this one forgets at once)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_token(secret)
    now = utcnow()
    remembered = _recent.get(digest) if remember_seconds else None
    if remembered is not None and remembered[0] > time.monotonic():
        token = remembered[1]  # detached: session_user() gives its user to this request's session
        if token.expires_at is None or token.expires_at > now:
            return token
    token = db.session.scalar(select(ApiToken).options(joinedload(ApiToken.user)).where(ApiToken.token_hash == digest))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if not token.user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=touch_after_seconds):
        token.last_used_at = now
        record_auth_event("token_used", token.user, token_prefix=token.prefix)
        try:
            checkpoint()
        except OperationalError:
            # Best effort: a busy database must not turn a read into an error (SQLite cannot
            # upgrade a read transaction while another writer commits).
            db.session.rollback()
            return token
    if remember_seconds:
        if len(_recent) > 10_000:
            _recent.clear()
        _recent[digest] = (time.monotonic() + remember_seconds, _remembered(token))
    return token


def _remembered(token: ApiToken) -> ApiToken:
    """A copy of ``token`` and its user that belongs to no session: what this request's session
    does later (a checkpoint or a rollback expires its objects) can never leave the remembered
    token half-loaded for the next request."""
    copy = _detached_copy(token)
    set_committed_value(copy, "user", _detached_copy(token.user))
    return copy


def _detached_copy(obj):
    mapper = inspect(obj).mapper
    copy = mapper.class_manager.new_instance()
    for prop in mapper.column_attrs:
        set_committed_value(copy, prop.key, getattr(obj, prop.key))
    make_transient_to_detached(copy)
    return copy


def session_user(token: ApiToken) -> User:
    """The user of ``token`` as an object of this request's session: a token ``authenticate``
    remembered is detached, and only its user is merged in (without a query)."""
    user = token.user
    if object_session(user) is db.session():
        return user
    return db.session.merge(user, load=False)


def record_auth_event(
    kind: str, user: User | None = None, *, email: str = "", reason: str = "", token_prefix: str = ""
) -> AuthEvent:
    """Add a sign-in audit row (AuthEvent) with the request's address and user agent; the caller's
    unit of work commits it (a failed sign-in commits it at once, its answer being an error)."""
    from flask import has_request_context, request

    ip, agent = "", ""
    if has_request_context():
        ip, agent = (request.remote_addr or "")[:45], (request.headers.get("User-Agent") or "")[:300]
    event = AuthEvent(
        kind=kind,
        user_id=user.id if user is not None else None,
        email=(email or (user.email if user is not None else ""))[:254],
        reason=reason[:100],
        ip=ip,
        user_agent=agent,
        token_prefix=token_prefix,
    )
    db.session.add(event)
    return event


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    forget_tokens()


def tokens_of(user: User) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def create_team(name: str, email: str | None = None, description: str = "", member_ids=()) -> Team:
    if db.session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"a team named {name!r} exists already")
    team = Team(name=name, email=email, description=description)
    team.members = _users(member_ids)
    db.session.add(team)
    db.session.flush()
    return team


def update_team(team: Team, data: dict) -> Team:
    """Rename a team, change its contact, or replace its members (``member_ids``)."""
    data = dict(data)
    name_taken = (
        "name" in data
        and data["name"] != team.name
        and db.session.scalar(select(Team.id).where(Team.name == data["name"]))
    )
    if name_taken:
        raise Conflict(f"a team named {data['name']!r} exists already")
    member_ids = data.pop("member_ids", None)
    for key, value in data.items():
        setattr(team, key, value)
    if member_ids is not None:
        team.members = _users(member_ids)
    db.session.flush()
    return team


def _users(ids) -> list[User]:
    ids = list(dict.fromkeys(ids or ()))
    if not ids:
        return []
    users = list(db.session.scalars(select(User).where(User.id.in_(ids))))
    missing = set(ids) - {u.id for u in users}
    if missing:
        raise Invalid(f"no user with id {', '.join(map(str, sorted(missing)))}")
    return users


def parse_expiry(value: datetime | None) -> datetime | None:
    if value is not None and value <= utcnow():
        raise Invalid("expires_at must lie in the future")
    return value
