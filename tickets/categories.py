"""Ticket categories and subcategories, as data per ticket kind.

Two levels: a category of a kind, and subcategories under it (of the same kind). A ticket's
``category_id`` names either; it must exist, be active (its parent too) and be of the ticket's kind.
A ticket opened in a category with no team goes to the category's default team (the full routing
rules, with conditions and priorities, come with issue 20 "service desk"; this is their simplest
case). A category in use by tickets is never deleted (409): it is deactivated instead, which keeps
the tickets' history readable and takes it out of the forms.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, func, or_, select

from cairn.auth.models import Team, User
from cairn.auth.roles import REQUESTER
from cairn.db import MAX_ID, db
from cairn.errors import Conflict, Invalid, NotFound
from cmdb.custom_fields.models import CustomField
from tickets.models import KINDS, Ticket, TicketCategory

# The kinds a requester may open (tickets.services.create_ticket), hence the categories it may read.
REQUESTER_KINDS = ("incident", "request")
# At most this many categories and subcategories in all (each one is a choice in the ticket forms).
MAX_CATEGORIES = 1000
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
NAME_HELP = "1 to 60 lower-case letters, digits, _ or -, starting with a letter or digit."


def _requester(viewer: User | None) -> bool:
    return viewer is not None and viewer.role == REQUESTER


def search_categories(filters: dict[str, Any], viewer: User | None = None) -> Select:
    """The categories matching ``kind``, ``active``, ``parent_id`` (0: the top level), ``q``;
    a requester sees only the active ones of the kinds it may open. Ordered as a tree per kind."""
    c = TicketCategory
    stmt = select(c)
    if _requester(viewer):
        stmt = stmt.where(c.active.is_(True), c.kind.in_(REQUESTER_KINDS))
    if filters.get("kind"):
        stmt = stmt.where(c.kind.in_(filters["kind"]))
    if filters.get("active") is not None:
        stmt = stmt.where(c.active.is_(filters["active"]))
    if filters.get("parent_id") is not None:
        stmt = stmt.where(c.parent_id.is_(None) if filters["parent_id"] == 0 else c.parent_id == filters["parent_id"])
    if filters.get("q"):
        like = "%" + filters["q"].lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(func.lower(c.label).like(like, escape="\\"), c.name.like(like, escape="\\")))
    return stmt.order_by(c.kind, func.coalesce(c.parent_id, c.id), c.parent_id.is_not(None), c.label, c.id)


def get_category(category_id: int, viewer: User | None = None, *, for_update: bool = False) -> TicketCategory:
    """The category, or NotFound (also for one a requester may not read)."""
    category = None
    if 0 < category_id <= MAX_ID:
        lock = {"of": TicketCategory} if for_update else None
        category = db.session.get(TicketCategory, category_id, with_for_update=lock)
    if category is None or (_requester(viewer) and (not category.active or category.kind not in REQUESTER_KINDS)):
        raise NotFound(f"No ticket category with id {category_id}.")
    return category


def path_of(category: TicketCategory) -> str:
    """ "Hardware > Laptop" for a subcategory, the label alone for a category."""
    return f"{category.parent.label} > {category.label}" if category.parent is not None else category.label


def tree(kind: str | None = None, *, active_only: bool = False) -> dict[str, list[tuple[TicketCategory, list]]]:
    """Per kind, each category with its subcategories: what the forms and the admin page show."""
    stmt = search_categories({"kind": [kind] if kind else None, "active": True if active_only else None})
    rows = list(db.session.scalars(stmt))
    result: dict[str, list[tuple[TicketCategory, list]]] = {k: [] for k in ([kind] if kind else KINDS)}
    children: dict[int, list] = {}
    for row in rows:
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row)
    for row in rows:
        if row.parent_id is None:
            result.setdefault(row.kind, []).append((row, children.get(row.id, [])))
    return result


def _check_parent(kind: str, parent_id: int | None, errors: dict, current: TicketCategory | None) -> None:
    if parent_id is None:
        return
    parent = db.session.get(TicketCategory, parent_id) if 0 < parent_id <= MAX_ID else None
    if parent is None:
        errors["parent_id"] = [f"No ticket category with id {parent_id}."]
    elif parent.kind != kind:
        errors["parent_id"] = [f"Category {parent_id} is of kind {parent.kind}, not {kind}."]
    elif parent.parent_id is not None:
        errors["parent_id"] = [f"Category {parent_id} is a subcategory; subcategories hold no others."]
    elif current is not None and parent.id == current.id:
        errors["parent_id"] = ["A category cannot be its own parent."]
    elif current is not None and _children_count(current):
        errors["parent_id"] = ["This category has subcategories: it can't become one."]


def _children_count(category: TicketCategory) -> int:
    return db.session.scalar(select(func.count()).where(TicketCategory.parent_id == category.id))


def _check_fields(data: dict[str, Any], errors: dict) -> None:
    if "name" in data and not NAME.match(data["name"] or ""):
        errors["name"] = [NAME_HELP]
    if "label" in data and not (0 < len((data["label"] or "").strip()) <= 100):
        errors["label"] = ["1 to 100 characters."]
    team_id = data.get("default_team_id")
    if team_id is not None and (not 0 < team_id <= MAX_ID or db.session.get(Team, team_id) is None):
        errors["default_team_id"] = [f"No team with id {team_id}."]


def _check_unique(kind: str, parent_id: int | None, name: str, current: TicketCategory | None) -> None:
    c = TicketCategory
    same = select(c.id).where(c.kind == kind, c.name == name)
    same = same.where(c.parent_id.is_(None) if parent_id is None else c.parent_id == parent_id)
    if current is not None:
        same = same.where(c.id != current.id)
    if db.session.scalar(same.limit(1)) is not None:
        where = "at the top level" if parent_id is None else f"under category {parent_id}"
        raise Conflict(f"A {kind} category named {name!r} exists {where} already.", errors={"name": ["In use."]})


def create_category(data: dict[str, Any]) -> TicketCategory:
    """Add a category (``parent_id`` unset) or a subcategory: ``name`` (unique among its siblings),
    ``label``, ``kind``, ``default_team_id``, ``active``. 422 for bad fields, 409 for a name in use
    or past ``MAX_CATEGORIES``."""
    errors: dict[str, list[str]] = {}
    kind = data.get("kind")
    if kind not in KINDS:
        errors["kind"] = [f"Choose one of {', '.join(KINDS)}."]
    _check_fields(data, errors)
    if kind in KINDS:
        _check_parent(kind, data.get("parent_id"), errors, None)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    _check_unique(kind, data.get("parent_id"), data["name"], None)
    if db.session.scalar(select(func.count()).select_from(TicketCategory)) >= MAX_CATEGORIES:
        raise Conflict(f"At most {MAX_CATEGORIES} ticket categories; deactivate or remove one first.")
    category = TicketCategory(
        name=data["name"],
        label=data["label"].strip(),
        kind=kind,
        parent_id=data.get("parent_id"),
        default_team_id=data.get("default_team_id"),
        active=data.get("active", True),
    )
    db.session.add(category)
    db.session.flush()
    return category


def update_category(category: TicketCategory, data: dict[str, Any]) -> TicketCategory:
    """Change the name, label, parent (same kind), default team, or deactivate (``active: false``:
    no new ticket takes it, nor its subcategories; the tickets that have it keep it)."""
    errors: dict[str, list[str]] = {}
    _check_fields(data, errors)
    if "parent_id" in data and data["parent_id"] != category.parent_id:
        _check_parent(category.kind, data["parent_id"], errors, category)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    if "name" in data or "parent_id" in data:
        _check_unique(
            category.kind, data.get("parent_id", category.parent_id), data.get("name", category.name), category
        )
    for key, value in data.items():
        setattr(category, key, value.strip() if key == "label" else value)
    db.session.flush()
    return category


def delete_category(category: TicketCategory) -> None:
    """Remove a category no ticket, subcategory or custom field uses; 409 saying how many otherwise."""
    used = db.session.scalar(select(func.count()).where(Ticket.category_id == category.id))
    if used:
        raise Conflict(f"{used} tickets are in this category; deactivate it instead (active: false).")
    children = _children_count(category)
    if children:
        raise Conflict(f"{children} subcategories are under this category; remove or move them first.")
    fields = [
        name
        for name, applies in db.session.execute(select(CustomField.name, CustomField.ticket_categories))
        if category.id in (applies or ())
    ]
    if fields:
        raise Conflict(
            f"{len(fields)} custom fields apply to this category ({', '.join(fields)[:200]}); "
            "change or delete them first."
        )
    db.session.delete(category)
    db.session.flush()


def check_ticket_category(kind: str, category_id: int | None, errors: dict) -> TicketCategory | None:
    """The category a ticket of ``kind`` is put in, or an error under ``category_id``: it must
    exist, be active (and its parent too) and be of the ticket's kind. Read with a shared lock (on
    PostgreSQL), so a concurrent delete waits for this ticket and then sees it in use."""
    if category_id is None:
        return None
    category = None
    if 0 < category_id <= MAX_ID:
        stmt = (
            select(TicketCategory).where(TicketCategory.id == category_id).with_for_update(read=True, of=TicketCategory)
        )
        category = db.session.scalar(stmt)
    if category is None:
        errors["category_id"] = [f"No ticket category with id {category_id}."]
    elif category.kind != kind:
        errors["category_id"] = [f"Category {category_id} is for {category.kind} tickets, not {kind}."]
    elif not category.active or (category.parent is not None and not category.parent.active):
        errors["category_id"] = [f"Category {category_id} is inactive."]
    else:
        return category
    return None


def default_team_id(category: TicketCategory | None, assignee_id: int | None) -> int | None:
    """The team a new ticket in ``category`` goes to when it names none: the category's default
    team, else its parent's; not when the chosen assignee is outside that team."""
    while category is not None:
        team_id = category.default_team_id
        if team_id is not None:
            if assignee_id is None:
                return team_id
            team = db.session.get(Team, team_id)
            return team_id if team is not None and any(m.id == assignee_id for m in team.members) else None
        category = category.parent
    return None
