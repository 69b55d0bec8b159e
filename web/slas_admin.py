"""Administration of service levels: business-hours calendars (weekly hours, time zone, closures,
iCalendar import), SLA and OLA policies, and escalation rules; list, create, edit, delete with
confirmation. Admins only; every write goes through tickets.slas.services, as the API's do, so an
edit that moves clocks queues the same durable recomputation (shown with its progress here)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from cairn.auth import roles
from cairn.auth.models import Team, User
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import Conflict, DomainError, Invalid
from cairn.zones import sorted_time_zones
from tickets import categories
from tickets.models import KINDS, Ticket, TicketCategory
from tickets.slas import ical, recompute, services
from tickets.slas.models import ESCALATION_TRIGGERS, BusinessCalendar, EscalationRule, SLAPolicy, SLARecompute
from tickets.slas.schemas import (
    CalendarSchema,
    CalendarUpdateSchema,
    EscalationRuleSchema,
    EscalationRuleUpdateSchema,
    SLAPolicySchema,
    SLAPolicyUpdateSchema,
)
from web.blueprint import bp
from web.forms import field_errors, flash_refusal, form_int, is_number, load

WEEKDAY_LABELS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
MAX_FORM_TEXT = 200_000


def _render(template: str, status: int = 200, **context):
    return render_template(template, errors=field_errors(), **context), status


def _crumbs(*items):
    return [(_("Admin"), url_for("web.admin")), (_("Service levels"), url_for("web.admin_slas")), *items]


def _flat(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested field errors ({"hours": {"mon": {0: [...]}}}) as {"hours.mon": [...]}: each shown next
    to the input it belongs to (a form field stands for a whole day, match, action)."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for flat_key, messages in _flat(value, name).items():
                out.setdefault(flat_key, []).extend(messages)
        return out
    messages = errors if isinstance(errors, list) else [errors]
    for message in messages:
        if isinstance(message, dict | list):
            for flat_key, more in _flat(message, prefix).items():
                out.setdefault(flat_key, []).extend(more)
        else:
            out.setdefault(prefix, []).append(str(message))
    return out


def _keep(error: DomainError, rename: dict[str, str] | None = None) -> None:
    """Roll back, say what was refused (the problem's title) and keep its field errors by input:
    the page shows them inline, as the API's RFC 9457 answer names them."""
    db.session.rollback()
    flash(error.detail, "error")
    flat = _flat(error.errors or {})
    errors: dict[str, list[str]] = {}
    for key, messages in flat.items():
        # the input a nested error belongs to: hours.mon.0.1 -> hours.mon, actions.0.notify -> actions.notify
        parts = [p for p in key.split(".") if not p.isdigit()]
        name = ".".join(parts[:2]) if parts and parts[0] in ("hours", "match", "actions") else parts[0] if parts else ""
        name = (rename or {}).get(name, name)
        errors.setdefault(name or "_schema", []).extend(messages)
    g.field_errors = errors


def _stale(model_version: int) -> None:
    sent = (request.form.get("version") or "").strip()
    if sent and sent != str(model_version):
        raise Conflict(_("Someone else saved this in the meantime: reload the page and make your change again."))


def _recompute_note(row: SLARecompute | None) -> None:
    if row is None:
        return
    flash(
        _(
            "The open tickets' clocks are being recomputed in the background (job %(id)s, %(status)s).",
            id=row.id,
            status=row.status,
        ),
        "info",
    )


# ---------------------------------------------------------------------------------------------
# Overview


@bp.get("/admin/slas")
@page(roles.ADMIN)
def admin_slas():
    cals = list(db.session.scalars(services.calendars().limit(500)))
    pols = list(db.session.scalars(services.policies().limit(500)))
    rules = list(db.session.scalars(services.escalation_rules().limit(500)))
    used = dict(
        db.session.execute(select(SLAPolicy.calendar_id, func.count()).group_by(SLAPolicy.calendar_id)).tuples().all()
    )
    jobs = list(db.session.scalars(recompute.recent().limit(10)))
    return _render(
        "admin/sla_admin.html",
        calendars=cals,
        policies=pols,
        rules=rules,
        used=used,
        jobs=jobs,
        names=_names(),
        breadcrumbs=[(_("Admin"), url_for("web.admin")), (_("Service levels"), None)],
    )


@bp.get("/admin/sla-recomputes/<int:recompute_id>")
@page(roles.ADMIN)
def admin_sla_recompute(recompute_id: int):
    """One recomputation's progress (htmx polls it while it runs)."""
    row = db.session.get(SLARecompute, recompute_id) or abort(404)
    return render_template("admin/sla_recompute.html", job=row, lead=recompute.leader(row))


def _names() -> dict[str, dict[int, str]]:
    """Labels for ids shown in lists and selects: teams, categories, calendars, users."""
    return {
        "team": dict(db.session.execute(select(Team.id, Team.name)).tuples().all()),
        "calendar": dict(db.session.execute(select(BusinessCalendar.id, BusinessCalendar.name)).tuples().all()),
        "category": {c.id: f"{c.kind}: {categories.path_of(c)}" for c in _categories()},
    }


def _categories() -> list[TicketCategory]:
    return list(db.session.scalars(select(TicketCategory).order_by(TicketCategory.kind, TicketCategory.id).limit(1000)))


# ---------------------------------------------------------------------------------------------
# Calendars


def _hours_text(intervals: list) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


def _closures_text(closures: list) -> str:
    return "\n".join(f"{c['start']} | {c.get('end') or ''} | {c['name']}".replace(" |  | ", " | | ") for c in closures)


def _calendar_form(form) -> tuple[dict, dict]:
    """(what the form shows again, the API's body). Hours per day: ``09:00-12:00, 13:00-17:00``
    (empty: closed); closures one per line: ``start | end | name`` (end may be left empty)."""
    shown = {"name": (form.get("name") or "").strip()[:200], "time_zone": (form.get("time_zone") or "").strip()[:64]}
    hours: dict[str, list] = {}
    for day in WEEKDAY_LABELS:
        text = (form.get(f"hours_{day}") or "").strip()[:500]
        shown[f"hours_{day}"] = text
        intervals = []
        for piece in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            start, _sep, end = piece.partition("-")
            intervals.append([start.strip(), end.strip()])
        hours[day] = intervals
    closures_text = (form.get("closures") or "")[:MAX_FORM_TEXT]
    shown["closures"] = closures_text
    closures = []
    for line in filter(None, (line.strip() for line in closures_text.splitlines())):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 2:
            parts = [parts[0], "", parts[1]]
        start, end, name = (parts + ["", "", ""])[:3] if len(parts) <= 3 else (parts[0], parts[1], "|".join(parts[2:]))
        closure = {"name": name or start, "start": start}
        if end:
            closure["end"] = end
        closures.append(closure)
    body = {"name": shown["name"], "time_zone": shown["time_zone"], "hours": hours, "closures": closures}
    return shown, body


def _calendar_shown(calendar: BusinessCalendar) -> dict:
    shown = {"name": calendar.name, "time_zone": calendar.time_zone, "closures": _closures_text(calendar.closures)}
    for day in WEEKDAY_LABELS:
        shown[f"hours_{day}"] = _hours_text(calendar.hours.get(day, []))
    return shown


def _calendar_page(calendar: BusinessCalendar | None, status: int = 200, form=None):
    users = []
    if calendar is not None:
        users = list(db.session.scalars(select(SLAPolicy).where(SLAPolicy.calendar_id == calendar.id)))
    default = {
        "time_zone": "Europe/Berlin",
        **{f"hours_{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")},
    }
    title = calendar.name if calendar is not None else _("New calendar")
    return _render(
        "admin/calendar.html",
        status,
        calendar=calendar,
        policies_using=users,
        weekdays=WEEKDAY_LABELS,
        zones=sorted_time_zones(),
        form=form or (_calendar_shown(calendar) if calendar is not None else default),
        max_ical=ical.MAX_BYTES,
        breadcrumbs=_crumbs((title, None)),
    )


def _get_calendar(calendar_id: int, *, for_update: bool = False) -> BusinessCalendar:
    from cairn.db import get_or_404

    return get_or_404(BusinessCalendar, calendar_id, for_update=for_update)


@bp.get("/admin/calendars/new")
@page(roles.ADMIN)
def admin_calendar_new():
    return _calendar_page(None)


@bp.post("/admin/calendars")
@page(roles.ADMIN)
def admin_calendar_create():
    shown, body = _calendar_form(request.form)
    try:
        calendar = services.save_calendar(load(CalendarSchema(), body))
    except DomainError as error:
        _keep(error)
        return _calendar_page(None, error.status, form=shown)
    flash(_("The calendar %(name)s is added.", name=calendar.name), "success")
    return redirect(url_for("web.admin_calendar", calendar_id=calendar.id))


@bp.get("/admin/calendars/<int:calendar_id>")
@page(roles.ADMIN)
def admin_calendar(calendar_id: int):
    return _calendar_page(_get_calendar(calendar_id))


@bp.post("/admin/calendars/<int:calendar_id>")
@page(roles.ADMIN)
def admin_calendar_update(calendar_id: int):
    calendar = _get_calendar(calendar_id, for_update=True)
    shown, body = _calendar_form(request.form)
    try:
        _stale(calendar.version)
        calendar = services.save_calendar(load(CalendarUpdateSchema(), body), calendar)
    except DomainError as error:
        _keep(error)
        return _calendar_page(_get_calendar(calendar_id), error.status, form=shown)
    flash(_("The calendar %(name)s is saved.", name=calendar.name), "success")
    _recompute_note(calendar.recompute)
    return redirect(url_for("web.admin_calendar", calendar_id=calendar_id))


@bp.post("/admin/calendars/<int:calendar_id>/ical")
@page(roles.ADMIN)
def admin_calendar_ical(calendar_id: int):
    calendar = _get_calendar(calendar_id, for_update=True)
    upload = request.files.get("file")
    data = upload.stream.read(ical.MAX_BYTES + 1) if upload is not None and upload.filename else b""
    try:
        if not data:
            raise Invalid(_("Choose an iCalendar (.ics) file."), errors={"file": [_("No file sent.")]})
        if len(data) > ical.MAX_BYTES:
            raise Invalid(
                _("iCalendar files are limited to %(n)s bytes.", n=ical.MAX_BYTES), errors={"file": [_("Too large.")]}
            )
        calendar, imported, skipped = services.import_ical(calendar, data)
    except DomainError as error:
        _keep(error)
        return _calendar_page(_get_calendar(calendar_id), error.status)
    flash(
        _(
            "%(imported)s closures added from the file (%(skipped)s recurring events skipped).",
            imported=imported,
            skipped=skipped,
        ),
        "success",
    )
    _recompute_note(calendar.recompute)
    return redirect(url_for("web.admin_calendar", calendar_id=calendar_id))


@bp.get("/admin/calendars/<int:calendar_id>/delete")
@page(roles.ADMIN)
def admin_calendar_delete_confirm(calendar_id: int):
    calendar = _get_calendar(calendar_id)
    used = [p.name for p in db.session.scalars(select(SLAPolicy).where(SLAPolicy.calendar_id == calendar.id))]
    return _confirm(
        _("Delete the calendar %(name)s?", name=calendar.name),
        url_for("web.admin_calendar_delete", calendar_id=calendar.id),
        url_for("web.admin_calendar", calendar_id=calendar.id),
        blocked=_("The SLA policies %(names)s use it: give them another calendar first.", names=", ".join(used))
        if used
        else None,
        consequence=_("No policy uses it; nothing else changes."),
    )


@bp.post("/admin/calendars/<int:calendar_id>/delete")
@page(roles.ADMIN)
def admin_calendar_delete(calendar_id: int):
    calendar = _get_calendar(calendar_id, for_update=True)
    name = calendar.name
    try:
        services.delete_calendar(calendar)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("web.admin_calendar", calendar_id=calendar_id))
    flash(_("The calendar %(name)s is deleted.", name=name), "success")
    return redirect(url_for("web.admin_slas"))


def _confirm(title: str, action: str, back: str, *, consequence: str, blocked: str | None = None):
    return _render(
        "admin/sla_confirm_delete.html",
        title=title,
        action=action,
        back=back,
        consequence=consequence,
        blocked=blocked,
        breadcrumbs=_crumbs((title, None)),
    )


# ---------------------------------------------------------------------------------------------
# Policies and rules: shared match fields


MATCH_INPUTS = ("kind", "priority", "category_id", "team_id", "service_ci_id")


def _match_form(form) -> tuple[dict, dict]:
    shown, match = {}, {}
    for name in MATCH_INPUTS:
        text = (form.get(f"match_{name}") or "").strip()[:40]
        shown[f"match_{name}"] = text
        if not text:
            match[name] = None
        elif name == "kind":
            match[name] = text
        else:
            match[name] = form_int(text) if is_number(text) else text
    return shown, match


def _match_shown(rule) -> dict:
    return {f"match_{k}": "" if v is None else str(v) for k, v in rule.match.items()}


def _number(text: str) -> float | None:
    """A decimal number typed in a form (a comma as the decimal mark too), or None."""
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if value == value and abs(value) < 1e9 else None


def _seconds_to_hours(seconds: int) -> str:
    hours = seconds / 3600
    return f"{hours:g}"


def _choices() -> dict:
    return {
        "kinds": KINDS,
        "teams": list(db.session.scalars(select(Team).order_by(Team.name).limit(1000))),
        "categories": [(c.id, f"{c.kind}: {categories.path_of(c)}") for c in _categories()],
        "calendars": list(db.session.scalars(services.calendars().limit(500))),
    }


# ---------------------------------------------------------------------------------------------
# Policies


def _policy_form(form) -> tuple[dict, dict]:
    """(what the form shows again, the API's body); targets typed in business hours, the warning
    as a percentage. A figure that is not a number is refused here, in the form's own terms."""
    shown = {
        k: (form.get(k) or "").strip()[:200]
        for k in ("name", "type", "calendar_id", "response_hours", "resolution_hours", "warn_percent", "order")
    }
    match_shown, match = _match_form(form)
    shown.update(match_shown)
    body: dict[str, Any] = {"name": shown["name"], "type": shown["type"] or "sla", "match": match}
    if shown["calendar_id"]:
        body["calendar_id"] = form_int(shown["calendar_id"]) or shown["calendar_id"]
    errors: dict[str, list[str]] = {}
    for key, target, scale in (
        ("response_hours", "response_seconds", 3600),
        ("resolution_hours", "resolution_seconds", 3600),
        ("warn_percent", "warn_at", 0.01),
    ):
        if not shown[key]:
            continue
        value = _number(shown[key])
        if value is None:
            errors[key] = [_("A number, such as 2 or 0.5.")]
        else:
            body[target] = round(value * scale) if scale == 3600 else value * scale
    if shown["order"]:
        body["order"] = int(shown["order"]) if is_number(shown["order"].lstrip("-")) else shown["order"]
    if errors:
        raise Invalid(_("Some fields are invalid."), errors=errors)
    return shown, body


POLICY_RENAME = {
    "response_seconds": "response_hours",
    "resolution_seconds": "resolution_hours",
    "warn_at": "warn_percent",
}


def _policy_shown(policy: SLAPolicy) -> dict:
    return {
        "name": policy.name,
        "type": policy.type,
        "calendar_id": str(policy.calendar_id),
        "response_hours": _seconds_to_hours(policy.response_seconds),
        "resolution_hours": _seconds_to_hours(policy.resolution_seconds),
        "warn_percent": f"{policy.warn_at * 100:g}",
        "order": str(policy.order),
        **_match_shown(policy),
    }


def _policy_page(policy: SLAPolicy | None, status: int = 200, form=None):
    open_count = 0
    if policy is not None:
        open_count = db.session.scalar(
            select(func.count()).where(
                or_(Ticket.sla_policy_id == policy.id, Ticket.ola_policy_id == policy.id),
                Ticket.state.not_in(_done()),
            )
        )
    default = {"type": request.args.get("type") if request.args.get("type") in ("sla", "ola") else "sla"}
    default.update(warn_percent="75", order="0")
    title = policy.name if policy is not None else _("New policy")
    return _render(
        "admin/sla_policy.html",
        status,
        policy=policy,
        open_count=open_count,
        form=form or (_policy_shown(policy) if policy is not None else default),
        breadcrumbs=_crumbs((title, None)),
        **_choices(),
    )


def _done():
    from tickets import workflow

    return workflow.DONE_STATES


def _get_policy(policy_id: int, *, for_update: bool = False) -> SLAPolicy:
    from cairn.db import get_or_404

    return get_or_404(SLAPolicy, policy_id, for_update=for_update)


@bp.get("/admin/sla-policies/new")
@page(roles.ADMIN)
def admin_sla_policy_new():
    return _policy_page(None)


@bp.post("/admin/sla-policies")
@page(roles.ADMIN)
def admin_sla_policy_create():
    shown = {k: (v or "").strip()[:200] for k, v in request.form.items() if k != "csrf_token"}
    try:
        shown, body = _policy_form(request.form)
        policy = services.save_policy(load(SLAPolicySchema(), body))
    except DomainError as error:
        _keep(error, POLICY_RENAME)
        return _policy_page(None, error.status, form=shown)
    flash(_("The policy %(name)s is added.", name=policy.name), "success")
    _recompute_note(policy.recompute)
    return redirect(url_for("web.admin_sla_policy", policy_id=policy.id))


@bp.get("/admin/sla-policies/<int:policy_id>")
@page(roles.ADMIN)
def admin_sla_policy(policy_id: int):
    return _policy_page(_get_policy(policy_id))


@bp.post("/admin/sla-policies/<int:policy_id>")
@page(roles.ADMIN)
def admin_sla_policy_update(policy_id: int):
    policy = _get_policy(policy_id, for_update=True)
    shown = {k: (v or "").strip()[:200] for k, v in request.form.items() if k != "csrf_token"}
    try:
        _stale(policy.version)
        shown, body = _policy_form(request.form)
        policy = services.save_policy(load(SLAPolicyUpdateSchema(), body), policy)
    except DomainError as error:
        _keep(error, POLICY_RENAME)
        return _policy_page(_get_policy(policy_id), error.status, form=shown)
    flash(_("The policy %(name)s is saved.", name=policy.name), "success")
    _recompute_note(policy.recompute)
    return redirect(url_for("web.admin_sla_policy", policy_id=policy_id))


@bp.get("/admin/sla-policies/<int:policy_id>/delete")
@page(roles.ADMIN)
def admin_sla_policy_delete_confirm(policy_id: int):
    policy = _get_policy(policy_id)
    count = db.session.scalar(
        select(func.count()).where(
            or_(Ticket.sla_policy_id == policy.id, Ticket.ola_policy_id == policy.id), Ticket.state.not_in(_done())
        )
    )
    return _confirm(
        _("Delete the policy %(name)s?", name=policy.name),
        url_for("web.admin_sla_policy_delete", policy_id=policy.id),
        url_for("web.admin_sla_policy", policy_id=policy.id),
        consequence=_(
            "%(n)s open tickets are timed by it: they are matched again (another policy, or the wall clock "
            "of their priority) in the background.",
            n=count,
        ),
    )


@bp.post("/admin/sla-policies/<int:policy_id>/delete")
@page(roles.ADMIN)
def admin_sla_policy_delete(policy_id: int):
    policy = _get_policy(policy_id, for_update=True)
    name = policy.name
    try:
        row = services.delete_policy(policy)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("web.admin_sla_policy", policy_id=policy_id))
    flash(_("The policy %(name)s is deleted.", name=name), "success")
    _recompute_note(row)
    return redirect(url_for("web.admin_slas"))


# ---------------------------------------------------------------------------------------------
# Escalation rules


ACTION_INPUTS = ("notify", "reassign_team_id", "raise_priority", "add_watcher_id")


def _rule_form(form) -> tuple[dict, dict]:
    shown = {
        k: (form.get(k) or "").strip()[:2000] for k in ("name", "on", "idle_business_hours", "order", *ACTION_INPUTS)
    }
    match_shown, match = _match_form(form)
    shown.update(match_shown)
    body: dict[str, Any] = {"name": shown["name"][:200], "on": shown["on"], "match": match}
    if shown["idle_business_hours"]:
        hours = shown["idle_business_hours"].replace(",", ".")
        try:
            body["idle_business_hours"] = float(hours)
        except ValueError:
            body["idle_business_hours"] = hours
    else:
        body["idle_business_hours"] = None
    if shown["order"]:
        body["order"] = int(shown["order"]) if is_number(shown["order"].lstrip("-")) else shown["order"]
    actions: list[dict] = []
    notify = [r.strip() for r in shown["notify"].replace(";", ",").split(",") if r.strip()]
    if notify:
        actions.append({"notify": notify[:60]})
    for key in ("reassign_team_id", "add_watcher_id"):
        if shown[key]:
            actions.append({key: form_int(shown[key]) or shown[key]})
    if shown["raise_priority"]:
        actions.append({"raise_priority": True})
    body["actions"] = actions
    return shown, body


def _rule_shown(rule: EscalationRule) -> dict:
    shown = {
        "name": rule.name,
        "on": rule.on,
        "idle_business_hours": "" if rule.idle_business_hours is None else f"{rule.idle_business_hours:g}",
        "order": str(rule.order),
        **_match_shown(rule),
    }
    for action in rule.actions:
        if "notify" in action:
            shown["notify"] = ", ".join(action["notify"])
        for key in ("reassign_team_id", "add_watcher_id"):
            if key in action:
                shown[key] = str(action[key])
        if action.get("raise_priority"):
            shown["raise_priority"] = "1"
    return shown


def _rule_page(rule: EscalationRule | None, status: int = 200, form=None):
    title = rule.name if rule is not None else _("New escalation rule")
    users = list(
        db.session.scalars(
            select(User).where(User.active.is_(True), User.role != roles.REQUESTER).order_by(User.email).limit(1000)
        )
    )
    return _render(
        "admin/escalation_rule.html",
        status,
        rule=rule,
        triggers=ESCALATION_TRIGGERS,
        users=users,
        form=form or (_rule_shown(rule) if rule is not None else {"on": "breach", "order": "0", "notify": "assignee"}),
        breadcrumbs=_crumbs((title, None)),
        **_choices(),
    )


def _get_rule(rule_id: int, *, for_update: bool = False) -> EscalationRule:
    from cairn.db import get_or_404

    return get_or_404(EscalationRule, rule_id, for_update=for_update)


def _rule_errors(error: DomainError) -> None:
    """An action's errors land by the input that made it (actions.0.notify -> notify)."""
    _keep(error)
    errors = g.field_errors
    for key in list(errors):
        if key.startswith("actions."):
            name = key.split(".", 1)[1]
            messages = errors.pop(key)
            errors.setdefault(name if name in ACTION_INPUTS else "actions", []).extend(messages)


@bp.get("/admin/escalation-rules/new")
@page(roles.ADMIN)
def admin_escalation_rule_new():
    return _rule_page(None)


@bp.post("/admin/escalation-rules")
@page(roles.ADMIN)
def admin_escalation_rule_create():
    shown, body = _rule_form(request.form)
    try:
        rule = services.save_escalation_rule(load(EscalationRuleSchema(), body))
    except DomainError as error:
        _rule_errors(error)
        return _rule_page(None, error.status, form=shown)
    flash(_("The escalation rule %(name)s is added.", name=rule.name), "success")
    return redirect(url_for("web.admin_escalation_rule", rule_id=rule.id))


@bp.get("/admin/escalation-rules/<int:rule_id>")
@page(roles.ADMIN)
def admin_escalation_rule(rule_id: int):
    return _rule_page(_get_rule(rule_id))


@bp.post("/admin/escalation-rules/<int:rule_id>")
@page(roles.ADMIN)
def admin_escalation_rule_update(rule_id: int):
    rule = _get_rule(rule_id, for_update=True)
    shown, body = _rule_form(request.form)
    try:
        _stale(rule.version)
        services.save_escalation_rule(load(EscalationRuleUpdateSchema(), body), rule)
    except DomainError as error:
        _rule_errors(error)
        return _rule_page(_get_rule(rule_id), error.status, form=shown)
    flash(_("The escalation rule %(name)s is saved.", name=rule.name), "success")
    return redirect(url_for("web.admin_escalation_rule", rule_id=rule_id))


@bp.get("/admin/escalation-rules/<int:rule_id>/delete")
@page(roles.ADMIN)
def admin_escalation_rule_delete_confirm(rule_id: int):
    rule = _get_rule(rule_id)
    return _confirm(
        _("Delete the escalation rule %(name)s?", name=rule.name),
        url_for("web.admin_escalation_rule_delete", rule_id=rule.id),
        url_for("web.admin_escalation_rule", rule_id=rule.id),
        consequence=_("It stops firing; what it did to tickets stays in their history."),
    )


@bp.post("/admin/escalation-rules/<int:rule_id>/delete")
@page(roles.ADMIN)
def admin_escalation_rule_delete(rule_id: int):
    rule = _get_rule(rule_id, for_update=True)
    name = rule.name
    services.delete_escalation_rule(rule)
    flash(_("The escalation rule %(name)s is deleted.", name=name), "success")
    return redirect(url_for("web.admin_slas"))


def describe_match(rule, names: dict) -> str:
    """A rule's conditions in words, for the lists."""
    parts = []
    for key, value in rule.match.items():
        if value is None:
            continue
        if key == "team_id":
            parts.append(_("team %(name)s", name=names["team"].get(value, value)))
        elif key == "category_id":
            parts.append(_("category %(name)s", name=names["category"].get(value, value)))
        elif key == "service_ci_id":
            parts.append(_("CI #%(id)s", id=value))
        elif key == "priority":
            parts.append(_("P%(n)s", n=value))
        else:
            parts.append(str(value))
    return ", ".join(parts) or _("every ticket")


def describe_actions(rule: EscalationRule, names: dict) -> str:
    parts = []
    for action in rule.actions:
        if "notify" in action:
            parts.append(_("notify %(who)s", who=", ".join(action["notify"])))
        elif "reassign_team_id" in action:
            parts.append(_("reassign to %(team)s", team=names["team"].get(action["reassign_team_id"], "?")))
        elif "raise_priority" in action:
            parts.append(_("raise the priority"))
        elif "add_watcher_id" in action:
            parts.append(_("add watcher #%(id)s", id=action["add_watcher_id"]))
    return "; ".join(parts)


@bp.app_template_global("sla_describe_match")
def _describe_match_global(rule, names):
    return describe_match(rule, names)


@bp.app_template_global("sla_describe_actions")
def _describe_actions_global(rule, names):
    return describe_actions(rule, names)


@bp.app_template_global("sla_hours")
def _hours_global(seconds: int) -> str:
    return _seconds_to_hours(seconds)
