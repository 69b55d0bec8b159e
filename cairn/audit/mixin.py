"""`Audited`: mark a model and every write to it lands in the change log, in the same transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import event, insert, inspect, literal_column, text
from sqlalchemy.orm import Session, object_session

from cairn.audit.context import current_actor, current_request_id
from cairn.audit.models import ChangeLog, ChangeLogCI
from cairn.db import utcnow

ALWAYS_EXCLUDED = frozenset({"updated_at", "created_at", "version", "password_hash", "token_hash"})


class Audited:
    """Mixin for models whose writes are recorded.

    Subclasses may set ``__audit_type__`` (defaults to the table name), ``__audit_exclude__`` (column
    keys left out of diffs) and override ``audit_summary`` and ``audit_ci_ids``.
    """

    __audit_exclude__: frozenset[str] = frozenset()

    @classmethod
    def audit_type(cls) -> str:
        return getattr(cls, "__audit_type__", None) or cls.__tablename__

    def audit_summary(self, action: str) -> str:
        name = getattr(self, "name", None) or getattr(self, "title", None) or f"#{self.id}"
        return f"{self.audit_type()} {name} {action}d"[:300]

    def audit_ci_ids(self) -> set[int]:
        """CIs, other than this object itself, whose history should show this change."""
        return set()


def jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return str(value)


def _columns(obj):
    mapper = inspect(obj).mapper
    excluded = ALWAYS_EXCLUDED | obj.__audit_exclude__
    return [attr for attr in mapper.column_attrs if attr.key not in excluded]


def _diff_for_update(obj) -> dict:
    state = inspect(obj)
    changes = {}
    for attr in _columns(obj):
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        before = history.deleted[0] if history.deleted else None
        after = history.added[0] if history.added else None
        if jsonable(before) != jsonable(after):
            changes[attr.key] = [jsonable(before), jsonable(after)]
    return changes


def _snapshot(obj, *, as_after: bool) -> dict:
    changes = {}
    for attr in _columns(obj):
        value = jsonable(getattr(obj, attr.key))
        if value is None:
            continue
        changes[attr.key] = [None, value] if as_after else [value, None]
    return changes


PENDING_KEY = "cairn_audit_pending"
OVERRIDES_KEY = "cairn_audit_as"


def _pending(target) -> list | None:
    session = object_session(target)
    return None if session is None else session.info.setdefault(PENDING_KEY, [])


def _on_insert(_mapper, _connection, target) -> None:
    pending = _pending(target)
    if pending is not None:
        pending.append((target, "create", _snapshot(target, as_after=True), None))


def _on_update(_mapper, _connection, target) -> None:
    pending = _pending(target)
    if pending is None:
        return
    changes = _diff_for_update(target)
    override = object_session(target).info.get(OVERRIDES_KEY, {}).pop(id(target), None)
    if override is not None:
        action, summary, extra = override
        pending.append((target, action, {**changes, **extra}, summary))
    elif changes:
        pending.append((target, "update", changes, None))


def _on_delete(_mapper, _connection, target) -> None:
    # Mapper events see every deleted row, cascaded orphans included (session.deleted does not).
    pending = _pending(target)
    if pending is not None:
        pending.append((target, "delete", _snapshot(target, as_after=False), None))


def write_as(session: Session, obj: Audited, action: str, summary: str | None = None, extra: dict | None = None):
    """Flush ``obj``'s pending column changes as ONE change-log row under ``action`` (a ticket's
    ``transition`` or ``comment``) instead of a plain ``update``; ``extra`` joins the recorded changes.
    When the row itself did not change, the event is still recorded."""
    overrides = session.info.setdefault(OVERRIDES_KEY, {})
    overrides[id(obj)] = (action, summary, dict(extra or {}))
    try:
        session.flush()
    finally:
        leftover = overrides.pop(id(obj), None)
    if leftover is not None:
        record(session, obj, action, leftover[2], summary)


def record(session: Session, obj: Audited, action: str, changes: dict, summary: str | None = None):
    """Write one change-log row now, for domain events that are not plain column changes
    (a ticket transition, a relationship closed). Prefer letting the flush hook do it."""
    _write(session, [(obj, action, changes, summary)])


def _write(session: Session, entries) -> None:
    record_rows(
        session,
        [
            (obj.audit_type(), obj.id, action, changes, summary or obj.audit_summary(action), obj.audit_ci_ids())
            for obj, action, changes, summary in entries
        ],
    )


def record_rows(session: Session, entries: list[tuple[str, int, str, dict, str, set[int]]]) -> None:
    """Write change-log rows ``(object_type, object_id, action, changes, summary, ci_ids)`` in one
    go: for writes made without the ORM (bulk inserts), which the flush hook does not see."""
    if not entries:
        return
    from cairn.outbox import note_written

    note_written({entry[0] for entry in entries})
    actor = current_actor()
    request_id = current_request_id()
    now = utcnow()
    connection = session.connection()
    statement = insert(ChangeLog)
    if connection.dialect.name == "postgresql":
        statement = statement.values(txid=literal_column("pg_current_xact_id()::text::bigint"))
    rows = [
        {
            "at": now,
            "actor": actor.label,
            "actor_id": actor.user_id,
            "request_id": request_id,
            "object_type": object_type,
            "object_id": object_id,
            "action": action,
            "summary": summary[:300],
            "changes": changes,
        }
        for object_type, object_id, action, changes, summary, _ in entries
    ]
    ci_links = [entry[5] for entry in entries]
    if any(ci_links):
        # The links need each row's id. PostgreSQL: take the ids from the sequence in one query and
        # executemany (pipelined; one multi-row INSERT .. RETURNING of thousands of rows costs more
        # in the driver's placeholder parsing than in the database). SQLite: INSERT .. RETURNING.
        if connection.dialect.name == "postgresql" and len(rows) > 1:
            change_ids = reserve_ids(connection, "change_log", len(rows))
            connection.execute(statement, [{**row, "id": i} for row, i in zip(rows, change_ids, strict=True)])
        else:
            change_ids = connection.execute(
                statement.returning(ChangeLog.id, sort_by_parameter_order=True), rows
            ).scalars()
        links = [
            {"change_id": change_id, "ci_id": c}
            for change_id, ci_ids in zip(change_ids, ci_links, strict=True)
            for c in ci_ids
        ]
        if links:
            connection.execute(insert(ChangeLogCI), links)
    else:
        connection.execute(statement, rows)


def reserve_ids(connection, table: str, count: int) -> list[int]:
    """``count`` fresh ids from a PostgreSQL table's id sequence, in one round trip."""
    return list(
        connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table, "n": count},
        ).scalars()
    )


def _after_flush(session: Session, _flush_context) -> None:
    entries = session.info.pop(PENDING_KEY, None)
    if entries:
        _write(session, entries)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def install(session_class=None) -> None:
    """Hook the change log into every session of ``session_class`` (the app's) and every Audited
    model; the rows it writes nudge the outbox consumers once the transaction commits."""
    if session_class is None:
        from cairn.uow import UnitOfWorkSession as session_class
    if event.contains(session_class, "after_flush", _after_flush):
        return
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "after_soft_rollback", lambda session, _tx: _after_rollback(session))
    event.listen(Audited, "after_insert", _on_insert, propagate=True)
    event.listen(Audited, "after_update", _on_update, propagate=True)
    event.listen(Audited, "after_delete", _on_delete, propagate=True)
