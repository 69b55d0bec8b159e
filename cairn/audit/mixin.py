"""`Audited`: mark a model and every write to it lands in the change log, in the same transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import event, insert, inspect, literal_column
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
    if not entries:
        return
    actor = current_actor()
    request_id = current_request_id()
    now = utcnow()
    connection = session.connection()
    statement = insert(ChangeLog)
    if connection.dialect.name == "postgresql":
        statement = statement.values(txid=literal_column("pg_current_xact_id()::text::bigint"))
    rows, ci_links = [], []
    for obj, action, changes, summary in entries:
        rows.append(
            {
                "at": now,
                "actor": actor.label,
                "actor_id": actor.user_id,
                "request_id": request_id,
                "object_type": obj.audit_type(),
                "object_id": obj.id,
                "action": action,
                "summary": summary or obj.audit_summary(action),
                "changes": changes,
            }
        )
        ci_links.append(obj.audit_ci_ids())
    if any(ci_links):
        # Needs each row's id back: one multi-row INSERT .. RETURNING in parameter order (bulk writes
        # of external ids or relationships flush thousands of rows at once).
        change_ids = connection.execute(statement.returning(ChangeLog.id, sort_by_parameter_order=True), rows).scalars()
        links = [
            {"change_id": change_id, "ci_id": c}
            for change_id, ci_ids in zip(change_ids, ci_links, strict=True)
            for c in ci_ids
        ]
        if links:
            connection.execute(insert(ChangeLogCI), links)
    else:
        connection.execute(statement, rows)


def _after_flush(session: Session, _flush_context) -> None:
    entries = session.info.pop(PENDING_KEY, None)
    if entries:
        _write(session, entries)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def install(session_class) -> None:
    """Hook the change log into every session of ``session_class`` and every Audited model."""
    if event.contains(session_class, "after_flush", _after_flush):
        return
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "after_soft_rollback", lambda session, _tx: _after_rollback(session))
    event.listen(Audited, "after_insert", _on_insert, propagate=True)
    event.listen(Audited, "after_update", _on_update, propagate=True)
    event.listen(Audited, "after_delete", _on_delete, propagate=True)
