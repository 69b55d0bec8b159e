"""The SQLAlchemy handle, the declarative base and the column types every domain shares."""

from __future__ import annotations

import contextvars
import json
import re
from datetime import UTC, datetime

import orjson
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    String,
    any_,
    bindparam,
    cast,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.types import TypeDecorator

from cairn.uow import UnitOfWorkSession

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Largest id either database stores in an INTEGER column; larger ids can't exist, so they are 404.
MAX_ID = 2**31 - 1

JSONType = JSON().with_variant(JSONB(), "postgresql")
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


_LONG_NUMBER = re.compile(r"\d{19}")


def read_json(text: str | bytes):
    """The engine's reader of JSON columns: orjson (a list of 50 CIs spent a tenth of its time in the
    standard decoder), except where orjson would change a value: an integer past 64 bits it reads as a
    float, and numbers past a double it refuses, so text with 19 digits in a row, or that orjson
    refuses, is read by the standard decoder."""
    if _LONG_NUMBER.search(text if isinstance(text, str) else text.decode()):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite (no zones) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


# Objects stay loaded after commit: a route serialises what it just wrote without reloading it.
# The session class runs the unit of work's after-commit work (cairn/uow.py).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False, "class_": UnitOfWorkSession})


class TimestampedModel(db.Model):
    """Integer id and UTC timestamps for every domain object."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# SQLite: let SQLAlchemy emit BEGIN itself (pysqlite's own handling breaks savepoints) and take the
# write lock up front (BEGIN IMMEDIATE) where the work writes (write requests, jobs, CLI commands,
# the embedded runner, the mail listener), so two writers queue on busy_timeout instead of one
# failing at once when it upgrades a read transaction after the other committed.
sqlite_begin_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_begin_immediate", default=False)


def configure_engine(engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_begin_immediate.get() else "BEGIN")


def reader():
    """What to run a Core read on: the session's connection, skipping the ORM's execution (a third of
    a small statement's cost), or the session itself when changes are pending, so they are flushed
    first. Both take ``execute(statement, params)`` and ``scalar(statement)``."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return session
    return session.connection()


class DirectSelect:
    """A Core select run the cheapest way there is: compiled once per dialect and, on PostgreSQL,
    executed straight on the driver's cursor of ``reader()``'s connection (no cache key, no result
    metadata, no per-row objects: a third of a GET by id's database CPU went to SQLAlchemy's
    execution and psycopg's column descriptions built for it). ``rows(params)`` returns plain
    tuples in the select's column order, with the same values SQLAlchemy's result would hold (each
    column's result processor applied). Elsewhere (SQLite, or changes pending that a read must see
    flushed first) it runs through SQLAlchemy and returns the same tuples. The engine's
    before/after_cursor_execute listeners see the direct statements too (without an execution
    context). Its statement may not hold expanding parameters (``IN`` lists: use ``= ANY(array)``)."""

    def __init__(self, statement) -> None:
        self.statement = statement
        self._plans: dict[str, tuple[str, dict, dict, list | None]] = {}

    def rows(self, params: dict) -> list[tuple]:
        target = reader()
        dialect = target.get_bind().dialect if target is db.session() else target.dialect
        if dialect.name != "postgresql" or target is db.session():
            return [tuple(row) for row in target.execute(self.statement, params).all()]
        plan = self._plans.get(dialect.name) or self._plan(dialect)
        sql, defaults, binders, processors = plan
        values = {**defaults, **params}
        for name, bind in binders.items():
            if name in params:
                values[name] = bind(values[name])
        cursor = target.connection.dbapi_connection.cursor()
        watched = target._has_events or target.engine._has_events
        try:
            if watched:  # statement listeners (tracing, tests) see this statement like any other
                target.dispatch.before_cursor_execute(target, cursor, sql, values, None, False)
            cursor.execute(sql, values)
            rows = cursor.fetchall()
            if watched:
                target.dispatch.after_cursor_execute(target, cursor, sql, values, None, False)
            if processors is None:  # from the first answer's column types, as SQLAlchemy picks them
                columns = self.statement.compile(dialect=dialect)._result_columns
                processors = [
                    (i, processor)
                    for i, (column, described) in enumerate(zip(columns, cursor.description, strict=True))
                    if (processor := column.type._cached_result_processor(dialect, described.type_code))
                ]
                self._plans[dialect.name] = (sql, defaults, binders, processors)
        finally:
            cursor.close()
        if not processors:
            return rows
        out = []
        for row in rows:
            row = list(row)
            for i, processor in processors:
                row[i] = processor(row[i])
            out.append(tuple(row))
        return out

    def _plan(self, dialect) -> tuple:
        """The SQL string, the values of the statement's own parameters (a JSON path, a literal),
        and the bind processors of its parameters, as SQLAlchemy would apply them."""
        compiled = self.statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("DirectSelect cannot run expanding (IN list) parameters")
        binders = {name: bind for name, bind in compiled._bind_processors.items() if bind is not None}
        defaults = {
            name: binders[name](value) if name in binders and value is not None else value
            for name, value in compiled.params.items()
        }
        plan = self._plans[dialect.name] = (compiled.string, defaults, binders, None)
        return plan


def id_in(column, ids):
    """``column IN ids`` that stays cheap and within the driver's limits for any number of ids: one
    array parameter on PostgreSQL (``= ANY(:ids)``), one JSON parameter on SQLite (``IN (SELECT
    value FROM json_each(:ids))``; SQLite refuses a statement with more than 32,766 parameters),
    instead of one bind parameter per id."""
    ids = list(ids)
    if len(ids) <= 50:
        return column.in_(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        # One text parameter the server casts: psycopg's list dumper looks at every element (a regular
        # expression each), 170 ms for the 62,000 CIs of a core switch's impact answer.
        listed = "{" + ",".join(map(str, map(int, ids))) + "}"
        return column == any_(cast(bindparam(None, listed, type_=String), ARRAY(BigInteger)))
    listed = func.json_each(bindparam(None, orjson.dumps(ids).decode(), type_=String))
    return column.in_(select(literal_column("value")).select_from(listed))


def get_or_404(model, object_id: int, message: str | None = None, *, for_update: bool = False):
    """The row, or a 404 problem; ids past the column range can't exist and are 404 too.
    ``for_update`` locks the row until commit (use it before a write)."""
    from flask_smorest import abort

    lock = {"of": model} if for_update else None
    obj = db.session.get(model, object_id, with_for_update=lock) if 0 < object_id <= MAX_ID else None
    if obj is None:
        abort(404, message=message or f"No {model.__tablename__.replace('_', ' ')} with id {object_id}.")
    return obj
