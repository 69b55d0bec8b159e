"""Catalogue items: defining them (checked against the custom fields, teams, users and CI classes
they name), who may order them, and the check of an order form's values."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Select, func, select

from cairn.auth.models import Team, User
from cairn.auth.roles import ALL_ROLES, AUDITOR
from cairn.db import MAX_ID, db
from cairn.errors import Conflict, Invalid, NotFound
from cmdb import classes
from cmdb.custom_fields.registry import current
from cmdb.custom_fields.values import check_references, load_value
from tickets.catalogue.models import (
    CatalogueItem,
)

# Who may order at all (an item's audience narrows it); auditors only read.
ORDERERS = tuple(r for r in ALL_ROLES if r != AUDITOR)
# Who decides approvals: whoever an item's chain names (a manager may be a requester in Cairn).
APPROVERS = ORDERERS
MAX_LINES = 20
MAX_STEPS = 10
MAX_TASKS = 30
MAX_FORM_FIELDS = 50


def items(*, active: bool | None = None, category: str | None = None, q: str | None = None) -> Select:
    stmt = select(CatalogueItem).order_by(CatalogueItem.category, CatalogueItem.name, CatalogueItem.id)
    if active is not None:
        stmt = stmt.where(CatalogueItem.active.is_(active))
    if category:
        stmt = stmt.where(CatalogueItem.category == category)
    if q:
        stmt = stmt.where(func.lower(CatalogueItem.name).contains(q.lower(), autoescape=True))
    return stmt


def orderable_items(user: User) -> list[CatalogueItem]:
    """The active items ``user`` may order, in catalogue order."""
    return [item for item in db.session.scalars(items(active=True)) if may_order(item, user)]


def get_item(item_id: int) -> CatalogueItem:
    item = db.session.get(CatalogueItem, item_id) if 0 < item_id <= MAX_ID else None
    if item is None:
        raise NotFound(f"No catalogue item with id {item_id}.")
    return item


def may_order(item: CatalogueItem, user: User) -> bool:
    """Whether ``user`` may order ``item``: an active item whose audience (roles, teams; none named:
    everyone) includes the user."""
    if not item.active or user.role not in ORDERERS:
        return False
    audience = item.audience or {}
    roles, team_ids = audience.get("roles") or [], audience.get("team_ids") or []
    if not roles and not team_ids:
        return True
    return user.role in roles or any(team.id in team_ids for team in user.teams)


def save_item(data: dict[str, Any], item: CatalogueItem | None = None) -> CatalogueItem:
    """Create or change a catalogue item; 422 naming every bad part, 409 for a name in use."""
    errors: dict[str, Any] = {}
    name = data.get("name")
    if name is not None and (item is None or name != item.name):
        clash = db.session.scalar(select(CatalogueItem.id).where(CatalogueItem.name == name))
        if clash is not None:
            raise Conflict(f"A catalogue item named {name!r} exists already.", conflicting_id=clash)
    if "form" in data:
        _check_form_definition(data["form"], errors)
    if "audience" in data:
        _check_teams([t for t in (data["audience"] or {}).get("team_ids") or []], "audience", errors)
    if "approval_steps" in data:
        _check_steps(data["approval_steps"], errors)
    deliver = data.get("deliver_ci_class", item.deliver_ci_class if item else None)
    if data.get("deliver_ci_class") and classes.get_class(data["deliver_ci_class"]) is None:
        errors["deliver_ci_class"] = [f"No CI class {data['deliver_ci_class']!r}."]
    if "tasks" in data or "deliver_ci_class" in data:
        tasks = data.get("tasks", item.tasks if item else [])
        data["tasks"] = _check_tasks(tasks, deliver, errors)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    if item is None:
        item = CatalogueItem(form=[], audience={}, approval_steps=[], tasks=[], description="", category="")
        db.session.add(item)
    for key in (
        "name", "description", "category", "active", "form", "audience", "approval_mode", "approval_steps",
        "tasks", "deliver_ci_class",
    ):  # fmt: skip
        if key in data:
            setattr(item, key, data[key])
    db.session.flush()
    return item


def _check_form_definition(form: list[dict], errors: dict) -> None:
    fields = current().fields_for("ticket", "request")
    names = [entry["field"] for entry in form]
    problems = {}
    for index, entry in enumerate(form):
        if entry["field"] not in fields:
            problems[index] = {"field": [f"No custom field {entry['field']!r} applies to request tickets."]}
        elif names.index(entry["field"]) != index:
            problems[index] = {"field": ["This field is on the form already."]}
    if problems:
        errors["form"] = problems


def _check_teams(team_ids: list[int], key: str, errors: dict) -> None:
    wanted = {t for t in team_ids if 0 < t <= MAX_ID}
    found = set(db.session.scalars(select(Team.id).where(Team.id.in_(wanted)))) if wanted else set()
    missing = [t for t in team_ids if t not in found]
    if missing:
        errors[key] = {"team_ids": [f"No team with id {', '.join(map(str, missing[:10]))}."]}


def _check_steps(steps: list[dict], errors: dict) -> None:
    problems = {}
    for index, step in enumerate(steps):
        kind = step["kind"]
        if kind == "team":
            if step.get("team_id") is None or db.session.get(Team, step["team_id"]) is None:
                problems[index] = {"team_id": ["A team step names an existing team."]}
        elif kind == "user":
            user = db.session.get(User, step["user_id"]) if step.get("user_id") else None
            if user is None or not user.active:
                problems[index] = {"user_id": ["A user step names an active user."]}
        if kind != "team" and step.get("team_id") is not None:
            problems.setdefault(index, {})["team_id"] = ["Only a team step names a team."]
        if kind != "user" and step.get("user_id") is not None:
            problems.setdefault(index, {})["user_id"] = ["Only a user step names a user."]
    if problems:
        errors["approval_steps"] = problems


def _check_tasks(tasks: list[dict], deliver_ci_class: str | None, errors: dict) -> list[dict]:
    """The task templates as stored: a stage each (default: one after another), and the task that
    delivers the CI (the one flagged, else the last) when the item delivers one."""
    problems = {}
    stored = []
    for index, task in enumerate(tasks):
        if task.get("team_id") is not None and db.session.get(Team, task["team_id"]) is None:
            problems[index] = {"team_id": [f"No team with id {task['team_id']}."]}
        stored.append(
            {
                "title": task["title"],
                "description": task.get("description") or "",
                "team_id": task.get("team_id"),
                "stage": task.get("stage") or index + 1,
                "delivers_ci": bool(task.get("delivers_ci")),
            }
        )
    flagged = [t for t in stored if t["delivers_ci"]]
    if len(flagged) > 1:
        errors["tasks"] = {"_schema": ["At most one task delivers the CI."]}
    elif flagged and not deliver_ci_class:  # the item delivers nothing (any more)
        for task in stored:
            task["delivers_ci"] = False
    elif deliver_ci_class and not stored:
        errors["tasks"] = {"_schema": ["An item that delivers a CI needs a task to deliver it."]}
    elif deliver_ci_class and not flagged:
        stored[-1]["delivers_ci"] = True
    if problems:
        errors["tasks"] = problems
    return stored


def form_fields(item: CatalogueItem) -> list[tuple[Any, bool]]:
    """The item's form as (custom field definition, required) pairs; fields deleted since left out."""
    fields = current().fields_for("ticket", "request")
    return [
        (fields[entry["field"]], bool(entry.get("required")) or fields[entry["field"]].required)
        for entry in item.form or []
        if entry["field"] in fields
    ]


def check_form_values(item: CatalogueItem, given: dict | None) -> dict:
    """The form values of an order line, checked as custom field values are (cmdb.custom_fields.values)
    against the item's form: unknown names, wrong values, missing required ones and references to
    nothing are a ValidationError ``{name: [message]}``; defaults fill what was left out."""
    form = {definition.name: (definition, required) for definition, required in form_fields(item)}
    if given is not None and not isinstance(given, dict):
        raise ma.ValidationError({"_schema": ["Send an object of field names and values."]})
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in (given or {}).items():
        if name not in form:
            errors[name] = [f"Not a field of the form of {item.name}."]
        elif value is not None and value != "":
            try:
                values[name] = load_value(form[name][0], value)
            except ma.ValidationError as exc:
                errors[name] = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
    for name, (definition, required) in form.items():
        if name in values or name in errors:
            continue
        if definition.default is not None:
            values[name] = definition.default
        elif required:
            errors[name] = ["Missing data for required field."]
    check_references({name: form[name][0] for name in form}, values, errors)
    if errors:
        raise ma.ValidationError(errors)
    return values
