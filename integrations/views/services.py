"""Saved views: who sees which (their own, and those shared with one of their teams), who changes
them (the owner; an admin may delete any), and what they may hold: filters and a sort the list's
own query schema accepts (the same rules as a call to the list), columns the list's answer has."""

from __future__ import annotations

import marshmallow as ma
from sqlalchemy import or_, select

from cairn.auth.models import Team, User, team_members
from cairn.auth.roles import ADMIN
from cairn.db import db, get_or_404
from cairn.errors import Conflict, Forbidden, Invalid, NotFound
from cmdb.schemas import CIQuerySchema, CISchema
from integrations.views.models import SavedView
from tickets.schemas import TicketQuerySchema, TicketSchema

# resource -> (its list's query schema, the fields of its answers)
LISTS = {
    "cis": (CIQuerySchema, tuple(CISchema().fields)),
    "tickets": (TicketQuerySchema, tuple(TicketSchema().fields)),
}
NOT_SAVED = ("format",)  # a query parameter that says how to answer, not what to list


def _team_ids(user: User) -> list[int]:
    return list(db.session.scalars(select(team_members.c.team_id).where(team_members.c.user_id == user.id)))


def visible_select(user: User, resource: str | None = None, team_id: int | None = None):
    """The views ``user`` sees: their own and those shared with one of their teams, by name."""
    stmt = select(SavedView).where(
        or_(SavedView.owner_id == user.id, SavedView.shared_with_team_id.in_(_team_ids(user) or [-1]))
    )
    if resource:
        stmt = stmt.where(SavedView.resource == resource)
    if team_id:
        stmt = stmt.where(SavedView.shared_with_team_id == team_id)
    return stmt.order_by(SavedView.resource, SavedView.name, SavedView.id)


def list_views(user: User, resource: str | None = None) -> list[SavedView]:
    return list(db.session.scalars(visible_select(user, resource)))


def get_view(view_id: int, user: User) -> SavedView:
    """A view ``user`` sees, else NotFound (another person's private view is not shown to exist)."""
    view = get_or_404(SavedView, view_id, f"No saved view with id {view_id}.")
    if view.owner_id != user.id and (
        view.shared_with_team_id is None or view.shared_with_team_id not in _team_ids(user)
    ):
        raise NotFound(f"No saved view with id {view_id}.")
    return view


def create_view(data: dict, user: User) -> SavedView:
    """Save a view for ``user``; raises Invalid (what the list would refuse) or Conflict (a view of
    theirs for that list has the name already)."""
    view = SavedView(owner_id=user.id, resource=data["resource"], filters={}, columns=[], sort="")
    _apply(view, data, user)
    db.session.add(view)
    db.session.flush()
    return view


def update_view(view: SavedView, data: dict, user: User) -> SavedView:
    """Change a view; only its owner may (Forbidden otherwise)."""
    if view.owner_id != user.id:
        raise Forbidden("Only the person who saved a view may change it.")
    if data.get("resource", view.resource) != view.resource:
        raise Invalid("A view's list cannot change.", errors={"resource": ["Save a new view for the other list."]})
    _apply(view, data, user)
    db.session.flush()
    return view


def delete_view(view: SavedView, user: User) -> None:
    """Delete a view: its owner, or an admin."""
    if view.owner_id != user.id and user.role != ADMIN:
        raise Forbidden("Only the person who saved a view, or an admin, may delete it.")
    db.session.delete(view)
    db.session.flush()


def _apply(view: SavedView, data: dict, user: User) -> None:
    query_schema, answer_fields = LISTS[view.resource]
    filters = data.get("filters", view.filters)
    sort = data.get("sort", view.sort) or ""
    columns = data.get("columns", view.columns)
    errors: dict = {}
    refused = [key for key in filters if key in NOT_SAVED or key in ("sort", "page", "page_size")]
    if refused:
        errors["filters"] = [f"Not a filter: {', '.join(sorted(refused))} (sort goes in sort)."]
    else:
        try:
            query_schema().load({**filters, **({"sort": sort} if sort else {})})
        except ma.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            for key, value in messages.items():
                errors["sort" if key == "sort" else f"filters.{key}"] = value
    unknown = [c for c in columns if c not in answer_fields]
    if unknown:
        errors["columns"] = [f"Not a field of the list: {', '.join(unknown[:10])}."]
    if len(set(columns)) != len(columns):
        errors.setdefault("columns", []).append("A column is named twice.")
    team_id = data.get("shared_with_team_id", view.shared_with_team_id)
    if "shared_with_team_id" in data and team_id is not None:
        if db.session.get(Team, team_id) is None:
            errors["shared_with_team_id"] = ["No team with that id."]
        elif team_id not in _team_ids(user) and user.role != ADMIN:
            errors["shared_with_team_id"] = ["Share with a team you belong to."]
    name = data.get("name", view.name)
    if errors:
        raise Invalid("The view cannot be saved.", errors=errors)
    taken = select(SavedView.id).where(
        SavedView.owner_id == view.owner_id, SavedView.resource == view.resource, SavedView.name == name
    )
    if view.id is not None:
        taken = taken.where(SavedView.id != view.id)
    if db.session.scalar(taken) is not None:
        raise Conflict(f"You have a view named {name!r} for this list already.", errors={"name": ["Taken."]})
    view.name, view.filters, view.sort, view.columns = name, dict(filters), sort, list(columns)
    view.shared_with_team_id = team_id
