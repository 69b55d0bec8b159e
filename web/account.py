"""My account: password, language and time zone, my API tokens."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user

from cairn.auth import roles
from cairn.auth.scopes import SCOPES
from cairn.auth.services import change_password, create_token, revoke_token, set_preferences, tokens_of
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from web.blueprint import bp
from web.forms import field_errors, form_int, keep_errors
from web.shell import available_locales, locale_names

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
            locales=locale_names(),
            timezones=sorted(available_timezones()),
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
