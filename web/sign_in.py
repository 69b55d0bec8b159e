"""Signing in and out with e-mail and password (the kernel's argon2 hashes), throttled."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from cairn.auth import roles
from cairn.auth.guard import PUBLIC
from cairn.auth.services import find_user, record_auth_event, verify_password
from cairn.auth.sessions import page
from cairn.config import setting
from cairn.uow import checkpoint
from web.blueprint import bp
from web.shell import home_for, limiter


def _failed(response) -> bool:
    # Only failed attempts count against the limits: a successful sign-in redirects.
    return response.status_code != 302


def _account_key() -> str:
    return "sign-in:" + (request.form.get("email") or "").strip().lower()[:254]


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (never //host or a scheme) may be where sign-in returns to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _record_failure(email: str, user, reason: str) -> None:
    """The failed attempt in the sign-in audit, committed now: the answer is an error, and the
    unit of work rolls an error's writes back."""
    record_auth_event("sign_in_failed", user, email=email, reason=reason)
    checkpoint()


def _throttled(_limit) -> None:
    """Flask-Limiter's on_breach: the refused attempt in the sign-in audit."""
    record_auth_event("sign_in_throttled", email=(request.form.get("email") or "").strip(), reason="too many failures")
    checkpoint()


@bp.route("/login", methods=["GET", "POST"])
@page(PUBLIC)
@limiter.limit(
    lambda: setting("CAIRN_SIGN_IN_LIMIT_PER_ACCOUNT", "5 per minute;20 per hour"),
    methods=["POST"],
    key_func=_account_key,
    deduct_when=_failed,
    error_message="Too many failed sign-ins for this account; wait a minute and try again.",
    on_breach=_throttled,
)
@limiter.limit(
    lambda: setting("CAIRN_SIGN_IN_LIMIT_PER_ADDRESS", "30 per minute"),
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many failed sign-ins from your address; wait a minute and try again.",
    on_breach=_throttled,
)
def sign_in():
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(target or home_for(g.user))
        return render_template("sign_in/form.html", next=target, email="")
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    user = find_user(email) if email and len(email) <= 254 and len(password) <= 1024 else None
    reason = (
        "unknown e-mail" if user is None
        else "deactivated" if not user.active
        else "wrong password" if not verify_password(user, password)
        else "API-only account" if user.role == roles.INTEGRATION
        else ""
    )  # fmt: skip
    if reason:
        _record_failure(email, user, reason)
        if reason == "API-only account":
            flash(_("This account is for the API only; it cannot sign in to the desk."), "error")
            return render_template("sign_in/form.html", next=target, email=email), 403
        flash(_("The e-mail or the password is wrong."), "error")
        return render_template("sign_in/form.html", next=target, email=email), 401
    session.clear()  # a fresh session on sign-in: no fixation of an earlier one
    session.permanent = True
    login_user(user)
    record_auth_event("sign_in", user)
    return redirect(target or home_for(user))


@bp.route("/logout", methods=["POST"])
@page(*roles.ALL_ROLES)
def sign_out():
    record_auth_event("sign_out", g.user)
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("web.sign_in"))
