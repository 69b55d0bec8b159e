"""Two-factor sign-in for local accounts: TOTP codes (RFC 6238) and single-use recovery codes.

How it holds together:

- **The secret is encrypted, not hashed.** Checking a code means computing it from the secret, so
  the secret must be readable: it is kept encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
  key derived by HKDF-SHA256 from ``CAIRN_TWO_FACTOR_KEY``, else from the app's ``SECRET_KEY`` (with
  a salt of its own, so the key serves nothing else). A database dump alone reveals no secret.
  Changing that key makes every enrolment unreadable: codes are then refused (never a 500) and an
  admin resets the users' two-factor (admin user page, ``cairn users reset-2fa EMAIL``).
- **An enrolment is active once confirmed** with a first code from the user's app; until then it
  only holds a secret to show (QR code and text).
- **No replay.** A code is accepted for its 30-second step and one step either side (clock drift).
  The step of the last accepted code is kept, and a code of that step or an earlier one is refused,
  so a code seen over a shoulder or in a proxy log cannot be used again. The enrolment's row is
  locked while a code is checked: two requests racing with the same code cannot both win.
- **Recovery codes**: ten, of 80 random bits each, shown once; only their SHA-256 is kept (as for
  API tokens, that much randomness makes a fast hash safe), each is usable once.
- **Throttling** of wrong codes belongs to the web sign-in (Flask-Limiter, per account and per
  address, as the password step); these services only judge a code, and say why one was refused.
- **Who**: local accounts only (``user.source == "local"``; an account without a source is local):
  a directory or single-sign-on account's second factor is its directory's or provider's business.
  ``CAIRN_REQUIRE_2FA_FOR`` (a comma list of roles) makes it mandatory for those roles: the web desk
  sends such a user to enrolment before any other page. API tokens are not affected: a token is a
  separate credential, made by a signed-in person (or an admin's CLI), scoped and revocable on its
  own, and sent by scripts that cannot answer a second factor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time

import pyotp
from flask import current_app
from sqlalchemy import delete, func, select

from cairn import crypto
from cairn.auth.models import RecoveryCode, TwoFactor, User
from cairn.auth.roles import ALL_ROLES
from cairn.auth.services import record_auth_event
from cairn.config import setting
from cairn.db import db, utcnow
from cairn.errors import Conflict, Forbidden, Invalid

log = logging.getLogger("cairn.auth")

RECOVERY_CODE_COUNT = 10
STEP_SECONDS = 30
DRIFT_STEPS = 1
CODE_DIGITS = 6


class CodeRefused(Invalid):
    """A wrong, replayed or used-up code (422); ``reason`` is what the sign-in audit records."""

    def __init__(self, reason: str, detail: str = "That code is not valid.", field: str = "code"):
        super().__init__(detail, errors={field: [detail]})
        self.reason = reason


# Who and when -------------------------------------------------------------------------------------


def applies_to(user: User) -> bool:
    """Whether ``user`` signs in with a local password, and so may (or must) use two-factor."""
    return (getattr(user, "source", None) or "local") == "local"


def required_roles() -> frozenset[str]:
    """The roles ``CAIRN_REQUIRE_2FA_FOR`` names (``admin``, ``admin,agent``...); unknown ones are
    logged and ignored."""
    named = {part.strip() for part in str(setting("CAIRN_REQUIRE_2FA_FOR", "")).split(",") if part.strip()}
    unknown = named - set(ALL_ROLES)
    if unknown:
        log.warning("CAIRN_REQUIRE_2FA_FOR names unknown roles: %s", ", ".join(sorted(unknown)))
    return frozenset(named & set(ALL_ROLES))


def is_required(user: User) -> bool:
    """Whether the policy obliges ``user`` to sign in with a second factor."""
    return applies_to(user) and user.role in required_roles()


def enrolment(user: User) -> TwoFactor | None:
    """The user's enrolment, confirmed or not."""
    return db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id))


def is_enabled(user: User) -> bool:
    """Whether ``user`` has a confirmed two-factor enrolment (and is a local account)."""
    if not applies_to(user):
        return False
    confirmed = select(TwoFactor.id).where(TwoFactor.user_id == user.id, TwoFactor.confirmed_at.is_not(None))
    return db.session.scalar(confirmed) is not None


def must_enrol(user: User) -> bool:
    """Required by the policy but not enabled yet: the desk opens nothing but enrolment."""
    return is_required(user) and not is_enabled(user)


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(
        select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


# Enrolment ---------------------------------------------------------------------------------------


def begin_enrolment(user: User) -> str:
    """Start (or restart) an enrolment with a new secret, returned in clear to show as a QR code and
    as text; inactive until :func:`confirm_enrolment`. Refused when two-factor is already on (409)
    or the account is not local (403)."""
    if not applies_to(user):
        raise Forbidden("Two-factor sign-in is for local accounts; your directory handles yours.")
    existing = _locked(user)
    if existing is not None and existing.confirmed_at is not None:
        raise Conflict("Two-factor sign-in is on already; turn it off first to enrol another app.")
    secret = pyotp.random_base32()
    if existing is None:
        db.session.add(TwoFactor(user_id=user.id, secret_encrypted=_encrypt(secret)))
    else:
        existing.secret_encrypted = _encrypt(secret)
        existing.last_used_step = None
    db.session.flush()
    return secret


def pending_secret(user: User) -> str | None:
    """The secret of an enrolment not confirmed yet (to show again), or None."""
    found = enrolment(user)
    if found is None or found.confirmed_at is not None:
        return None
    try:
        return _decrypt(found.secret_encrypted)
    except ValueError:
        return None  # the key changed since: the user starts again


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    issuer = setting("CAIRN_TWO_FACTOR_ISSUER", "Cairn")
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """``uri`` as a QR code in inline SVG (drawn here: no image service sees the secret)."""
    import segno

    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff", title=title)


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Activate the started enrolment with a first ``code`` from the app; returns the new recovery
    codes (show them once). A wrong code raises :class:`CodeRefused`."""
    found = _locked(user)
    if found is None or found.confirmed_at is not None:
        raise Conflict("There is no enrolment to confirm; start again.")
    _accept_totp(found, code)
    found.confirmed_at = utcnow()
    codes = _new_recovery_codes(found)
    record_auth_event("two_factor_enrolled", user)
    return codes


def renew_recovery_codes(user: User, code: str) -> list[str]:
    """Replace the recovery codes (the old ones stop working) after a current ``code`` from the app;
    returns the new ones (show them once)."""
    found = _confirmed(user)
    _accept_totp(found, code)
    codes = _new_recovery_codes(found)
    record_auth_event("two_factor_codes_renewed", user)
    return codes


def disable(user: User, code: str) -> None:
    """Turn two-factor off with a current code or a recovery code; refused (403) when the policy
    requires it for the user's role."""
    if is_required(user):
        raise Forbidden("Your role must sign in with two factors (CAIRN_REQUIRE_2FA_FOR); it cannot be turned off.")
    verify(user, code)
    _remove(user)
    record_auth_event("two_factor_disabled", user)


def reset(user: User, actor: str) -> bool:
    """An admin's reset (the user lost their phone): enrolment and recovery codes removed, recorded
    in the sign-in audit with ``actor``; the user enrols again at their next sign-in if the policy
    requires it. False when there was nothing to reset."""
    if enrolment(user) is None:
        return False
    _remove(user)
    record_auth_event("two_factor_reset", user, reason=f"by {actor}")
    return True


# Checking a code ---------------------------------------------------------------------------------


def verify(user: User, code: str) -> str:
    """Check the second factor of ``user``: a current code from the app, or an unused recovery code
    (then used up). Returns which (``"code"`` or ``"recovery code"``); raises :class:`CodeRefused`."""
    found = _confirmed(user)
    typed = "".join((code or "").split())[:64]
    if typed.isascii() and typed.isdigit() and len(typed) == CODE_DIGITS:
        _accept_totp(found, typed)
        return "code"
    normalized = typed.replace("-", "").lower()
    if len(normalized) != 16:
        raise CodeRefused("malformed code", "Type the 6 digits from your app, or one of your recovery codes.")
    used = db.session.scalar(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash(normalized),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    if used is None:
        raise CodeRefused("wrong recovery code")
    used.used_at = utcnow()
    record_auth_event("two_factor_recovery_used", user, reason=f"{recovery_codes_left(user)} left")
    return "recovery code"


def _accept_totp(found: TwoFactor, code: str) -> None:
    typed = "".join((code or "").split())
    if not (typed.isascii() and typed.isdigit() and len(typed) == CODE_DIGITS):
        raise CodeRefused("malformed code", "Type the 6 digits your app shows.")
    try:
        secret = _decrypt(found.secret_encrypted)
    except ValueError:
        log.error("the two-factor secret of user %s cannot be decrypted (was the key changed?)", found.user_id)
        raise CodeRefused(
            "secret unreadable", "Your two-factor setup cannot be read; ask an admin to reset it."
        ) from None
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS)
    now = totp.timecode(time.time())
    matched = next(
        (
            step
            for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1)
            if hmac.compare_digest(totp.generate_otp(step), typed)
        ),
        None,
    )
    if matched is None:
        raise CodeRefused("wrong code")
    if found.last_used_step is not None and matched <= found.last_used_step:
        raise CodeRefused("replayed code", "That code was used already; wait for the next one.")
    found.last_used_step = matched
    db.session.flush()


# Rows ---------------------------------------------------------------------------------------------


def _locked(user: User) -> TwoFactor | None:
    return db.session.scalar(select(TwoFactor).where(TwoFactor.user_id == user.id).with_for_update())


def _confirmed(user: User) -> TwoFactor:
    found = _locked(user) if applies_to(user) else None
    if found is None or found.confirmed_at is None:
        raise Conflict("Two-factor sign-in is not on for this account.")
    return found


def _new_recovery_codes(found: TwoFactor) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == found.user_id))
    codes = [base64.b32encode(secrets.token_bytes(10)).decode().lower() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=found.user_id, code_hash=_hash(code)) for code in codes)
    found.recovery_codes_made_at = utcnow()
    db.session.flush()
    return ["-".join(code[i : i + 4] for i in range(0, 16, 4)) for code in codes]


def _remove(user: User) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    found = enrolment(user)
    if found is not None:
        db.session.delete(found)  # through the ORM: the change log records who removed it
    db.session.flush()


def _hash(normalized_code: str) -> str:
    return hashlib.sha256(normalized_code.encode()).hexdigest()


# Encryption at rest -------------------------------------------------------------------------------


def _key_material() -> str:
    return current_app.config.get("CAIRN_TWO_FACTOR_KEY") or current_app.config["SECRET_KEY"]


def _encrypt(secret: str) -> str:
    return crypto.encrypt_secret(secret, _key_material(), purpose="two-factor-secrets")


def _decrypt(token: str) -> str:
    return crypto.decrypt_secret(token, _key_material(), purpose="two-factor-secrets")
