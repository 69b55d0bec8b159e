"""Administration: users, teams, webhooks, the mail intake, relationship types, the change log.

Admins only. Every write goes through the service the API calls (cairn.auth.services,
integrations.webhooks.services, integrations.email.intake, relations.services), so the rules are the
API's: the last active admin cannot be demoted or deactivated, a webhook's target is vetted, only
failed or ignored mail is reprocessed. Secrets (a generated password, a webhook's secret) are shown
once, in the answer to the form that made them, and never again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from cairn.audit import services as audit
from cairn.auth import roles, two_factor
from cairn.auth import services as auth
from cairn.auth.models import Team, User
from cairn.auth.schemas import TeamSchema, TeamUpdateSchema, UserSchema
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db, get_or_404
from cairn.errors import DomainError, Invalid
from integrations.email import intake
from integrations.email.models import INBOUND_STATUSES, OUTBOUND_STATUSES, InboundEmail, OutboundEmail
from integrations.webhooks import services as webhooks
from integrations.webhooks.models import DELIVERY_STATUSES, Webhook, WebhookDelivery
from integrations.webhooks.schemas import WebhookWriteSchema
from relations import services as relations
from relations.types import IMPACT_KINDS
from web.blueprint import bp
from web.forms import field_errors, form_int, keep_errors, load, present

PER_PAGE = 50
MAX_PAGE = 10_000
ROLE_LABELS = {
    roles.ADMIN: _l("Admin"),
    roles.AGENT: _l("Agent (technician)"),
    roles.CHANGE_MANAGER: _l("Change manager"),
    roles.REQUESTER: _l("Requester"),
    roles.INTEGRATION: _l("Integration"),
    roles.AUDITOR: _l("Auditor (read-only)"),
    roles.ASSET_MANAGER: _l("Asset manager"),
}
IMPACT_LABELS = {
    "source_depends_on_target": _l("The source depends on the target"),
    "target_depends_on_source": _l("The target depends on the source"),
    "none": _l("No impact (recorded only)"),
}
ACTIONS = ("create", "update", "delete", "transition", "comment")


def _render(template: str, status: int = 200, **context):
    return render_template(template, errors=field_errors(), role_labels=ROLE_LABELS, **context), status


def _crumbs(*items):
    return [(_("Admin"), url_for("web.admin")), *items]


def _page_number() -> int:
    return min(max(1, form_int(request.args.get("page")) or 1), MAX_PAGE)


def _paged(stmt, number: int) -> tuple[list, bool]:
    """One page of ``stmt`` and whether there is a next one."""
    rows = list(db.session.scalars(stmt.limit(PER_PAGE + 1).offset((number - 1) * PER_PAGE)))
    return rows[:PER_PAGE], len(rows) > PER_PAGE


def _choice(name: str, allowed) -> str:
    value = (request.args.get(name) or "").strip()
    return value if value in allowed else ""


def _failed(error: DomainError) -> None:
    db.session.rollback()
    keep_errors(error)


# ---------------------------------------------------------------------------------------------
# The index


@bp.get("/admin")
@page(roles.ADMIN)
def admin():
    def count(stmt):
        return db.session.scalar(select(func.count()).select_from(stmt.subquery()))

    figures = {
        "users": count(select(User.id).where(User.active.is_(True))),
        "inactive": count(select(User.id).where(User.active.is_(False))),
        "teams": count(select(Team.id)),
        "webhooks": count(select(Webhook.id)),
        "webhooks_off": count(select(Webhook.id).where(Webhook.active.is_(False))),
        "mail_failed": count(select(InboundEmail.id).where(InboundEmail.status == "failed")),
        "mail_queued": count(select(InboundEmail.id).where(InboundEmail.status == "queued")),
        "types": len(relations.relationship_types()),
    }
    return _render("admin/index.html", figures=figures, breadcrumbs=[(_("Admin"), None)])


# ---------------------------------------------------------------------------------------------
# Users


def _users_page(status: int = 200, new_user=None, new_password=None, form=None):
    q = (request.args.get("q") or "").strip()[:200]
    role = _choice("role", roles.ALL_ROLES)
    number = _page_number()
    stmt = select(User).order_by(User.email, User.id)
    if role:
        stmt = stmt.where(User.role == role)
    if q:
        stmt = stmt.where(or_(*(func.lower(c).contains(q.lower(), autoescape=True) for c in (User.email, User.name))))
    users, more = _paged(stmt, number)
    return _render(
        "admin/users.html",
        status,
        users=users,
        more=more,
        page_number=number,
        q=q,
        role=role,
        roles=roles.ALL_ROLES,
        new_user=new_user,
        new_password=new_password,
        form=form or {},
        breadcrumbs=_crumbs((_("Users"), None)),
    )


@bp.get("/admin/users")
@page(roles.ADMIN)
def admin_users():
    return _users_page()


@bp.post("/admin/users")
@page(roles.ADMIN)
def admin_user_create():
    form = request.form
    typed = form.get("password") or ""
    try:
        data = load(UserSchema(), present(form, "email", "name", "role", "password"))
        user = auth.create_user(data["email"], data["role"], data.get("name", ""))
        password = auth.reset_password(user, data.get("password"))
    except DomainError as error:
        _failed(error)
        kept = {k: (form.get(k) or "")[:254] for k in ("email", "name", "role")}
        return _users_page(error.status, form=kept)
    flash(_("%(email)s can sign in now.", email=user.email), "success")
    # a password the admin typed is not shown back; a generated one is shown this once
    return _users_page(201, new_user=user, new_password=None if typed else password)


def _user_page(user: User, status: int = 200, new_password: str | None = None):
    teams = list(db.session.scalars(select(Team).order_by(Team.name, Team.id)))
    return _render(
        "admin/user.html",
        status,
        user=user,
        teams=teams,
        member_of={t.id for t in user.teams},
        roles=roles.ALL_ROLES,
        new_password=new_password,
        two_factor_on=two_factor.is_enabled(user),
        two_factor_applies=two_factor.applies_to(user),  # a directory's users: their directory's business
        breadcrumbs=_crumbs((_("Users"), url_for("web.admin_users")), (user.email, None)),
    )


@bp.get("/admin/users/<int:user_id>")
@page(roles.ADMIN)
def admin_user(user_id: int):
    return _user_page(get_or_404(User, user_id))


def _update_user(user_id: int, data: dict, done: str):
    user = get_or_404(User, user_id, for_update=True)
    try:
        auth.update_user(user, data, actor=g.user)
    except DomainError as error:
        _failed(error)
        return _user_page(get_or_404(User, user_id), error.status)
    flash(done % {"email": user.email}, "success")
    return redirect(url_for("web.admin_user", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/role")
@page(roles.ADMIN)
def admin_user_role(user_id: int):
    role = (request.form.get("role") or "").strip()[:40]
    return _update_user(user_id, {"role": role}, _("%(email)s has a new role."))


@bp.post("/admin/users/<int:user_id>/active")
@page(roles.ADMIN)
def admin_user_active(user_id: int):
    active = request.form.get("active") == "1"
    done = _("%(email)s can sign in again.") if active else _("%(email)s is deactivated: signed out, tokens refused.")
    return _update_user(user_id, {"active": active}, done)


@bp.post("/admin/users/<int:user_id>/teams")
@page(roles.ADMIN)
def admin_user_teams(user_id: int):
    user = get_or_404(User, user_id, for_update=True)
    wanted = {form_int(v) for v in request.form.getlist("team_id")[:1000]} - {None}
    teams = list(db.session.scalars(select(Team).order_by(Team.id)))
    unknown = wanted - {t.id for t in teams}
    try:
        if unknown:
            raise Invalid(_("There is no such team."), errors={"team_id": [_("Choose from the list.")]})
        for team in teams:
            member_ids = [m.id for m in team.members]
            if team.id in wanted and user.id not in member_ids:
                auth.update_team(team, {"member_ids": [*member_ids, user.id]})
            elif team.id not in wanted and user.id in member_ids:
                auth.update_team(team, {"member_ids": [i for i in member_ids if i != user.id]})
    except DomainError as error:
        _failed(error)
        return _user_page(get_or_404(User, user_id), error.status)
    flash(_("The teams of %(email)s are saved.", email=user.email), "success")
    return redirect(url_for("web.admin_user", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/password")
@page(roles.ADMIN)
def admin_user_password(user_id: int):
    user = get_or_404(User, user_id, for_update=True)
    generate = request.form.get("how") == "generate"
    typed = "" if generate else (request.form.get("password") or "")
    try:
        if not generate and not typed:
            raise Invalid(_("Type the new password, or generate one."), errors={"password": [_("Required.")]})
        if len(typed) > auth.MAX_PASSWORD_LENGTH:
            typed = typed[: auth.MAX_PASSWORD_LENGTH + 1]  # refused by the rules, not hashed at length
        password = auth.reset_password(user, typed or None)
    except DomainError as error:
        _failed(error)
        return _user_page(get_or_404(User, user_id), error.status)
    flash(_("The password of %(email)s is reset; their browser sessions are signed out.", email=user.email), "success")
    return _user_page(user, new_password=password if generate else None)


@bp.post("/admin/users/<int:user_id>/two-factor/reset")
@page(roles.ADMIN)
def admin_user_two_factor_reset(user_id: int):
    user = get_or_404(User, user_id, for_update=True)
    if two_factor.reset(user, actor=g.user.email):
        flash(_("The two-factor sign-in of %(email)s is reset; they set it up again.", email=user.email), "success")
    else:
        flash(_("%(email)s has no two-factor sign-in to reset.", email=user.email), "info")
    return redirect(url_for("web.admin_user", user_id=user.id))


# ---------------------------------------------------------------------------------------------
# Teams


def _teams_page(status: int = 200, form=None):
    q = (request.args.get("q") or "").strip()[:200]
    number = _page_number()
    stmt = select(Team).order_by(Team.name, Team.id)
    if q:
        stmt = stmt.where(func.lower(Team.name).contains(q.lower(), autoescape=True))
    teams, more = _paged(stmt, number)
    return _render(
        "admin/teams.html",
        status,
        teams=teams,
        more=more,
        page_number=number,
        q=q,
        form=form or {},
        breadcrumbs=_crumbs((_("Teams"), None)),
    )


@bp.get("/admin/teams")
@page(roles.ADMIN)
def admin_teams():
    return _teams_page()


@bp.post("/admin/teams")
@page(roles.ADMIN)
def admin_team_create():
    form = request.form
    try:
        data = load(TeamSchema(), present(form, "name", "email", "description"))
        team = auth.create_team(data["name"], data.get("email"), data.get("description", ""))
    except DomainError as error:
        _failed(error)
        return _teams_page(error.status, form={k: (form.get(k) or "")[:2000] for k in ("name", "email", "description")})
    flash(_("Team %(name)s is created; add its members.", name=team.name), "success")
    return redirect(url_for("web.admin_team", team_id=team.id))


def _team_page(team: Team, status: int = 200, form=None):
    member_ids = {m.id for m in team.members}
    candidates = [
        u
        for u in db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.email).limit(2000))
        if u.id not in member_ids
    ]
    return _render(
        "admin/team.html",
        status,
        team=team,
        candidates=candidates,
        form=form or {"name": team.name, "email": team.email or "", "description": team.description},
        breadcrumbs=_crumbs((_("Teams"), url_for("web.admin_teams")), (team.name, None)),
    )


@bp.get("/admin/teams/<int:team_id>")
@page(roles.ADMIN)
def admin_team(team_id: int):
    return _team_page(get_or_404(Team, team_id))


@bp.post("/admin/teams/<int:team_id>")
@page(roles.ADMIN)
def admin_team_update(team_id: int):
    team = get_or_404(Team, team_id, for_update=True)
    form = request.form
    data = {k: form.get(k, "") for k in ("name", "email", "description") if k in form}
    if "email" in data and not data["email"].strip():
        data["email"] = None
    try:
        auth.update_team(team, load(TeamUpdateSchema(), data))
    except DomainError as error:
        _failed(error)
        kept = {k: (form.get(k) or "")[:2000] for k in ("name", "email", "description")}
        return _team_page(get_or_404(Team, team_id), error.status, form=kept)
    flash(_("Team %(name)s is saved.", name=team.name), "success")
    return redirect(url_for("web.admin_team", team_id=team.id))


@bp.post("/admin/teams/<int:team_id>/members")
@page(roles.ADMIN)
def admin_team_members(team_id: int):
    team = get_or_404(Team, team_id, for_update=True)
    member_ids = [m.id for m in team.members]
    add, remove = form_int(request.form.get("add")), form_int(request.form.get("remove"))
    try:
        if add is None and remove is None:
            raise Invalid(_("Choose a person."), errors={"add": [_("Required.")]})
        if add is not None and add not in member_ids:
            member_ids.append(add)
        if remove is not None:
            member_ids = [i for i in member_ids if i != remove]
        auth.update_team(team, {"member_ids": member_ids})
    except DomainError as error:
        _failed(error)
        return _team_page(get_or_404(Team, team_id), error.status)
    flash(_("The members of %(name)s are saved.", name=team.name), "success")
    return redirect(url_for("web.admin_team", team_id=team.id))


# ---------------------------------------------------------------------------------------------
# Webhooks


def _webhooks_page(status: int = 200, form=None):
    hooks = list(db.session.scalars(webhooks.list_webhooks().limit(500)))
    return _render(
        "admin/webhooks.html",
        status,
        hooks=hooks,
        events=webhooks.EVENT_NAMES,
        form=form or {"events": []},
        breadcrumbs=_crumbs((_("Webhooks"), None)),
    )


@bp.get("/admin/webhooks")
@page(roles.ADMIN)
def admin_webhooks():
    return _webhooks_page()


@bp.post("/admin/webhooks")
@page(roles.ADMIN)
def admin_webhook_create():
    form = request.form
    events = [e[:40] for e in form.getlist("events")[:40]]
    data = present(form, "name", "url", "secret")
    data["events"] = events
    try:
        hook, secret = webhooks.create_webhook(load(WebhookWriteSchema(), data))
    except DomainError as error:
        _failed(error)
        kept = {k: (form.get(k) or "")[:2000] for k in ("name", "url")}
        return _webhooks_page(error.status, form={**kept, "events": events})
    flash(_("The webhook is created; changes from now on are delivered to it."), "success")
    # the secret is in this answer only (it is kept encrypted, never shown again)
    return _webhook_page(hook, 201, new_secret=secret if not form.get("secret") else None)


def _webhook_page(hook: Webhook, status: int = 200, new_secret: str | None = None):
    shown = _choice("status", DELIVERY_STATUSES)
    number = _page_number()
    deliveries, more = _paged(webhooks.deliveries_of(hook, shown or None), number)
    counts = dict(
        db.session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.webhook_id == hook.id)
            .group_by(WebhookDelivery.status)
        ).all()
    )
    return _render(
        "admin/webhook.html",
        status,
        hook=hook,
        deliveries=deliveries,
        more=more,
        page_number=number,
        shown=shown,
        statuses=DELIVERY_STATUSES,
        status_counts=counts,
        new_secret=new_secret,
        breadcrumbs=_crumbs((_("Webhooks"), url_for("web.admin_webhooks")), (hook.name or hook.url, None)),
    )


@bp.get("/admin/webhooks/<int:webhook_id>")
@page(roles.ADMIN)
def admin_webhook(webhook_id: int):
    return _webhook_page(webhooks.get_webhook(webhook_id))


@bp.post("/admin/webhooks/<int:webhook_id>/active")
@page(roles.ADMIN)
def admin_webhook_active(webhook_id: int):
    hook = webhooks.get_webhook(webhook_id, for_update=True)
    active = request.form.get("active") == "1"
    webhooks.update_webhook(hook, {"active": active})
    flash(_("The webhook is enabled.") if active else _("The webhook is disabled: nothing is sent."), "success")
    return redirect(url_for("web.admin_webhook", webhook_id=hook.id))


@bp.post("/admin/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@page(roles.ADMIN)
def admin_webhook_redeliver(webhook_id: int, delivery_id: int):
    hook = webhooks.get_webhook(webhook_id)
    delivery = webhooks.get_delivery(hook, delivery_id)
    try:
        webhooks.redeliver(hook, delivery)
    except DomainError as error:
        _failed(error)
        return _webhook_page(webhooks.get_webhook(webhook_id), error.status)
    flash(_("Delivery %(id)d is sent again.", id=delivery.id), "success")
    return redirect(url_for("web.admin_webhook", webhook_id=hook.id))


# ---------------------------------------------------------------------------------------------
# The mail intake


def _mail_counts(model, statuses) -> dict[str, int]:
    found = dict(db.session.execute(select(model.status, func.count()).group_by(model.status)).all())
    return {s: found.get(s, 0) for s in statuses}


def _mail_page(status: int = 200):
    shown = _choice("status", INBOUND_STATUSES)
    number = _page_number()
    stmt = select(InboundEmail).order_by(InboundEmail.id.desc())
    if shown:
        stmt = stmt.where(InboundEmail.status == shown)
    messages, more = _paged(stmt, number)
    return _render(
        "admin/mail.html",
        status,
        messages=messages,
        more=more,
        page_number=number,
        shown=shown,
        status_counts=_mail_counts(InboundEmail, INBOUND_STATUSES),
        breadcrumbs=_crumbs((_("Mail intake"), None)),
    )


@bp.get("/admin/mail")
@page(roles.ADMIN)
def admin_mail():
    return _mail_page()


@bp.get("/admin/mail/<int:email_id>/raw")
@page(roles.ADMIN)
def admin_mail_raw(email_id: int):
    row = intake.get_inbound(email_id)
    raw = db.session.scalar(select(InboundEmail.raw).where(InboundEmail.id == row.id)) or b""
    # an attachment, never rendered by the browser: the message may hold anybody's HTML
    return Response(
        raw,
        mimetype="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="mail-{row.id}.eml"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


@bp.post("/admin/mail/<int:email_id>/reprocess")
@page(roles.ADMIN)
def admin_mail_reprocess(email_id: int):
    try:
        row = intake.reprocess(email_id)
    except DomainError as error:
        _failed(error)
        return _mail_page(error.status)
    flash(_("Mail %(id)d is queued to be processed again.", id=row.id), "success")
    return redirect(url_for("web.admin_mail", status=request.args.get("status") or None))


@bp.get("/admin/mail/outbound")
@page(roles.ADMIN)
def admin_mail_outbound():
    shown = _choice("status", OUTBOUND_STATUSES)
    number = _page_number()
    stmt = select(OutboundEmail).order_by(OutboundEmail.id.desc())
    if shown:
        stmt = stmt.where(OutboundEmail.status == shown)
    messages, more = _paged(stmt, number)
    return _render(
        "admin/outbound.html",
        messages=messages,
        more=more,
        page_number=number,
        shown=shown,
        status_counts=_mail_counts(OutboundEmail, OUTBOUND_STATUSES),
        breadcrumbs=_crumbs((_("Mail intake"), url_for("web.admin_mail")), (_("Notifications"), None)),
    )


# ---------------------------------------------------------------------------------------------
# Relationship types


def _types_page(status: int = 200, form=None):
    from cmdb.classes import REGISTRY

    return _render(
        "admin/relationship_types.html",
        status,
        types=relations.relationship_types(),
        impact_kinds=IMPACT_KINDS,
        impact_labels=IMPACT_LABELS,
        classes=sorted(REGISTRY),
        form=form or {"source_classes": [], "target_classes": []},
        breadcrumbs=_crumbs((_("Relationship types"), None)),
    )


@bp.get("/admin/relationship-types")
@page(roles.ADMIN)
def admin_relationship_types():
    return _types_page()


@bp.post("/admin/relationship-types")
@page(roles.ADMIN)
def admin_relationship_type_create():
    form = request.form
    data = {k: (form.get(k) or "")[:1001] for k in ("name", "label", "reverse_label", "impact", "description")}
    for key in ("source_classes", "target_classes"):
        data[key] = [c[:40] for c in form.getlist(key)[:100]]
    try:
        rtype = relations.create_relationship_type(data)
    except DomainError as error:
        _failed(error)
        return _types_page(error.status, form=data)
    flash(_("The relationship type %(name)s is added.", name=rtype.name), "success")
    return redirect(url_for("web.admin_relationship_types"))


# ---------------------------------------------------------------------------------------------
# The change log


def _day(text: str | None, field: str, errors: dict) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
        if not 1900 <= day.year <= 9000:  # and no overflow at the ends of the calendar
            raise ValueError(text)
        return day
    except ValueError:
        errors[field] = [_("A date such as 2026-01-31.")]
        return None


def _utc(day: date, zone: str) -> datetime:
    """Midnight of ``day`` in the user's time zone, as the naive UTC the database keeps."""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = UTC
    return datetime.combine(day, time(), tz).astimezone(UTC).replace(tzinfo=None)


@bp.get("/admin/changelog")
@page(roles.ADMIN)
def admin_changelog():
    args = request.args
    errors: dict[str, list[str]] = {}
    form = {
        "object_type": (args.get("object_type") or "").strip()[:40],
        "object_id": (args.get("object_id") or "").strip()[:20],
        "action": _choice("action", ACTIONS),
        "actor": (args.get("actor") or "").strip()[:255],
        "since": (args.get("since") or "").strip()[:10],
        "until": (args.get("until") or "").strip()[:10],
    }
    object_id = form_int(form["object_id"])
    if form["object_id"] and (object_id is None or not 0 < object_id <= MAX_ID):
        errors["object_id"] = [_("A whole number.")]
    since, until = _day(form["since"], "since", errors), _day(form["until"], "until", errors)
    if since and until and until < since:
        errors["until"] = [_("The end lies before the start.")]
    before = form_int(args.get("before"))
    rows, next_before = [], None
    if not errors:
        zone = g.user.timezone or "UTC"
        rows, next_before = audit.browse(
            before if before is not None and 0 < before <= MAX_ID else None,
            PER_PAGE,
            object_types=[form["object_type"]] if form["object_type"] else None,
            object_id=object_id,
            actions=[form["action"]] if form["action"] else None,
            actor=form["actor"] or None,
            since=_utc(since, zone) if since else None,
            until=_utc(until + timedelta(days=1), zone) if until else None,
        )
    else:
        flash(_("Some filters are invalid."), "error")
    kept = {k: v for k, v in form.items() if v}
    return render_template(
        "admin/changelog.html",
        rows=rows,
        form=form,
        errors=errors,
        object_types=audit.object_types(),
        actions=ACTIONS,
        next_url=url_for("web.admin_changelog", before=next_before, **kept) if next_before else None,
        first_url=url_for("web.admin_changelog", **kept) if before else None,
        breadcrumbs=_crumbs((_("Change log"), None)),
    ), (422 if errors else 200)
