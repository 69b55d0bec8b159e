"""Ordering: a request ticket with one request item per catalogue item, each with its approval
steps resolved to people and its tasks pending; and what an order looks like to the API and pages."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Select, select

from cairn.auth.models import Team, User
from cairn.auth.roles import ADMIN, INTEGRATION
from cairn.db import MAX_ID, db
from cairn.directory.models import DirectoryProfile
from cairn.errors import Conflict, Forbidden, Invalid, NotFound
from tickets import services as ticket_services
from tickets import workflow
from tickets.catalogue.models import (
    CatalogueApprovalStep,
    CatalogueItem,
    CatalogueRequestItem,
    CatalogueTask,
)
from tickets.catalogue.services.approvals import start_approvals
from tickets.catalogue.services.fulfilment import DONE_ITEM_STATES, request_items
from tickets.catalogue.services.items import MAX_LINES, check_form_values, get_item, may_order
from tickets.models import Ticket


def place_order(lines: list[dict], user: User, requested_for_id: int | None = None, note: str = "") -> Ticket:
    """Order catalogue items: a ``request`` ticket with one request item per line (``{item_id,
    fields}``), each item's approval chain resolved to people and started (or, without one, its
    fulfilment). 422 for an unknown item (``errors.items.<index>.item_id``), 403 for one the orderer
    may not order, 422 for form values (``errors.items.<index>.fields.<name>``) or an approval chain
    that names nobody."""
    if not lines:
        raise Invalid("Order at least one item.", errors={"items": ["Order at least one item."]})
    if len(lines) > MAX_LINES:
        raise Invalid(f"At most {MAX_LINES} items per order.", errors={"items": [f"At most {MAX_LINES}."]})
    requested_for = _requested_for(user, requested_for_id)
    catalogue_items, unknown = [], {}
    for index, line in enumerate(lines):  # an item named in the body that does not exist is a field error
        try:
            catalogue_items.append(get_item(line["item_id"]))
        except NotFound as exc:
            unknown[str(index)] = {"item_id": [exc.detail]}
    if unknown:
        raise Invalid("Some ordered items do not exist.", errors={"items": unknown})
    for item in catalogue_items:
        if not may_order(item, user):
            raise Forbidden(f"You may not order {item.name}.")
    errors: dict[str, Any] = {}
    values = []
    for index, (item, line) in enumerate(zip(catalogue_items, lines, strict=True)):
        try:
            values.append(check_form_values(item, line.get("fields")))
        except ma.ValidationError as exc:
            errors[str(index)] = {"fields": exc.messages}
            values.append({})
    if errors:
        raise Invalid("Some form values are invalid.", errors={"items": errors})
    plans = [_resolve_steps(item, requested_for, index, errors) for index, item in enumerate(catalogue_items)]
    if errors:
        raise Invalid("The approval chain names nobody who may approve.", errors={"items": errors})
    names = ", ".join(item.name for item in catalogue_items)
    description = "\n".join(
        [f"Ordered from the service catalogue for {requested_for.name or requested_for.email}: {names}."]
        + ([note.strip()] if note and note.strip() else [])
    )
    merged: dict[str, Any] = {}
    for line_values in values:
        for key, value in line_values.items():
            merged.setdefault(key, value)
    ticket = ticket_services.create_ticket(
        {
            "kind": "request",
            "title": f"Order: {names}"[:200],
            "description": description,
            "requester_id": requested_for.id,
            "custom_fields": merged,
        },
        user,
    )
    number = 0
    for position, (item, line_values, plan) in enumerate(zip(catalogue_items, values, plans, strict=True), 1):
        request_item = CatalogueRequestItem(
            ticket=ticket,
            catalogue_item=item,
            requested_for_id=requested_for.id,
            position=position,
            fields=line_values,
            state="approval",
            approval_mode=item.approval_mode,
        )
        db.session.add(request_item)
        for step in plan:
            number += 1
            db.session.add(CatalogueApprovalStep(ticket_id=ticket.id, request_item=request_item, number=number, **step))
        for index, template in enumerate(item.tasks or [], 1):
            db.session.add(
                CatalogueTask(
                    ticket=ticket,
                    request_item=request_item,
                    position=index,
                    stage=template["stage"],
                    title=template["title"],
                    description=template.get("description") or "",
                    team_id=template.get("team_id"),
                    delivers_ci_class=item.deliver_ci_class if template.get("delivers_ci") else None,
                    state="pending",
                    note="",
                )
            )
    db.session.flush()
    for request_item in request_items(ticket):
        db.session.refresh(request_item, ["steps", "work"])
        start_approvals(request_item)
    db.session.flush()
    return ticket


def _requested_for(user: User, requested_for_id: int | None) -> User:
    if requested_for_id is None or requested_for_id == user.id:
        return user
    if user.role not in (ADMIN, "agent", INTEGRATION):
        raise Invalid(
            "You order for yourself.", errors={"requested_for_id": ["Only the service desk orders for others."]}
        )
    other = db.session.get(User, requested_for_id) if 0 < requested_for_id <= MAX_ID else None
    if other is None or not other.active:
        raise Invalid("Unknown user.", errors={"requested_for_id": [f"No active user with id {requested_for_id}."]})
    return other


def manager_of(user: User) -> User | None:
    """The user's manager, as the directory says (DirectoryProfile.manager_id)."""
    manager_id = db.session.scalar(select(DirectoryProfile.manager_id).where(DirectoryProfile.user_id == user.id))
    manager = db.session.get(User, manager_id) if manager_id else None
    return manager if manager is not None and manager.active else None


def _resolve_steps(item: CatalogueItem, requested_for: User, index: int, errors: dict) -> list[dict]:
    """The item's approval steps with their approvers as of now; nobody approves their own order."""
    plan = []
    for number, step in enumerate(item.approval_steps or [], 1):
        team_id = None
        if step["kind"] == "manager":
            manager = manager_of(requested_for)
            approvers = [manager.id] if manager is not None else []
            missing = f"{requested_for.email} has no manager in the directory."
        elif step["kind"] == "team":
            team = db.session.get(Team, step["team_id"])
            team_id = team.id if team is not None else None
            approvers = [m.id for m in (team.members if team else []) if m.active]
            missing = f"Team {team.name if team else step['team_id']} has no member who may approve."
        else:
            approvers = [step["user_id"]]
            missing = "The approving user is the one the order is for."
        approvers = [a for a in approvers if a != requested_for.id]
        if not approvers:
            errors.setdefault(str(index), {}).setdefault("approval_steps", []).append(f"Step {number}: {missing}")
        plan.append(
            {
                "kind": step["kind"],
                "mode": step.get("mode") or "any",
                "team_id": team_id,
                "approver_ids": approvers,
                "state": "waiting",
            }
        )
    return plan


def orders_of(viewer: User) -> Select:
    """The request tickets placed from the catalogue that ``viewer`` may see, newest first."""
    ordered = select(CatalogueRequestItem.ticket_id)
    return (
        ticket_services.visible_tickets(viewer)
        .where(Ticket.id.in_(ordered))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )


def get_order(ticket_id: int, viewer: User | None, *, for_update: bool = False) -> Ticket:
    """The request ticket of an order (404 for any other ticket, or one the viewer may not see)."""
    ticket = ticket_services.get_ticket(ticket_id, viewer, for_update=for_update)
    if ticket.kind != "request" or not request_items(ticket):
        raise NotFound(f"No catalogue order with id {ticket_id}.")
    return ticket


def order_stage(items_: list[CatalogueRequestItem]) -> str:
    """Where an order stands: approval, fulfilment, fulfilled, rejected or canceled."""
    states = {item.state for item in items_}
    for stage in ("rejected", "canceled", "approval", "fulfilment"):
        if stage in states:
            return stage
    return "fulfilled"


def get_request_item(item_id: int, viewer: User) -> CatalogueRequestItem:
    """A request item its ticket's viewers may see (404 otherwise)."""
    item = db.session.get(CatalogueRequestItem, item_id) if 0 < item_id <= MAX_ID else None
    if item is None or not ticket_services.can_see_ticket(viewer, item.ticket):
        raise NotFound(f"No request item with id {item_id}.")
    return item


def update_item_fields(item: CatalogueRequestItem, given: dict, user: User) -> CatalogueRequestItem:
    """Change an ordered item's form values (merged: a null removes one), checked as on ordering
    against the catalogue item's form; the request ticket's copy of the first item's values
    follows. 409 once the item is fulfilled, rejected or canceled."""
    ticket = ticket_services.get_ticket(item.ticket_id, None, for_update=True)
    db.session.refresh(item)
    if item.state in DONE_ITEM_STATES or ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"Item {item.position} of {ticket.number} is {item.state}; its form can't change.")
    before = dict(item.fields or {})
    merged = {**before, **(given or {})}
    try:
        values = check_form_values(item.catalogue_item, {k: v for k, v in merged.items() if v is not None})
    except ma.ValidationError as exc:
        raise Invalid("Some form values are invalid.", errors={"fields": exc.messages}) from None
    item.fields = values
    if item.position == 1:
        changed = {k: v for k, v in values.items() if ticket.custom_fields.get(k) != v}
        changed.update({k: None for k in before if k not in values and k in ticket.custom_fields})
        if changed:
            ticket_services.update_ticket(ticket, {"custom_fields": changed}, user)
    db.session.flush()
    return item


def order_answer(ticket: Ticket) -> dict:
    """An order as the API and the pages show it: the ticket, its stage, its items (a request
    canceled through its ticket is canceled, whatever its items were doing)."""
    items_ = request_items(ticket)
    stage = order_stage(items_)
    if ticket.state == "canceled" and stage in ("approval", "fulfilment"):
        stage = "canceled"
    return {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "state": ticket.state,
        "stage": stage,
        "requester_id": ticket.requester_id,
        "cancel_reason": ticket.cancel_reason,
        "items": items_,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "ticket": ticket,
    }
