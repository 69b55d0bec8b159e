"""Set-based UPDATEs for bulk edits of versioned rows (CIs, tickets).

SQLAlchemy's flush sends one UPDATE per row for a mapper with a ``version_id_col``: it must check
each row's rowcount against its version (persistence._emit_update_statements never executemanys a
versioned UPDATE). A bulk edit of a thousand objects so pays a thousand round trips. ``flush_updates``
writes the column changes of many such objects as one executemany per shape of change (the same
changed columns), each row still guarded by its version (``WHERE id = :id AND version = :version``),
the summed rowcount checked (a stale row raises StaleDataError, so the caller's savepoint replays
one by one); psycopg pipelines the executemany.

What the flush would do besides is done here too, in the same transaction: the session's
``before_flush`` hooks run first on these objects (relations bumps the graph version when a CI's
status changes); each object gets its one change-log row through ``cairn.audit``'s recorder, with
the diff the flush hook would have written (by its rules: audited columns, JSON forms); the new
values become the objects' committed state; the relationships whose foreign keys moved are expired
(as ``cairn.uow`` does after a flush). Other pending changes (new or deleted objects, collections)
are left to the normal flush.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, bindparam, inspect, update
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from cairn.audit.mixin import ALWAYS_EXCLUDED, jsonable, record_rows
from cairn.db import db, utcnow

_ID, _VERSION, _NEW_VERSION = "b_id", "b_version", "b_new_version"


def _pending_columns(state) -> tuple[dict, dict]:
    """The object's changed column values by key (the attributes it holds a committed value of),
    and the change-log diff the flush hook would write of them (``[before, after]``, audited
    columns whose JSON form differs)."""
    changed, diff = {}, {}
    columns = state.mapper.column_attrs
    excluded = ALWAYS_EXCLUDED | state.class_.__audit_exclude__
    for key in list(state.committed_state):
        if key in columns:
            history = state.get_history(key, PASSIVE_NO_INITIALIZE)  # not state.attrs: it builds every attribute's
            if history.added and history.has_changes():
                changed[key] = after = history.added[0]
                before = history.deleted[0] if history.deleted else None
                if key not in excluded and jsonable(before) != jsonable(after):
                    diff[key] = [jsonable(before), jsonable(after)]
    return changed, diff


def flush_updates(objects, ci_ids_of: dict[int, set[int]] | None = None) -> int:
    """Write the pending column changes of ``objects`` (persistent, versioned, of one mapped class)
    as executemany UPDATEs, with their change-log rows; return how many rows were written. The rest
    of the session is left to the next flush. ``ci_ids_of`` ({id: CI ids}) saves asking each
    object its ``audit_ci_ids`` (the caller read them in one query)."""
    objects = [obj for obj in objects if obj is not None]
    if not objects:
        return 0
    session = db.session()
    states = [inspect(obj) for obj in objects]
    dirty = [s for s in states if s.persistent and s.modified]
    if not dirty:
        return 0
    mapper = dirty[0].mapper
    if mapper.version_id_col is None or any(s.mapper is not mapper for s in dirty):
        session.flush()
        return 0
    session.dispatch.before_flush(session, None, [s.obj() for s in dirty])
    version_key = mapper.get_property_by_column(mapper.version_id_col).key
    table = mapper.local_table
    now = utcnow()
    groups: dict[tuple[str, ...], list] = defaultdict(list)
    audit = []
    for state in dirty:
        changed, diff = _pending_columns(state)
        changed.pop(version_key, None)
        if not changed:
            continue
        if "updated_at" in mapper.attrs and "updated_at" not in changed:
            changed["updated_at"] = now
        if diff:
            audit.append((state.obj(), diff))
        groups[tuple(sorted(changed))].append((state, changed))
    written = 0
    connection = session.connection()
    id_column = mapper.primary_key[0]
    version_column = mapper.version_id_col
    for keys, members in groups.items():
        columns = {k: mapper.get_property(k).columns[0] for k in keys}
        values = {column: bindparam(f"v_{k}", type_=column.type) for k, column in columns.items()}
        values[version_column] = bindparam(_NEW_VERSION, type_=version_column.type)
        statement = (
            update(table).where(and_(id_column == bindparam(_ID), version_column == bindparam(_VERSION))).values(values)
        )
        params = []
        for state, changed in members:
            if version_key in state.committed_state:
                old = state.committed_state[version_key]
            else:
                with session.no_autoflush:
                    old = getattr(state.obj(), version_key)  # loaded when expired
            new = mapper.version_id_generator(old)
            changed[version_key] = new
            row = {f"v_{k}": changed[k] for k in keys}
            params.append({**row, _ID: state.identity[0], _VERSION: old, _NEW_VERSION: new})
        result = connection.execute(statement, params)
        if result.rowcount != len(params):
            raise StaleDataError(
                f"UPDATE of {table.name} expected {len(params)} rows, matched {result.rowcount}: changed meanwhile."
            )
        written += len(params)
        for state, changed in members:
            obj = state.obj()
            for key, value in changed.items():
                set_committed_value(obj, key, value)
            if not any(state.get_history(rel.key, PASSIVE_NO_INITIALIZE).has_changes() for rel in mapper.relationships):
                # nothing else pending: out of the session's dirty set, so the next flush skips it
                state._commit_all(state.dict, session.identity_map)
            moved = set(changed)
            stale = [rel.key for rel in mapper.relationships if {c.key for c in rel.local_columns} & moved]
            if stale:
                session.expire(obj, stale)
    if audit:
        record_rows(
            session,
            [
                (
                    obj.audit_type(),
                    obj.id,
                    "update",
                    diff,
                    obj.audit_summary("update"),
                    ci_ids_of.get(obj.id, set()) if ci_ids_of is not None else obj.audit_ci_ids(),
                )
                for obj, diff in audit
            ],
        )
    return written
