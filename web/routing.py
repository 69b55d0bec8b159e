"""Routing administration: the routing rules in the order they are tried (add, edit, move, delete),
each team's assignment mode (manual, round-robin, least-loaded; its calendar and who is away), and
a dry run that shows which rule would take a ticket and why the ones before it did not.

Admins manage; agents may use the dry run. Every write goes through tickets.routing.services, the
service the API calls, so the rules, the checks and the change log are the API's."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from cairn.auth import roles
from cairn.auth.models import Team, User
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from cmdb.classes import REGISTRY
from cmdb.models import Location
from tickets import categories
from tickets.models import KINDS
from tickets.routing import engine
from tickets.routing import services as routing
from tickets.routing.models import ASSIGNMENT_MODES, RoutingRule
from tickets.routing.schemas import DryRunSchema, RoutingRuleSchema, RoutingRuleUpdateSchema, TeamAssignmentSchema
from tickets.slas.models import BusinessCalendar
from web.blueprint import bp
from web.forms import field_errors, flash_refusal, form_int, keep_errors, load

MODE_LABELS = {
    "manual": _l("Manual: the team picks"),
    "round_robin": _l("Round-robin: members in turn"),
    "least_loaded": _l("Least-loaded: fewest open tickets"),
}
CONDITION_LABELS = {
    "kind": _l("Kind"),
    "category_id": _l("Category"),
    "ci_class": _l("CI class"),
    "ci_team_id": _l("CI owned by"),
    "requester_team_id": _l("Requester's team"),
    "requester_location_id": _l("Requester's location"),
    "mail_route": _l("Mail route"),
    "title_words": _l("Words in the title"),
}
ACTION_LABELS = {
    "team_id": _l("Team"),
    "priority": _l("Priority"),
    "category_id": _l("Category"),
    "assignee_id": _l("Assignee"),
}
ID_FIELDS = ("match_category_id", "match_ci_team_id", "match_requester_team_id", "match_requester_location_id",
             "set_team_id", "set_category_id", "set_assignee_id", "set_priority", "position")  # fmt: skip
LIMIT = 1000


def _render(template: str, status: int = 200, **context):
    return render_template(
        template,
        errors=field_errors(),
        condition_labels=CONDITION_LABELS,
        action_labels=ACTION_LABELS,
        mode_labels=MODE_LABELS,
        **context,
    ), status


def _crumbs(*items):
    return [(_("Admin"), url_for("web.admin")), *items]


def _failed(error: DomainError) -> None:
    """Roll back and show the error; nested field errors (match.kind) by their form field names."""
    db.session.rollback()
    keep_errors(error)
    flat: dict[str, list] = {}
    for key, value in (error.errors or {}).items():
        if isinstance(value, dict) and key in ("match", "actions", "ticket"):
            prefix = {"match": "match_", "actions": "set_", "ticket": ""}[key]
            for inner, messages in value.items():
                flat[prefix + str(inner).lstrip("_")] = messages if isinstance(messages, list) else [str(messages)]
        else:
            flat[key] = value if isinstance(value, list) else [str(value)]
    g.field_errors = flat


def _choices() -> dict:
    """What the selects of the forms offer."""
    teams = list(db.session.scalars(select(Team).order_by(Team.name).limit(LIMIT)))
    users = list(
        db.session.scalars(
            select(User)
            .where(User.active.is_(True), User.role.in_(engine.ASSIGNABLE_ROLES))
            .order_by(User.name, User.email)
            .limit(LIMIT)
        )
    )
    locations = list(db.session.scalars(select(Location).order_by(Location.name).limit(LIMIT)))
    return {
        "kinds": KINDS,
        "tree": categories.tree(),
        "ci_classes": sorted(REGISTRY),
        "teams": teams,
        "users": users,
        "locations": locations,
    }


def _names(choices: dict) -> dict:
    """Ids to readable names, for the list of rules."""
    category_names = {}
    for kind_tree in choices["tree"].values():
        for category, subs in kind_tree:
            category_names[category.id] = category.label
            for sub in subs:
                category_names[sub.id] = f"{category.label} > {sub.label}"
    return {
        "category": category_names,
        "team": {t.id: t.name for t in choices["teams"]},
        "user": {u.id: u.name or u.email for u in choices["users"]},
        "location": {loc.id: loc.name for loc in choices["locations"]},
    }


def _rule_form(form) -> dict:
    """What a rule form sent, as the API's body (empty fields: no condition, no action)."""
    text = {k: (form.get(k) or "").strip()[:254] for k in form}

    def value(name):
        raw = text.get(name, "")
        if not raw:
            return None
        number = form_int(raw.lstrip("-"))
        if name in ID_FIELDS and number is not None:
            return -number if raw.startswith("-") else number
        return raw

    body: dict = {
        "name": text.get("name", ""),
        "active": bool(form.get("active")),
        "override": bool(form.get("override")),
    }
    if value("position") is not None:
        body["position"] = value("position")
    words = [w.strip() for w in (form.get("match_title_words") or "").split(",") if w.strip()]
    match = {c: value(f"match_{c}") for c in CONDITION_LABELS if c != "title_words"}
    match["title_words"] = words[:60] or None
    body["match"] = match
    body["actions"] = {a: value(f"set_{a}") for a in ACTION_LABELS}
    return body


def _form_of(rule: RoutingRule) -> dict:
    out = {"name": rule.name, "position": rule.position, "active": rule.active, "override": rule.override}
    for condition, wanted in rule.match.items():
        out[f"match_{condition}"] = ", ".join(wanted) if condition == "title_words" and wanted else wanted
    for action, value in rule.actions.items():
        out[f"set_{action}"] = value
    return out


# ---------------------------------------------------------------------------------------------
# The rules and the teams


def _index(status: int = 200, form=None):
    choices = _choices()
    rules = list(db.session.scalars(routing.routing_rules().limit(LIMIT)))
    settings = {row.team_id: row for row in db.session.scalars(routing.team_assignments())}
    return _render(
        "admin/routing.html",
        status,
        rules=rules,
        names=_names(choices),
        settings=settings,
        form=form or {"active": True},
        **choices,
        breadcrumbs=_crumbs((_("Routing"), None)),
    )


@bp.get("/admin/routing")
@page(roles.ADMIN)
def admin_routing():
    return _index()


@bp.post("/admin/routing/rules")
@page(roles.ADMIN)
def admin_routing_rule_create():
    body = _rule_form(request.form)
    try:
        rule = routing.save_rule(load(RoutingRuleSchema(), body))
    except DomainError as error:
        _failed(error)
        return _index(error.status, form=request.form.to_dict())
    flash(_("The routing rule %(name)s is added.", name=rule.name), "success")
    return redirect(url_for("web.admin_routing") + f"#rule-{rule.id}")


def _rule_page(rule_id: int, status: int = 200, form=None):
    rule = routing.get_rule(rule_id)
    return _render(
        "admin/routing_rule.html",
        status,
        rule=rule,
        form=form or _form_of(rule),
        **_choices(),
        breadcrumbs=_crumbs((_("Routing"), url_for("web.admin_routing")), (rule.name, None)),
    )


@bp.get("/admin/routing/rules/<int:rule_id>")
@page(roles.ADMIN)
def admin_routing_rule(rule_id: int):
    return _rule_page(rule_id)


@bp.post("/admin/routing/rules/<int:rule_id>")
@page(roles.ADMIN)
def admin_routing_rule_update(rule_id: int):
    rule = routing.get_rule(rule_id, for_update=True)
    body = _rule_form(request.form)
    try:
        routing.save_rule(load(RoutingRuleUpdateSchema(), body), rule)
    except DomainError as error:
        if error.status == 404:
            raise
        _failed(error)
        return _rule_page(rule_id, error.status, form=request.form.to_dict())
    flash(_("The routing rule %(name)s is saved.", name=rule.name), "success")
    return redirect(url_for("web.admin_routing_rule", rule_id=rule_id))


@bp.post("/admin/routing/rules/<int:rule_id>/delete")
@page(roles.ADMIN)
def admin_routing_rule_delete(rule_id: int):
    rule = routing.get_rule(rule_id, for_update=True)
    name = rule.name
    routing.delete_rule(rule)
    flash(_("The routing rule %(name)s is deleted.", name=name), "success")
    return redirect(url_for("web.admin_routing"))


@bp.post("/admin/routing/rules/<int:rule_id>/move")
@page(roles.ADMIN)
def admin_routing_rule_move(rule_id: int):
    ids = [r.id for r in db.session.scalars(routing.routing_rules().limit(LIMIT))]
    if rule_id not in ids:
        routing.get_rule(rule_id)  # NotFound
    at = ids.index(rule_id)
    to = at - 1 if request.form.get("direction") == "up" else at + 1
    if 0 <= to < len(ids):
        ids[at], ids[to] = ids[to], ids[at]
        try:
            routing.reorder(ids)
        except DomainError as error:
            flash_refusal(error)
    return redirect(url_for("web.admin_routing") + f"#rule-{rule_id}")


def _team_page(team_id: int, status: int = 200, form=None):
    settings = routing.assignment_of(team_id)
    team = db.session.get(Team, team_id)
    view = routing.view(settings)
    calendars = list(db.session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.name).limit(LIMIT)))
    return _render(
        "admin/routing_team.html",
        status,
        team=team,
        view=view,
        modes=ASSIGNMENT_MODES,
        calendars=calendars,
        load=engine.open_load([m.id for m in team.members]),
        form=form or view,
        breadcrumbs=_crumbs((_("Routing"), url_for("web.admin_routing")), (team.name, None)),
    )


@bp.get("/admin/routing/teams/<int:team_id>")
@page(roles.ADMIN)
def admin_routing_team(team_id: int):
    return _team_page(team_id)


@bp.post("/admin/routing/teams/<int:team_id>")
@page(roles.ADMIN)
def admin_routing_team_update(team_id: int):
    routing.assignment_of(team_id)  # an unknown team: 404
    away = [form_int(v) for v in request.form.getlist("away_user_ids")[:LIMIT]]
    calendar = (request.form.get("calendar_id") or "").strip()
    body = {
        "mode": (request.form.get("mode") or "").strip()[:20],
        "calendar_id": (form_int(calendar) or calendar[:20]) if calendar else None,
        "away_user_ids": [v for v in away if v is not None],
    }
    try:
        routing.save_assignment(team_id, load(TeamAssignmentSchema(), body))
    except DomainError as error:
        _failed(error)
        return _team_page(team_id, error.status, form=body)
    flash(_("The assignment of %(team)s is saved.", team=db.session.get(Team, team_id).name), "success")
    return redirect(url_for("web.admin_routing_team", team_id=team_id))


# ---------------------------------------------------------------------------------------------
# The dry run (agents too)


def _dry_run_form(form) -> dict:
    draft: dict = {"kind": (form.get("kind") or "").strip()[:20], "title": (form.get("title") or "").strip()[:200]}
    for key in ("category_id", "requester_id", "team_id"):
        raw = (form.get(key) or "").strip()
        if raw:
            draft[key] = form_int(raw) or raw[:20]
    ci_ids = [form_int(v.strip()) for v in (form.get("ci_ids") or "").split(",") if v.strip()]
    if ci_ids:
        draft["ci_ids"] = [v if v is not None else "?" for v in ci_ids][:100]
    route = (form.get("mail_route") or "").strip()[:254]
    if route:
        draft["mail_route"] = route
    return draft


@bp.route("/admin/routing/dry-run", methods=["GET", "POST"])
@page(roles.ADMIN, roles.AGENT)
def admin_routing_dry_run():
    choices = _choices()
    result = None
    status = 200
    form = request.form.to_dict() if request.method == "POST" else {"kind": "incident"}
    if request.method == "POST":
        try:
            result = routing.dry_run(load(DryRunSchema(), {"ticket": _dry_run_form(request.form)}), g.user)
        except DomainError as error:
            _failed(error)
            status = error.status
    crumbs = _crumbs((_("Routing"), url_for("web.admin_routing")), (_("Dry run"), None))
    if g.user.role != roles.ADMIN:
        crumbs = [(_("Routing dry run"), None)]
    return _render(
        "admin/routing_dry_run.html",
        status,
        result=result,
        form=form,
        names=_names(choices),
        **choices,
        breadcrumbs=crumbs,
    )
