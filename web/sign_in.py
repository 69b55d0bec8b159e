"""Signing in and out with e-mail and password (the kernel's argon2 hashes), throttled; the
second step for accounts with two-factor sign-in, and the policy that sends the roles
``CAIRN_REQUIRE_2FA_FOR`` names to enrolment before any other page.

Between the two steps the browser is not signed in: its session cookie (signed) holds only a
pending state naming the user with the stamp a session of theirs carries (a password change or a
deactivation voids it), valid for :data:`PENDING_SECONDS`; no page accepts it, and only a correct
code turns it into a session."""

from __future__ import annotations

import hmac
import time

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from cairn.auth import roles, two_factor
from cairn.auth.guard import PUBLIC
from cairn.auth.models import User
from cairn.auth.services import DIRECTORY_UNAVAILABLE, record_auth_event, sign_in_with_password
from cairn.auth.sessions import page, session_id
from cairn.config import setting
from cairn.db import db
from cairn.errors import DomainError
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
    user, reason = sign_in_with_password(email, password)  # local hash, or a bind to the directory
    if not reason and user.role == roles.INTEGRATION:
        reason = "API-only account"
    if reason:
        _record_failure(email, user, reason)
        if reason == "API-only account":
            flash(_("This account is for the API only; it cannot sign in to the desk."), "error")
            return render_template("sign_in/form.html", next=target, email=email), 403
        if reason == DIRECTORY_UNAVAILABLE:
            flash(_("The directory cannot be reached, so your password cannot be checked; try again soon."), "error")
            return render_template("sign_in/form.html", next=target, email=email), 503
        flash(_("The e-mail or the password is wrong."), "error")
        return render_template("sign_in/form.html", next=target, email=email), 401
    if two_factor.is_enabled(user):
        return _ask_for_code(user, target)
    return _signed_in(user, target)


def _signed_in(user, target: str | None, how: str = ""):
    session.clear()  # a fresh session on sign-in: no fixation of an earlier one
    session.permanent = True
    login_user(user)
    record_auth_event("sign_in", user, reason=how)
    return redirect(target or home_for(user))


@bp.route("/logout", methods=["POST"])
@page(*roles.ALL_ROLES)
def sign_out():
    record_auth_event("sign_out", g.user)
    provider_sign_out = _oidc_sign_out_url(g.user)  # None unless signed in through OpenID Connect
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    if provider_sign_out:
        # a page of this site, which sends the browser on (the Refresh header, else its link)
        body = render_template("sign_in/oidc_sign_out.html", url=provider_sign_out)
        return body, 200, {"Refresh": f"0; url={provider_sign_out}"}
    return redirect(url_for("web.sign_in"))


# The second step ---------------------------------------------------------------------------------

PENDING_KEY = "cairn_two_factor_pending"
PENDING_SECONDS = 300


def _ask_for_code(user, target: str | None):
    """The password was right: remember who is half-way (not signed in) and ask for the code."""
    session.clear()
    session.permanent = False  # a browser-session cookie: closing the browser drops the pending state
    session[PENDING_KEY] = {
        "user": session_id(user),
        "email": user.email,
        "until": int(time.time()) + PENDING_SECONDS,
        "next": target,
    }
    return redirect(url_for("web.sign_in_code"))


def _pending_user():
    """The user half-way through signing in on this browser, or None (none, expired, or their
    password or status changed since the first step)."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("until"), int) or pending["until"] < time.time():
        return None
    value = str(pending.get("user") or "")
    user_id, _sep, _stamp = value.partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() and len(user_id) < 12 else None
    if user is None or not user.active or not hmac.compare_digest(session_id(user), value):
        return None
    return user


def _code_key() -> str:
    """Wrong codes count per account, whether typed at sign-in or on the account page."""
    user = g.get("user")
    pending = session.get(PENDING_KEY)
    email = user.email if user is not None else pending.get("email", "") if isinstance(pending, dict) else ""
    return "two-factor:" + str(email)[:254]


def _code_refused(response) -> bool:
    return response.status_code >= 400


def _code_throttled(_limit) -> None:
    record_auth_event("sign_in_throttled", email=_code_key().partition(":")[2], reason="too many wrong codes")
    checkpoint()


def code_limited(func):
    """Throttle a form that checks a two-factor code: wrong codes per account and per address, one
    count shared by the sign-in step and the account page (a stolen session cannot guess either)."""
    per_address = limiter.shared_limit(
        lambda: setting("CAIRN_SIGN_IN_LIMIT_PER_ADDRESS", "30 per minute"),
        scope="two-factor-address",
        methods=["POST"],
        deduct_when=_code_refused,
        error_message="Too many wrong codes from your address; wait a minute and try again.",
        on_breach=_code_throttled,
    )
    per_account = limiter.shared_limit(
        lambda: setting("CAIRN_SIGN_IN_LIMIT_PER_ACCOUNT", "5 per minute;20 per hour"),
        scope="two-factor-account",
        key_func=_code_key,
        methods=["POST"],
        deduct_when=_code_refused,
        error_message="Too many wrong codes for this account; wait a minute and try again.",
        on_breach=_code_throttled,
    )
    return per_account(per_address(func))


@bp.route("/login/code", methods=["GET", "POST"])
@page(PUBLIC)
@code_limited
def sign_in_code():
    if g.user is not None:
        return redirect(home_for(g.user))
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        flash(_("Your sign-in has expired; sign in again."), "error")
        return redirect(url_for("web.sign_in"))
    if request.method == "GET":
        return render_template("sign_in/code.html")
    pending = session[PENDING_KEY]
    try:
        how = two_factor.verify(user, request.form.get("code") or "")
    except DomainError as error:
        db.session.rollback()
        record_auth_event("two_factor_failed", user, reason=getattr(error, "reason", "refused"))
        checkpoint()
        flash(_("That code is not valid; try the current one, or a recovery code."), "error")
        return render_template("sign_in/code.html"), 401
    return _signed_in(user, _safe_next(pending.get("next")), how=f"with a {how}")


# The policy --------------------------------------------------------------------------------------

# What a user who must enrol may still open: the enrolment pages and signing out.
ENROLMENT_ENDPOINTS = frozenset(
    {
        "web.account_two_factor",
        "web.account_two_factor_start",
        "web.account_two_factor_confirm",
        "web.sign_out",
        "web.static",
    }
)


@bp.before_request
def _two_factor_policy():
    """A signed-in user whose role must use two-factor (``CAIRN_REQUIRE_2FA_FOR``) and has not
    enrolled yet opens nothing but the enrolment page. The API is not concerned (tokens)."""
    user = g.get("user")
    if user is None or request.endpoint in ENROLMENT_ENDPOINTS or not two_factor.must_enrol(user):
        return None
    target = url_for("web.account_two_factor")
    response = redirect(target)
    if request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = target
    return response


# OpenID Connect (cairn/directory/oidc.py) ------------------------------------------------------
#
# GET /login/oidc sends the browser to the provider (a link, not a form: the pages' CSP allows
# forms to post to this site only); the provider sends it back to /login/oidc/callback. Between the
# two the signed session holds the flow's state, nonce and PKCE verifier, for one use. Sign-out
# ends the provider's session too when it offers an end_session_endpoint: a page of ours sends
# the browser there (the sign-out form may not be redirected to another site, for the same CSP).

OIDC_PENDING_KEY = "cairn_oidc_pending"
OIDC_ID_TOKEN_KEY = "cairn_oidc_id_token"
OIDC_ID_TOKEN_MAX = 2500  # kept in the session cookie as the provider's sign-out hint, when it fits


@bp.app_context_processor
def _oidc_sign_in_label():
    def oidc_sign_in_label():
        from cairn.directory import oidc

        config = oidc.configured()
        return config.label if config is not None else None

    return {"oidc_sign_in_label": oidc_sign_in_label}


def _oidc_refused(status: int, reason: str, email: str = "", user=None):
    """The refusal in the sign-in audit (nothing else kept: what the flow wrote is rolled back),
    and a page that says what happened."""
    user_id = user.id if user is not None else None
    email = email or (user.email if user is not None else "")
    db.session.rollback()
    user = db.session.get(User, user_id) if user_id else None  # None when the flow had just made it
    _record_failure(email, user, f"oidc: {reason}")
    if status == 502:
        message = _("The sign-in provider cannot be reached or answered something unexpected; try again soon.")
    elif reason in ("no sign-in in progress", "wrong state", "sign-in expired"):
        message = _(
            "This sign-in answer was already used, has expired, or belongs to a sign-in started elsewhere. "
            "Start the sign-in again."
        )
    elif reason.startswith("code refused"):
        message = _("The sign-in provider refused the sign-in code (it may have been used already). Start again.")
    elif reason.startswith("provider said"):
        message = _("The sign-in provider did not sign you in.")
    elif reason == "deactivated":
        message = _("Your account is deactivated.")
    elif reason.startswith("no such user"):
        message = _("There is no Cairn account for you; ask an administrator to create one.")
    elif reason.startswith("e-mail of a"):
        message = _("A Cairn account with your e-mail signs in another way; sign in with it instead.")
    elif reason == "API-only account":
        message = _("This account is for the API only; it cannot sign in to the desk.")
    elif status == 401:
        message = _("The sign-in provider's answer could not be verified, so you are not signed in.")
    else:
        message = _("The sign-in could not be completed.")
    return render_template("sign_in/oidc_refused.html", message=message, status=status), status


@bp.route("/login/oidc")
@page(PUBLIC)
def sign_in_oidc():
    from cairn.directory import oidc

    config = oidc.configured()
    if config is None:  # not (or no longer) configured: the password form
        return redirect(url_for("web.sign_in"))
    target = _safe_next(request.args.get("next"))
    if g.user is not None:
        return redirect(target or home_for(g.user))
    redirect_uri = config.redirect_uri or url_for("web.sign_in_oidc_callback", _external=True)
    try:
        url, pending = oidc.begin(config, redirect_uri)
    except oidc.ProviderUnavailable as exc:
        current_app.logger.warning("OIDC provider unavailable: %s", exc)
        return _oidc_refused(502, "provider unavailable")
    pending["next"] = target
    session[OIDC_PENDING_KEY] = pending
    return redirect(url)


@bp.route("/login/oidc/callback")
@page(PUBLIC)
@limiter.limit(
    lambda: setting("CAIRN_SIGN_IN_LIMIT_PER_ADDRESS", "30 per minute"),
    deduct_when=_failed,
    error_message="Too many failed sign-ins from your address; wait a minute and try again.",
    on_breach=_throttled,
)
def sign_in_oidc_callback():
    from cairn.directory import oidc

    config = oidc.configured()
    if config is None:
        return redirect(url_for("web.sign_in"))
    pending = session.pop(OIDC_PENDING_KEY, None)  # one use, whatever happens next
    try:
        result = oidc.finish(config, pending, request.args.to_dict())
        user, reason = oidc.provision(config, result.claims)
    except oidc.SignInRefused as refused:
        return _oidc_refused(refused.status, refused.reason)
    except oidc.ProviderUnavailable as exc:
        current_app.logger.warning("OIDC provider unavailable: %s", exc)
        return _oidc_refused(502, "provider unavailable")
    email = str(result.claims.get("email") or "")[:254]
    if not reason and user.role == roles.INTEGRATION:
        reason = "API-only account"
    if reason:
        status = 401 if reason.startswith("no e-mail") or reason.startswith("e-mail not") else 403
        return _oidc_refused(status, reason, email, user)
    # The provider asked for whatever second factor it requires: no TOTP step here.
    response = _signed_in(user, _safe_next((pending or {}).get("next")), how="with OpenID Connect")
    if len(result.id_token) <= OIDC_ID_TOKEN_MAX:
        session[OIDC_ID_TOKEN_KEY] = result.id_token
    return response


def _oidc_sign_out_url(user) -> str | None:
    if user is None or user.source != "oidc":
        return None
    from cairn.directory import oidc

    config = oidc.configured()
    if config is None:
        return None
    back = config.post_logout_redirect_uri or url_for("web.sign_in", _external=True)
    return oidc.end_session_url(config, session.get(OIDC_ID_TOKEN_KEY), back)
