"""My account: password, language and time zone, my API tokens, two-factor sign-in."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user
from markupsafe import Markup

from cairn.auth import roles, two_factor
from cairn.auth.scopes import SCOPES
from cairn.auth.services import (
    change_password,
    create_token,
    record_auth_event,
    revoke_token,
    set_preferences,
    tokens_of,
)
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from cairn.uow import checkpoint
from cairn.zones import sorted_time_zones
from web.blueprint import bp
from web.forms import field_errors, form_int, keep_errors
from web.shell import available_locales, home_for, locale_names
from web.sign_in import code_limited

# API tokens are for people who script against the API; a requester has no use for one.
TOKEN_HOLDERS = tuple(r for r in roles.ALL_ROLES if r != roles.REQUESTER)
MAX_TOKEN_DAYS = 366


def _page(new_secret=None, status=200):
    user = g.user
    tokens = tokens_of(user) if user.role in TOKEN_HOLDERS else []
    return (
        render_template(
            "account/page.html",
            tokens=tokens,
            new_secret=new_secret,
            two_factor_applies=two_factor.applies_to(user),
            two_factor_enabled=two_factor.is_enabled(user),
            locales=locale_names(),
            timezones=sorted_time_zones(),
            errors=field_errors(),
            breadcrumbs=[(_("My account"), None)],
        ),
        status,
    )


@bp.get("/account")
@page(*roles.ALL_ROLES)
def account():
    return _page()


@bp.post("/account/password")
@page(*roles.ALL_ROLES)
def account_password():
    new = request.form.get("new_password") or ""
    if new != (request.form.get("confirm_password") or ""):
        flash(_("The two new passwords differ."), "error")
        return _page(status=422)
    try:
        change_password(g.user, request.form.get("current_password") or "", new)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _page(status=error.status)
    # this session stays signed in under the new stamp; every other one ends
    login_user(g.user)
    flash(_("Your password is changed; your other sessions are signed out."), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/preferences")
@page(*roles.ALL_ROLES)
def account_preferences():
    try:
        set_preferences(
            g.user, request.form.get("locale") or "", request.form.get("timezone") or "", available_locales()
        )
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _page(status=error.status)
    flash(_("Your settings are saved."), "success")
    return redirect(url_for("web.account"))


@bp.post("/account/tokens")
@page(*TOKEN_HOLDERS)
def account_token_create():
    name = (request.form.get("name") or "").strip()[:200]
    days_text = (request.form.get("expires_in_days") or "").strip()
    days = form_int(days_text)
    if not name or (days_text and (days is None or not 1 <= days <= MAX_TOKEN_DAYS)):
        flash(_("Give the token a name and a lifetime of 1 to %(max)d days.", max=MAX_TOKEN_DAYS), "error")
        return _page(status=422)
    scopes = [scope for scope in SCOPES if request.form.get(f"scope_{scope}")]
    _token, secret = create_token(g.user, name, days, scopes=scopes or None)
    return _page(new_secret=secret, status=201)


@bp.post("/account/tokens/<int:token_id>/revoke")
@page(*TOKEN_HOLDERS)
def account_token_revoke(token_id: int):
    token = next((t for t in tokens_of(g.user) if t.id == token_id), None)
    if token is None:
        from flask import abort

        abort(404)
    revoke_token(token)
    flash(_("The token %(prefix)s… is revoked.", prefix=token.prefix), "success")
    return redirect(url_for("web.account"))


# Two-factor sign-in ------------------------------------------------------------------------------


def _two_factor_page(recovery_codes=None, status=200):
    user = g.user
    secret = None if two_factor.is_enabled(user) else two_factor.pending_secret(user)
    qr = two_factor.qr_svg(two_factor.provisioning_uri(user, secret), _("QR code to scan")) if secret else None
    return (
        render_template(
            "account/two_factor.html",
            applies=two_factor.applies_to(user),
            enabled=two_factor.is_enabled(user),
            required=two_factor.is_required(user),
            enrolment=two_factor.enrolment(user),
            codes_left=two_factor.recovery_codes_left(user),
            secret=secret,
            qr=Markup(qr) if qr else None,  # drawn by segno from our own URI: no user text in it
            recovery_codes=recovery_codes,
            home=home_for(user),
            errors=field_errors(),
            breadcrumbs=[(_("My account"), url_for("web.account")), (_("Two-factor sign-in"), None)],
        ),
        status,
    )


def _refused(error: DomainError):
    """A refused code is recorded in the sign-in audit (after the rollback, committed now)."""
    db.session.rollback()
    if isinstance(error, two_factor.CodeRefused):
        record_auth_event("two_factor_failed", g.user, reason=error.reason)
        checkpoint()
    keep_errors(error)
    return _two_factor_page(status=error.status)


@bp.get("/account/two-factor")
@page(*roles.ALL_ROLES)
def account_two_factor():
    return _two_factor_page()


@bp.post("/account/two-factor/start")
@page(*roles.ALL_ROLES)
def account_two_factor_start():
    try:
        two_factor.begin_enrolment(g.user)
    except DomainError as error:
        return _refused(error)
    return redirect(url_for("web.account_two_factor"))


@bp.post("/account/two-factor/confirm")
@page(*roles.ALL_ROLES)
@code_limited
def account_two_factor_confirm():
    try:
        codes = two_factor.confirm_enrolment(g.user, request.form.get("code") or "")
    except DomainError as error:
        return _refused(error)
    flash(_("Two-factor sign-in is on. Keep your recovery codes somewhere safe."), "success")
    return _two_factor_page(recovery_codes=codes)


@bp.post("/account/two-factor/recovery-codes")
@page(*roles.ALL_ROLES)
@code_limited
def account_two_factor_codes():
    try:
        codes = two_factor.renew_recovery_codes(g.user, request.form.get("code") or "")
    except DomainError as error:
        return _refused(error)
    flash(_("New recovery codes; the old ones no longer work."), "success")
    return _two_factor_page(recovery_codes=codes)


@bp.post("/account/two-factor/disable")
@page(*roles.ALL_ROLES)
@code_limited
def account_two_factor_disable():
    try:
        two_factor.disable(g.user, request.form.get("code") or "")
    except DomainError as error:
        return _refused(error)
    flash(_("Two-factor sign-in is off."), "success")
    return redirect(url_for("web.account_two_factor"))
