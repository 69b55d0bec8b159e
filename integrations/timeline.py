"""A CI's timeline: its change history, its tickets and who held it, merged into one list, newest first.

It reads across three domains (the change log of ``cairn.audit``, the assignments of ``cmdb``, the
tickets of ``tickets``), so it lives with the other cross-domain readers. The technician's CI page
shows it (web/cis.py); anything else that wants "what happened to this CI" calls :func:`ci_timeline`.

Each source is read as a bounded window (at most ``limit + 1`` rows, by an index, from a cursor), the
windows are merged and cut: a page costs the same for a CI with ten entries as for one with a hundred
thousand. Paging is by cursor (the last shown entry's position), so rows written while someone pages
never shift a page or show an entry twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from cairn.audit.models import ChangeLog, ChangeLogCI
from cairn.auth.models import User
from cairn.auth.policy import restricted
from cairn.errors import Invalid
from cmdb.models import CIAssignment, ConfigurationItem
from tickets.models import Ticket, TicketCI
from tickets.services import ticket_visibility

# What a reader can ask for: the CI's own changes (and those of its asset records and external
# ids), its relationships coming and going, its tickets (opened, moved, commented), its holders.
KINDS = ("change", "relationship", "ticket", "assignment")
MAX_LIMIT = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(\d{1,17})\.(\d)\.(\d{1,19})$")


@dataclass(frozen=True)
class TimelineEntry:
    """One event. ``kind`` is one of KINDS; ``event`` says what happened: the change-log action
    (create, update, delete, ...) for changes and relationships; ``opened``, ``transition`` or
    ``comment`` for a ticket; ``assigned`` or ``returned`` for an assignment. ``change`` is the
    change-log row of the event (if it comes from the change log), ``ticket`` the ticket it is
    about, ``assignment`` the assignment."""

    at: datetime
    kind: str
    event: str
    rank: int
    row_id: int
    change: ChangeLog | None = None
    ticket: Ticket | None = None
    assignment: CIAssignment | None = None

    @property
    def cursor(self) -> str:
        """Where the page after this entry starts (opaque to readers; see ``parse_cursor``)."""
        return f"{_micros(self.at)}.{self.rank}.{self.row_id}"

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, self.rank, self.row_id)


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None  # None: this is the oldest page


@dataclass(frozen=True)
class _Cursor:
    at: datetime
    rank: int
    row_id: int


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _micros(value: datetime) -> int:
    delta = _aware(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_cursor(raw: str | None) -> _Cursor | None:
    """A cursor from ``TimelineEntry.cursor``; None for none; Invalid (422) for anything else."""
    if raw in (None, ""):
        return None
    match = _CURSOR.match(raw)
    if not match:
        raise Invalid("Not a timeline position; use the links the page gives.", errors={"before": ["Not valid."]})
    micros, rank, row_id = (int(group) for group in match.groups())
    try:
        at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise Invalid("Not a timeline position; use the links the page gives.", errors={"before": ["Not valid."]})
    return _Cursor(at, rank, row_id)


def _before(column, id_column, rank: int, cursor: _Cursor | None):
    """The rows of a source of rank ``rank`` that sort after ``cursor`` (newest first, ties broken
    by rank, then id, both descending)."""
    if cursor is None:
        return None
    if rank < cursor.rank:
        return column <= cursor.at
    if rank > cursor.rank:
        return column < cursor.at
    return or_(column < cursor.at, and_(column == cursor.at, id_column < cursor.row_id))


def _window(stmt, column, id_column, rank: int, cursor: _Cursor | None, limit: int):
    condition = _before(column, id_column, rank, cursor)
    if condition is not None:
        stmt = stmt.where(condition)
    return stmt.order_by(column.desc(), id_column.desc()).limit(limit + 1)


# Each source: (rank, the kind it serves, fetch(ci, viewer, kinds, cursor, limit) -> entries).
_Source = tuple[int, tuple[str, ...], Callable[..., Iterable[TimelineEntry]]]


def _changes(session, ci: ConfigurationItem, viewer, kinds: set[str], cursor, limit) -> Iterable[TimelineEntry]:
    """The change log of the CI, its external ids and asset records, and (for viewers who see every
    CI) its relationships. Tickets and assignments have sources of their own: their change-log rows
    are left out here so nothing shows twice. The CI's own rows and the rows linked to it are read
    by two queries, each by its index (one query with an OR reads the whole change log)."""
    log = ChangeLog
    queries = []
    if "change" in kinds:
        queries.append(select(log).where(log.object_type == "ci", log.object_id == ci.id))
    if not restricted(viewer):  # the linked rows name CIs and tickets a restricted viewer may not see
        related = select(ChangeLogCI.change_id).where(ChangeLogCI.ci_id == ci.id)
        stmt = select(log).where(
            log.id.in_(related),
            log.object_type != "ci",
            log.object_type != "ci_assignment",
            log.object_type.not_like("ticket%"),
        )
        if "change" not in kinds:
            stmt = stmt.where(log.object_type == "relationship")
        elif "relationship" not in kinds:
            stmt = stmt.where(log.object_type != "relationship")
        queries.append(stmt)
    for stmt in queries:
        for row in session.scalars(_window(stmt, log.at, log.id, 0, cursor, limit)):
            kind = "relationship" if row.object_type == "relationship" else "change"
            yield TimelineEntry(row.at, kind, row.action, 0, row.id, change=row)


def _tickets_of(ci: ConfigurationItem, viewer):
    linked = select(TicketCI.ticket_id).where(TicketCI.ci_id == ci.id, TicketCI.removed_at.is_(None))
    stmt = select(Ticket).where(Ticket.id.in_(linked))
    visibility = ticket_visibility(viewer)
    return stmt if visibility is None else stmt.where(visibility)


def _opened(session, ci, viewer, kinds, cursor, limit) -> Iterable[TimelineEntry]:
    stmt = _window(_tickets_of(ci, viewer), Ticket.created_at, Ticket.id, 1, cursor, limit)
    for ticket in session.scalars(stmt):
        yield TimelineEntry(ticket.created_at, "ticket", "opened", 1, ticket.id, ticket=ticket)


# What a ticket's change log adds to its CIs' timelines: its moves (resolved included) and its
# comments and work notes. Its other rows (field edits, links, watchers) stay on the ticket's page.
TICKET_ACTIVITY = ("transition", "comment")


def _ticket_activity(session, ci, viewer, kinds, cursor, limit) -> Iterable[TimelineEntry]:
    """The moves and comments of the tickets about the CI, from the change log (for viewers who see
    every ticket: the rows carry work notes)."""
    if restricted(viewer):
        return
    log = ChangeLog
    related = select(ChangeLogCI.change_id).where(ChangeLogCI.ci_id == ci.id)
    stmt = select(log).where(log.id.in_(related), log.object_type == "ticket", log.action.in_(TICKET_ACTIVITY))
    rows = list(session.scalars(_window(stmt, log.at, log.id, 2, cursor, limit)))
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_({r.object_id for r in rows})))}
    for row in rows:
        yield TimelineEntry(row.at, "ticket", row.action, 2, row.id, change=row, ticket=tickets.get(row.object_id))


def _assigned(session, ci, viewer, kinds, cursor, limit) -> Iterable[TimelineEntry]:
    stmt = select(CIAssignment).where(CIAssignment.ci_id == ci.id)
    for row in session.scalars(_window(stmt, CIAssignment.assigned_from, CIAssignment.id, 3, cursor, limit)):
        yield TimelineEntry(row.assigned_from, "assignment", "assigned", 3, row.id, assignment=row)


def _returned(session, ci, viewer, kinds, cursor, limit) -> Iterable[TimelineEntry]:
    stmt = select(CIAssignment).where(CIAssignment.ci_id == ci.id, CIAssignment.assigned_until.is_not(None))
    for row in session.scalars(_window(stmt, CIAssignment.assigned_until, CIAssignment.id, 4, cursor, limit)):
        yield TimelineEntry(row.assigned_until, "assignment", "returned", 4, row.id, assignment=row)


_SOURCES: tuple[_Source, ...] = (
    (0, ("change", "relationship"), _changes),
    (1, ("ticket",), _opened),
    (2, ("ticket",), _ticket_activity),
    (3, ("assignment",), _assigned),
    (4, ("assignment",), _returned),
)


def ci_timeline(
    ci: ConfigurationItem,
    viewer: User | None,
    *,
    kinds: Iterable[str] | None = None,
    before: str | None = None,
    limit: int = 50,
) -> TimelinePage:
    """One page of ``ci``'s timeline as ``viewer`` may see it, newest first: its change-log rows (and
    those of its external ids, asset records and, for viewers who see every CI, relationships), its
    tickets opened (and, for viewers who see every ticket, their moves, comments and work notes),
    and its holders assigned and returned. ``kinds`` keeps only those
    of KINDS (None or empty: all); ``before`` is the ``next_cursor`` of the page before. Unknown
    kinds, a bad cursor or a limit out of 1..MAX_LIMIT are Invalid (422)."""
    from cairn.db import db

    wanted = set(kinds or KINDS)
    unknown = sorted(wanted - set(KINDS))
    if unknown:
        raise Invalid(
            f"Unknown timeline kinds: {', '.join(unknown)}.", errors={"kind": [f"One of: {', '.join(KINDS)}."]}
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("Too many or too few entries asked.", errors={"limit": [f"Between 1 and {MAX_LIMIT}."]})
    cursor = parse_cursor(before)
    entries: list[TimelineEntry] = []
    for _rank, serves, fetch in _SOURCES:
        if wanted.intersection(serves):
            entries.extend(fetch(db.session, ci, viewer, wanted, cursor, limit))
    entries.sort(key=lambda e: (_aware(e.at), e.rank, e.row_id), reverse=True)
    shown = entries[:limit]
    more = len(entries) > limit
    return TimelinePage(shown, shown[-1].cursor if more and shown else None)
