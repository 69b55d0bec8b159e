"""Bulk edit of tickets (PATCH /tickets): the same fields to set on the tickets named by id or
matched by the list's filter, each through update_ticket (the rules of PATCH /tickets/{id}: a
closed ticket is refused, a change's window checked, priority and SLA follow). All are changed in
memory, then written at once (cmdb.bulk_updates: an executemany UPDATE per shape of change, each row
guarded by its version; a refused ticket is expired, so it fails alone); should the database
refuse that flush, they are replayed one by one, each in a savepoint. One change-log row per
ticket that changed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cairn.auth.models import User
from cairn.db import db, id_in
from cairn.errors import DomainError
from cmdb.bulk_edit import list_filter, matched, missing_result
from cmdb.bulk_updates import flush_updates
from tickets.models import Ticket, TicketCI
from tickets.schemas import TicketQuerySchema
from tickets.services import search_tickets, update_ticket, visible_tickets
from tickets.slas import clocks


def bulk_edit_tickets(data: dict, user: User) -> list[dict]:
    """Apply ``data["set_"]`` to the tickets of ``data["ids"]`` or ``data["filter"]`` that ``user``
    sees; per-ticket results in the order of ``ids`` (or of the matches, by id)."""
    changes, dry_run = data["set_"], data["dry_run"]
    if "ids" in data:
        ids = data["ids"]
        stmt = visible_tickets(user).where(id_in(Ticket.id, ids))
        found = {ticket.id: ticket for ticket in db.session.scalars(stmt.with_for_update(of=Ticket))}
        targets = [(index, found.get(ticket_id), ticket_id) for index, ticket_id in enumerate(ids)]
    else:
        stmt = search_tickets(list_filter(data["filter"], TicketQuerySchema), user)
        targets = [(index, ticket, ticket.id) for index, ticket in enumerate(matched(stmt, Ticket.id, "tickets"))]
    outer = db.session.begin_nested() if dry_run else None
    try:
        results = _edit_at_once(targets, changes, user)
        if results is None:  # the database refused the batch: one at a time, each in a savepoint
            results = [_edit_one(index, ticket, ticket_id, changes, user) for index, ticket, ticket_id in targets]
    finally:
        if outer is not None:
            outer.rollback()
    return results


def _edit_at_once(targets, changes: dict, user: User) -> list[dict] | None:
    """Every ticket changed in memory, then one flush (a refused ticket is expired: its changes
    dropped); None when the flush fails, with nothing written."""
    results: list[dict] = []
    edited: list[Ticket] = []
    savepoint = db.session.begin_nested()
    try:
        with db.session.no_autoflush, clocks.prefetched(t.id for _, t, _ in targets if t is not None):
            for index, ticket, ticket_id in targets:
                if ticket is None:
                    results.append(missing_result(index, ticket_id))
                    continue
                try:
                    update_ticket(ticket, dict(changes), user, flush=False)
                except DomainError as exc:
                    db.session.expire(ticket)
                    results.append(_refused(index, ticket_id, exc))
                    continue
                modified = db.session.is_modified(ticket)
                if modified:
                    edited.append(ticket)
                results.append(_result(index, ticket_id, "updated" if modified else "unchanged"))
            # one executemany UPDATE per shape of change, not one per ticket
            flush_updates(edited, ci_ids_of=_linked_cis([t.id for t in edited]))
        db.session.flush()
    except SQLAlchemyError:
        savepoint.rollback()
        return None
    savepoint.commit()
    return results


def _linked_cis(ticket_ids: list[int]) -> dict[int, set[int]]:
    """The CIs each ticket is linked to (what its change-log rows name, Ticket.audit_ci_ids), in one query."""
    linked: dict[int, set[int]] = {}
    if ticket_ids:
        rows = db.session.connection().execute(
            select(TicketCI.ticket_id, TicketCI.ci_id).where(
                id_in(TicketCI.ticket_id, ticket_ids), TicketCI.removed_at.is_(None)
            )
        )
        for ticket_id, ci_id in rows:
            linked.setdefault(ticket_id, set()).add(ci_id)
    return linked


def _edit_one(index: int, ticket: Ticket | None, ticket_id: int, changes: dict, user: User) -> dict:
    if ticket is None:
        return missing_result(index, ticket_id)
    savepoint = db.session.begin_nested()
    version = ticket.version
    try:
        update_ticket(ticket, dict(changes), user)
    except (DomainError, SQLAlchemyError) as exc:
        savepoint.rollback()
        if isinstance(exc, DomainError):
            return _refused(index, ticket_id, exc)
        return _result(index, ticket_id, "error") | {"errors": {"_item": ["The database refused this change."]}}
    savepoint.commit()
    return _result(index, ticket_id, "updated" if ticket.version != version else "unchanged")


def _result(index: int, ticket_id: int, status: str) -> dict:
    return {"index": index, "id": ticket_id, "status": status, "errors": None, "detail": None}


def _refused(index: int, ticket_id: int, exc: DomainError) -> dict:
    errors = exc.errors or {"_item": [exc.detail]}
    return {"index": index, "id": ticket_id, "status": "error", "errors": errors, "detail": exc.detail}
