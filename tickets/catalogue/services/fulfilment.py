"""Fulfilment: the tasks of an approved item open stage by stage; completing the last one fulfils
the item, and the last item closes the request. A delivering task deploys a CI from stock."""

from __future__ import annotations

from sqlalchemy import Select, select

from cairn.auth.models import User
from cairn.auth.roles import ADMIN, INTEGRATION
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Forbidden, Invalid, NotFound
from cmdb.custom_fields.registry import classes_under
from cmdb.models import ConfigurationItem
from cmdb.services import update_ci
from tickets import services as ticket_services
from tickets import workflow
from tickets.catalogue.models import (
    CatalogueRequestItem,
    CatalogueTask,
)
from tickets.models import Ticket

# The states of a request item that is finished.
DONE_ITEM_STATES = ("fulfilled", "rejected", "canceled")


def request_items(ticket: Ticket) -> list[CatalogueRequestItem]:
    return list(
        db.session.scalars(
            select(CatalogueRequestItem)
            .where(CatalogueRequestItem.ticket_id == ticket.id)
            .order_by(CatalogueRequestItem.position)
        )
    )


def check_open(ticket: Ticket) -> None:
    """A request canceled (or closed) through its ticket takes no more decisions nor work."""
    if ticket.state in workflow.CLOSED_STATES:
        raise Conflict(f"{ticket.number} is {ticket.state}; its order takes no more approvals or work.")


def start_fulfilment(item: CatalogueRequestItem) -> None:
    item.state = "fulfilment"
    ticket = item.ticket
    if ticket.state == "new":
        ticket_services.transition(ticket, "in_progress", {}, None, system=True)
    _open_next_stage(item)


def _open_next_stage(item: CatalogueRequestItem) -> None:
    """Open the pending tasks of the lowest stage left, or fulfil the item when none is left."""
    if any(task.state == "open" for task in item.work):
        return
    pending = [task for task in item.work if task.state == "pending"]
    if not pending:
        item.state = "fulfilled"
        db.session.flush()
        _close_if_done(item.ticket)
        return
    stage = min(task.stage for task in pending)
    now = utcnow()
    for task in pending:
        if task.stage == stage:
            task.state, task.opened_at = "open", now
            if task.delivers_ci_class and _stock(task.delivers_ci_class).first() is None:
                task.note = f"No {task.delivers_ci_class} is in stock: this task waits until one is."


def _close_if_done(ticket: Ticket) -> None:
    items_ = request_items(ticket)
    if not items_ or any(item.state not in DONE_ITEM_STATES for item in items_):
        return
    if ticket.state in workflow.DONE_STATES:
        return
    names = ", ".join(item.catalogue_item.name for item in items_)
    ticket_services.transition(
        ticket,
        "resolved",
        {"note": f"Fulfilled: {names}.", "resolution_code": "fulfilled"},
        None,
        system=True,
    )
    ticket_services.transition(ticket, "closed", {}, None, system=True)


def _stock(ci_class: str):
    """The id of the oldest CI of ``ci_class`` (or a class under it) in stock, as a result."""
    return db.session.scalars(
        select(ConfigurationItem.id)
        .where(ConfigurationItem.ci_class.in_(classes_under(ci_class)), ConfigurationItem.status == "in_stock")
        .order_by(ConfigurationItem.id)
        .limit(1)
    )


def tasks_for(
    user: User, *, state: str | None = "open", team_id: int | None = None, mine: bool = False, ticket_id=None
) -> Select:
    """Fulfilment tasks: by state, team, request; ``mine``: those of the user's teams."""
    stmt = select(CatalogueTask).order_by(CatalogueTask.opened_at, CatalogueTask.id)
    if state:
        stmt = stmt.where(CatalogueTask.state == state)
    if state in ("open", "pending"):  # not those of a request canceled through its ticket
        open_tickets = select(Ticket.id).where(Ticket.state.not_in(workflow.CLOSED_STATES))
        stmt = stmt.where(CatalogueTask.ticket_id.in_(open_tickets))
    if team_id is not None:
        stmt = stmt.where(CatalogueTask.team_id == team_id)
    if ticket_id is not None:
        stmt = stmt.where(CatalogueTask.ticket_id == ticket_id)
    if mine:
        team_ids = [team.id for team in user.teams] or [0]
        stmt = stmt.where(CatalogueTask.team_id.in_(team_ids) | (CatalogueTask.assignee_id == user.id))
    return stmt


def get_task(task_id: int) -> CatalogueTask:
    task = db.session.get(CatalogueTask, task_id) if 0 < task_id <= MAX_ID else None
    if task is None:
        raise NotFound(f"No fulfilment task with id {task_id}.")
    return task


def may_work(task: CatalogueTask, user: User) -> bool:
    """Admins and integrations work any task; anyone else the tasks of their teams."""
    if user.role in (ADMIN, INTEGRATION) or task.team_id is None:
        return True
    return any(team.id == task.team_id for team in user.teams)


def complete_task(task: CatalogueTask, user: User, note: str = "", ci_id: int | None = None) -> CatalogueTask:
    """Complete an open task; the next stage opens when its stage is done, the request closes when
    every item is fulfilled. A task that delivers a CI takes ``ci_id`` (one of the class, in stock)
    or the oldest in stock, moves it to ``deployed`` and assigns it to the person the order is for;
    with none in stock it is 409 and the task stays open. 403 for someone outside the task's team,
    409 for a task not open (pending an earlier stage, done, canceled)."""
    ticket = ticket_services.get_ticket(task.ticket_id, None, for_update=True)
    db.session.refresh(task)
    if not may_work(task, user):
        raise Forbidden(f"Task {task.id} is for team {task.team.name if task.team else ''}; you are not in it.")
    if task.state in ("pending", "open"):
        check_open(ticket)
    if task.state == "pending":
        raise Conflict(
            f"Task {task.title!r} of {ticket.number} waits for the tasks of an earlier stage.", state=task.state
        )
    if task.state != "open":
        raise Conflict(f"Task {task.title!r} of {ticket.number} is {task.state}.", state=task.state)
    item = task.request_item
    if task.delivers_ci_class:
        ci = _pick_stock(task, ci_id)
        update_ci(ci, {"status": "deployed", "assigned_to_id": item.requested_for_id})
        if ci.id not in ticket.ci_ids:
            ticket_services.add_ci(ticket, ci.id, None)
        task.delivered_ci_id = item.delivered_ci_id = ci.id
        note = (f"Delivered {ci.name}" + (f" ({ci.asset_tag})" if ci.asset_tag else "") + f". {note}").strip()
    elif ci_id is not None:
        raise Invalid("This task delivers no CI.", errors={"ci_id": ["This task delivers no CI."]})
    task.state, task.completed_at, task.completed_by_id = "done", utcnow(), user.id
    task.note = note[:2000]
    db.session.flush()
    _open_next_stage(item)
    db.session.flush()
    return task


def _pick_stock(task: CatalogueTask, ci_id: int | None) -> ConfigurationItem:
    wanted = classes_under(task.delivers_ci_class)
    if ci_id is not None:
        ci = (
            db.session.get(ConfigurationItem, ci_id, with_for_update={"of": ConfigurationItem})
            if ci_id <= MAX_ID
            else None
        )
        if ci is None or ci.ci_class not in wanted or ci.status != "in_stock":
            raise Invalid(
                "Not a CI to deliver.", errors={"ci_id": [f"Choose a {task.delivers_ci_class} that is in_stock."]}
            )
        return ci
    stmt = (
        select(ConfigurationItem)
        .where(ConfigurationItem.ci_class.in_(wanted), ConfigurationItem.status == "in_stock")
        .order_by(ConfigurationItem.id)
        .limit(1)
        .with_for_update(of=ConfigurationItem, skip_locked=True)
    )
    ci = db.session.scalar(stmt)
    if ci is None:
        task.note = f"No {task.delivers_ci_class} is in stock: this task waits until one is."
        raise Conflict(
            f"No {task.delivers_ci_class} is in stock; the task stays open until one is.",
            ci_class=task.delivers_ci_class,
        )
    return ci


def stock_of(ci_class: str, limit: int = 50) -> list[ConfigurationItem]:
    """CIs a technician may pick to deliver."""
    return list(
        db.session.scalars(
            select(ConfigurationItem)
            .where(ConfigurationItem.ci_class.in_(classes_under(ci_class)), ConfigurationItem.status == "in_stock")
            .order_by(ConfigurationItem.name, ConfigurationItem.id)
            .limit(limit)
        )
    )
