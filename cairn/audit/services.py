"""Reading the change log: the sync feed and object histories."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal_column, or_, select, tuple_

from cairn.audit.models import ChangeLog, ChangeLogCI
from cairn.db import db

_CURSOR = re.compile(r"^(\d{1,19})\.(\d{1,19})$")


# The gap-free feed's horizon on PostgreSQL: the oldest transaction id still running in *this*
# database, or the next id to be given when none is. Change-log rows at or above it are held back:
# a transaction older than a row already read may still commit below it. Transactions of other
# databases on the same server never write our change log, so they are left out when
# pg_stat_activity proves where they run (a long transaction elsewhere held every webhook and feed
# reader back until it ended). That proof never goes stale (a transaction id belongs to one backend
# and its database for good); what it cannot prove (a hidden or newer session) still holds the
# horizon, as before. Transaction ids in pg_stat_activity are 32-bit: compared to our 64-bit ids'
# low 32 bits (two running transactions are never 2^32 ids apart).
FEED_HORIZON_SQL = """(
SELECT LEAST(
  pg_snapshot_xmax(snap.s)::text::bigint,
  (SELECT min(running::text::bigint) FROM pg_snapshot_xip(snap.s) AS running
   WHERE running::text::bigint % 4294967296 NOT IN (
     SELECT elsewhere.backend_xid::text::bigint FROM pg_stat_activity AS elsewhere
     WHERE elsewhere.backend_xid IS NOT NULL
       AND elsewhere.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))))
FROM (SELECT pg_current_snapshot() AS s) AS snap)"""


def feed_horizon():
    """The SQL expression of the feed's horizon on PostgreSQL (see ``FEED_HORIZON_SQL``)."""
    return literal_column(FEED_HORIZON_SQL)


class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    txid: int
    id: int

    def __str__(self) -> str:
        return f"{self.txid}.{self.id}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        if raw in (None, "", "0"):
            return cls(0, 0)
        match = _CURSOR.match(raw)
        if not match:
            raise CursorError("not a cursor from this feed; use next_cursor as given")
        txid, row_id = int(match.group(1)), int(match.group(2))
        if txid >= 2**63 or row_id >= 2**63:
            raise CursorError("cursor out of range; use next_cursor as given")
        return cls(txid, row_id)


def feed(
    after: Cursor,
    limit: int = 100,
    object_types: list[str] | None = None,
    actions: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[ChangeLog], Cursor]:
    """Changes after ``after`` in commit order, and the cursor to continue from.

    On PostgreSQL only transactions older than the oldest one still running in this database are
    shown, so a change that commits late can never land behind a cursor a reader already holds.
    """
    stmt = select(ChangeLog).where(tuple_(ChangeLog.txid, ChangeLog.id) > tuple_(after.txid, after.id))
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.where(ChangeLog.txid < feed_horizon())
    if object_types:
        stmt = stmt.where(ChangeLog.object_type.in_(object_types))
    if actions:
        stmt = stmt.where(ChangeLog.action.in_(actions))
    if since is not None:
        stmt = stmt.where(ChangeLog.at >= since)
    if until is not None:
        stmt = stmt.where(ChangeLog.at < until)
    rows = list(db.session.scalars(stmt.order_by(ChangeLog.txid, ChangeLog.id).limit(limit)))
    next_cursor = Cursor(rows[-1].txid, rows[-1].id) if rows else after
    return rows, next_cursor


def history_select(object_type: str, object_id: int, *, include_related_ci: bool = False):
    """Select of an object's changes, newest first; for a CI also the changes that touched it
    (its relationships, tickets linked to it)."""
    own = (ChangeLog.object_type == object_type) & (ChangeLog.object_id == object_id)
    if include_related_ci:
        related = select(ChangeLogCI.change_id).where(ChangeLogCI.ci_id == object_id)
        condition = or_(own, ChangeLog.id.in_(related))
    else:
        condition = own
    return select(ChangeLog).where(condition).order_by(ChangeLog.id.desc())


def browse(
    before: int | None = None,
    limit: int = 50,
    *,
    object_types: list[str] | None = None,
    object_id: int | None = None,
    actions: list[str] | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[ChangeLog], int | None]:
    """The change log for people (the admin's browser), newest first: at most ``limit`` changes with
    an id below ``before``, filtered by object type (and id), action, actor (any part of the
    actor's name, any case) and time (``since`` inclusive, ``until`` exclusive, naive UTC). Returns
    the rows and the ``before`` of the next page (None on the last). Not a feed: a sync tool pages
    :func:`feed`, which never skips a change committed late."""
    stmt = select(ChangeLog)
    if before is not None:
        stmt = stmt.where(ChangeLog.id < before)
    if object_types:
        stmt = stmt.where(ChangeLog.object_type.in_(object_types))
    if object_id is not None:
        stmt = stmt.where(ChangeLog.object_id == object_id)
    if actions:
        stmt = stmt.where(ChangeLog.action.in_(actions))
    if actor:
        stmt = stmt.where(func.lower(ChangeLog.actor).contains(actor.lower(), autoescape=True))
    if since is not None:
        stmt = stmt.where(ChangeLog.at >= since)
    if until is not None:
        stmt = stmt.where(ChangeLog.at < until)
    rows = list(db.session.scalars(stmt.order_by(ChangeLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


def object_types() -> list[str]:
    """The object types the change log holds, for a filter's choices."""
    return list(db.session.scalars(select(ChangeLog.object_type).distinct().order_by(ChangeLog.object_type)))
