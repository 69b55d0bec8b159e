"""Approvals: the steps of a request item's chain open one after another (sequential) or at once
(any_of); each decision is a TicketApproval of the request ticket whose ``round`` is the step's number."""

from __future__ import annotations

from sqlalchemy import Select, exists, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cairn.auth.models import User
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Forbidden, NotFound
from tickets import services as ticket_services
from tickets import workflow
from tickets.catalogue.models import (
    CatalogueApprovalStep,
    CatalogueRequestItem,
)
from tickets.catalogue.services.fulfilment import check_open, request_items, start_fulfilment
from tickets.models import Ticket, TicketApproval


def start_approvals(item: CatalogueRequestItem) -> None:
    if not item.steps:
        start_fulfilment(item)
    elif item.approval_mode == "any_of":
        for step in item.steps:
            step.state = "open"
    else:
        item.steps[0].state = "open"


def approvals_for(user: User, *, state: str | None = "open") -> Select:
    """The approval steps in ``state`` (open by default) ``user`` is among the approvers of, oldest
    first: ``approver_ids @> [id]`` on PostgreSQL (JSONB), ``json_each`` on SQLite."""
    stmt = select(CatalogueApprovalStep).order_by(CatalogueApprovalStep.created_at, CatalogueApprovalStep.id)
    if state:
        stmt = stmt.where(CatalogueApprovalStep.state == state)
    if db.session.connection().dialect.name == "postgresql":
        among = type_coerce(CatalogueApprovalStep.approver_ids, JSONB).contains([user.id])
    else:
        listed = func.json_each(CatalogueApprovalStep.approver_ids).table_valued("value")
        among = exists(select(listed.c.value).where(listed.c.value == user.id))
    return stmt.where(among)


def my_open_approvals(user: User, limit: int = 200) -> list[CatalogueApprovalStep]:
    """The open steps ``user`` may still decide (listed among the approvers, not decided yet)."""
    found = []
    open_tickets = select(Ticket.id).where(Ticket.state.not_in(workflow.CLOSED_STATES))
    for step in db.session.scalars(approvals_for(user).where(CatalogueApprovalStep.ticket_id.in_(open_tickets))):
        if user.id in (step.approver_ids or []) and _decision_of(step, user) is None:
            found.append(step)
            if len(found) >= limit:
                break
    return found


def get_step(step_id: int, viewer: User) -> CatalogueApprovalStep:
    """An approval step its approvers and the staff may see (404 for anybody else)."""
    step = db.session.get(CatalogueApprovalStep, step_id) if 0 < step_id <= MAX_ID else None
    if step is None or not (
        viewer.id in (step.approver_ids or []) or ticket_services.can_see_ticket(viewer, step.request_item.ticket)
    ):
        raise NotFound(f"No approval with id {step_id}.")
    return step


def decisions_of(step: CatalogueApprovalStep) -> list[TicketApproval]:
    return list(
        db.session.scalars(
            select(TicketApproval)
            .where(TicketApproval.ticket_id == step.ticket_id, TicketApproval.round == step.number)
            .order_by(TicketApproval.id)
        )
    )


def _decision_of(step: CatalogueApprovalStep, user: User) -> TicketApproval | None:
    return db.session.scalar(
        select(TicketApproval).where(
            TicketApproval.ticket_id == step.ticket_id,
            TicketApproval.round == step.number,
            TicketApproval.approver_id == user.id,
        )
    )


def decide(step: CatalogueApprovalStep, decision: str, comment: str, user: User) -> CatalogueApprovalStep:
    """``user`` approves or rejects an open step it is an approver of. A rejection rejects the
    request (every item; the ticket is canceled with the reason); the approval that completes the
    chain opens the fulfilment tasks. 403 for someone not among the step's approvers; 409 for a step
    not open (waiting for an earlier one, or decided) or one the user decided already."""
    ticket = ticket_services.get_ticket(step.ticket_id, None, for_update=True)
    db.session.refresh(step)
    if user.id not in (step.approver_ids or []):
        raise Forbidden(f"You are not an approver of step {step.number} of {ticket.number}.")
    check_open(ticket)
    if _decision_of(step, user) is not None:
        raise Conflict(f"You have decided on step {step.number} of {ticket.number} already.")
    if step.state == "waiting":
        raise Conflict(f"Step {step.number} of {ticket.number} waits for the steps before it.", state=step.state)
    if step.state != "open":
        raise Conflict(f"Step {step.number} of {ticket.number} is {step.state}; it takes no more decisions.")
    db.session.add(
        TicketApproval(ticket_id=ticket.id, approver_id=user.id, round=step.number, decision=decision, comment=comment)
    )
    db.session.flush()
    now = utcnow()
    item = step.request_item
    if decision == "reject":
        step.state, step.decided_at = "rejected", now
        _reject(ticket, user, f"Rejected by {user.name or user.email} (step {step.number}): {comment}".strip())
        db.session.flush()
        return step
    approved = {a.approver_id for a in decisions_of(step) if a.decision == "approve"}
    if step.mode == "all" and not set(step.approver_ids) <= approved:
        db.session.flush()
        return step
    step.state, step.decided_at = "approved", now
    if item.approval_mode == "any_of":
        for other in item.steps:
            if other.state in ("open", "waiting"):
                other.state = "skipped"
        start_fulfilment(item)
    else:
        following = [s for s in item.steps if s.state == "waiting"]
        if following:
            following[0].state = "open"
        else:
            start_fulfilment(item)
    db.session.flush()
    return step


def _reject(ticket: Ticket, user: User, reason: str) -> None:
    for item in request_items(ticket):
        item.state = "rejected"
        for step in item.steps:
            if step.state in ("open", "waiting"):
                step.state = "skipped"
        for task in item.work:
            if task.state in ("pending", "open"):
                task.state = "canceled"
    db.session.flush()
    if ticket.state not in workflow.CLOSED_STATES:
        ticket_services.transition(ticket, "canceled", {"note": reason[:500]}, user, system=True)
