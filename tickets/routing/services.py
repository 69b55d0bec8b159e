"""Routing rules and team assignment settings: every write to them goes through here, checked
(422 naming the unknown team, category, user, location or CI class; 409 for a duplicate name);
and the dry run, which routes a draft or a ticket without writing anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from cairn.auth.models import Team, User
from cairn.db import MAX_ID, db
from cairn.errors import Conflict, Invalid, NotFound
from cmdb.classes import REGISTRY
from cmdb.models import ConfigurationItem, Location
from tickets import services as ticket_services
from tickets.models import TicketCategory
from tickets.routing import engine
from tickets.routing.models import ACTIONS, CONDITIONS, RoutingRule, TeamAssignment
from tickets.slas.models import BusinessCalendar

POSITION_STEP = 10
MAX_RULES = 1000


# ---------------------------------------------------------------------------------------------
# Rules


def routing_rules() -> Select:
    return select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)


def get_rule(rule_id: int, *, for_update: bool = False) -> RoutingRule:
    rule = None
    if 0 < rule_id <= MAX_ID:
        rule = db.session.get(RoutingRule, rule_id, with_for_update={"of": RoutingRule} if for_update else None)
    if rule is None:
        raise NotFound(f"No routing rule with id {rule_id}.")
    return rule


def _get(model, object_id: int | None):
    if object_id is None or not 0 < object_id <= MAX_ID:
        return None
    return db.session.get(model, object_id)


def _check(rule: RoutingRule, errors: dict) -> None:
    """The rule as it will be stored: ids that exist, a category of the kind it matches, an
    assignee who can work tickets (in the team it sets), at least one action."""
    match_errors: dict = {}
    action_errors: dict = {}
    for key, model in (
        ("category_id", TicketCategory),
        ("ci_team_id", Team),
        ("requester_team_id", Team),
        ("requester_location_id", Location),
    ):
        value = getattr(rule, f"match_{key}")
        if value is not None and _get(model, value) is None:
            match_errors[key] = [f"No {model.__tablename__.replace('_', ' ')} with id {value}."]
    if rule.match_ci_class is not None and rule.match_ci_class not in REGISTRY:
        match_errors["ci_class"] = [f"No CI class named {rule.match_ci_class!r}."]
    category = _get(TicketCategory, rule.match_category_id)
    if category is not None and rule.match_kind is not None and category.kind != rule.match_kind:
        match_errors["category_id"] = [f"The category is one of {category.kind}s, not {rule.match_kind}s."]
    if rule.set_team_id is not None and _get(Team, rule.set_team_id) is None:
        action_errors["team_id"] = [f"No team with id {rule.set_team_id}."]
    target = _get(TicketCategory, rule.set_category_id)
    if rule.set_category_id is not None:
        if target is None:
            action_errors["category_id"] = [f"No ticket category with id {rule.set_category_id}."]
        elif not target.active:
            action_errors["category_id"] = ["The category is inactive."]
        elif rule.match_kind is not None and target.kind != rule.match_kind:
            action_errors["category_id"] = [
                f"The category is one of {target.kind}s; the rule matches {rule.match_kind}s."
            ]
        elif rule.match_kind is None:
            action_errors["category_id"] = ["A rule that sets a category matches one ticket kind (match.kind)."]
    if rule.set_assignee_id is not None:
        user = _get(User, rule.set_assignee_id)
        if user is None:
            action_errors["assignee_id"] = [f"No user with id {rule.set_assignee_id}."]
        elif not engine.works_tickets(user):
            action_errors["assignee_id"] = [f"User {user.id} can't work tickets (role {user.role}, or deactivated)."]
        elif rule.set_team_id is not None and not engine.member_of(rule.set_team_id, user.id):
            action_errors["assignee_id"] = [f"User {user.id} is not a member of the team the rule sets."]
    if all(getattr(rule, f"set_{a}") is None for a in ACTIONS) and "team_id" not in action_errors:
        errors["actions"] = {"_schema": ["A rule sets at least one of team_id, priority, category_id, assignee_id."]}
    if match_errors:
        errors["match"] = match_errors
    if action_errors:
        errors["actions"] = action_errors


def save_rule(data: dict[str, Any], rule: RoutingRule | None = None) -> RoutingRule:
    """Create a rule or change one; nothing is stored when any field is wrong."""
    name = data.get("name")
    taken = select(RoutingRule.id).where(RoutingRule.name == name)
    if name is not None and (rule is None or name != rule.name) and db.session.scalar(taken) is not None:
        raise Conflict(f"A routing rule named {name!r} exists already.")
    creating = rule is None
    if creating:
        if db.session.scalar(select(func.count()).select_from(RoutingRule)) >= MAX_RULES:
            raise Conflict(f"There are {MAX_RULES} routing rules already.")
        rule = RoutingRule(active=True, override=False)
        if data.get("position") is None:
            last = db.session.scalar(select(func.max(RoutingRule.position)))
            data = {**data, "position": (last or 0) + POSITION_STEP}
    with db.session.no_autoflush:
        for key, value in data.items():
            if key == "match":
                for condition in CONDITIONS:
                    if condition in value or creating:
                        setattr(rule, f"match_{condition}", _clean(condition, value.get(condition)))
            elif key == "actions":
                for action in ACTIONS:
                    if action in value or creating:
                        setattr(rule, f"set_{action}", value.get(action))
            else:
                setattr(rule, key, value)
        errors: dict = {}
        _check(rule, errors)
    if errors:
        if not creating:
            db.session.expire(rule)
        raise Invalid("Some fields are invalid.", errors=errors)
    if creating:
        db.session.add(rule)
    db.session.flush()
    return rule


def _clean(condition: str, value):
    if condition == "mail_route" and value:
        return value.strip().lower()
    if condition == "title_words" and value is not None:
        words = list(dict.fromkeys(w.strip() for w in value if w.strip()))
        return words or None
    return value


def delete_rule(rule: RoutingRule) -> None:
    db.session.delete(rule)
    db.session.flush()


def reorder(ids: list[int]) -> list[RoutingRule]:
    """Put every rule in the order of ``ids`` (each rule once, all of them: else 422)."""
    rules = {r.id: r for r in db.session.scalars(routing_rules().with_for_update())}
    if sorted(ids) != sorted(rules) or len(set(ids)) != len(ids):
        missing = sorted(set(rules) - set(ids))
        unknown = sorted(set(ids) - set(rules))
        detail = []
        if missing:
            detail.append(f"missing ids {missing[:20]}")
        if unknown:
            detail.append(f"unknown ids {unknown[:20]}")
        if len(set(ids)) != len(ids):
            detail.append("an id twice")
        raise Invalid("Name every routing rule once.", errors={"ids": ["; ".join(detail)]})
    for index, rule_id in enumerate(ids, start=1):
        if rules[rule_id].position != index * POSITION_STEP:
            rules[rule_id].position = index * POSITION_STEP
    db.session.flush()
    return [rules[i] for i in ids]


# ---------------------------------------------------------------------------------------------
# Team assignment


def team_assignments() -> Select:
    return select(TeamAssignment).join(Team, Team.id == TeamAssignment.team_id).order_by(Team.name, Team.id)


def _team(team_id: int) -> Team:
    team = _get(Team, team_id)
    if team is None:
        raise NotFound(f"No team with id {team_id}.")
    return team


def assignment_of(team_id: int) -> TeamAssignment:
    """The team's settings; a team never configured is ``manual`` (not stored)."""
    _team(team_id)
    return engine.settings_of(team_id) or TeamAssignment(team_id=team_id, mode="manual", away_user_ids=[])


def view(settings: TeamAssignment) -> dict:
    """The settings with the members on shift now."""
    on_shift = [m.id for m in engine.on_shift(settings)] if settings.mode != "manual" else []
    return {
        "team_id": settings.team_id,
        "mode": settings.mode,
        "calendar_id": settings.calendar_id,
        "away_user_ids": list(settings.away_user_ids or []),
        "on_shift": on_shift,
        "last_assignee_id": settings.last_assignee_id,
        "created_at": settings.created_at,
        "updated_at": settings.updated_at,
    }


def save_assignment(team_id: int, data: dict[str, Any]) -> TeamAssignment:
    """Set a team's mode, calendar and members away (422 for a calendar or member that is not)."""
    team = _team(team_id)
    settings = db.session.scalar(
        select(TeamAssignment).where(TeamAssignment.team_id == team_id).with_for_update()
    ) or TeamAssignment(team_id=team_id, turns=0)
    errors: dict = {}
    if data.get("calendar_id") is not None and _get(BusinessCalendar, data["calendar_id"]) is None:
        errors["calendar_id"] = [f"No business calendar with id {data['calendar_id']}."]
    members = {m.id for m in team.members}
    away = list(dict.fromkeys(data.get("away_user_ids") or []))
    strangers = [u for u in away if u not in members]
    if strangers:
        errors["away_user_ids"] = [f"Not members of team {team.name}: {strangers[:20]}."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    settings.mode = data["mode"]
    settings.calendar_id = data.get("calendar_id")
    settings.away_user_ids = away
    if settings.id is None:
        db.session.add(settings)
    db.session.flush()
    return settings


def delete_assignment(team_id: int) -> None:
    """Back to manual: the settings row goes."""
    _team(team_id)
    settings = engine.settings_of(team_id)
    if settings is not None:
        db.session.delete(settings)
        db.session.flush()


# ---------------------------------------------------------------------------------------------
# Dry run


def _values(draft: engine.Draft) -> dict:
    return {"team_id": draft.team_id, "assignee_id": draft.assignee_id, "category_id": draft.category_id,
            "priority": draft.priority}  # fmt: skip


def _tried(rule: RoutingRule, failed: list) -> dict:
    return {"id": rule.id, "name": rule.name, "position": rule.position, "matched": not failed, "failed": failed}


def dry_run(body: dict[str, Any], viewer: User | None) -> dict:
    """Which rule would route the ticket, why each rule before it did not, what it would set and
    whom the team's rota would pick; writes nothing (the rota is not advanced)."""
    if "ticket_id" in body:
        try:
            ticket = ticket_services.get_ticket(body["ticket_id"], viewer)
        except NotFound as exc:  # a ticket named in the body: a field error
            raise Invalid(exc.detail, errors={"ticket_id": [exc.detail]}) from None
        draft = engine.Draft.of_ticket(ticket, body.get("mail_route"))
        explicit: set[str] = set()
    else:
        data = dict(body["ticket"])
        errors = _check_draft(data)
        if errors:
            raise Invalid("Some fields are invalid.", errors={"ticket": errors})
        draft = engine.Draft.of(data)
        explicit = engine.explicit_fields(data)
    outcome = engine.run(draft, explicit, category_default="ticket" in body, peek=True)
    rule = outcome.rule
    return {
        "rule": _tried(rule, []) if rule is not None else None,
        "tried": [_tried(r, failed) for r, failed in outcome.tried],
        "actions": outcome.actions,
        "assignment": outcome.assignment,
        "before": outcome.before,
        "after": _values(draft),
    }


def _check_draft(data: dict) -> dict:
    errors: dict = {}
    for key, model in (
        ("category_id", TicketCategory),
        ("requester_id", User),
        ("team_id", Team),
        ("assignee_id", User),
    ):
        if data.get(key) is not None and _get(model, data[key]) is None:
            errors[key] = [f"No {model.__tablename__.replace('_', ' ')} with id {data[key]}."]
    ci_ids = list(dict.fromkeys(data.get("ci_ids") or []))
    if ci_ids:
        found = set(db.session.scalars(select(ConfigurationItem.id).where(ConfigurationItem.id.in_(ci_ids))))
        unknown = [i for i in ci_ids if i not in found]
        if unknown:
            errors["ci_ids"] = [f"No CIs with ids {unknown[:20]}."]
    return errors
