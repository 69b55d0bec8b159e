"""The unit of work: one transaction per request, job and CLI command, owned by the kernel.

Routes and services never commit. The request (``transactional`` wraps every view), the job runner
(``cairn.jobs.execute``) and the CLI (``command``) commit at the end of their work and roll back on
error. Work that must only happen once the data is visible to others (queue a job, nudge an outbox
consumer) is registered with ``after_commit`` and runs right after the commit succeeded; a rollback
(of the whole transaction, or of the savepoint it was registered in) drops it.

The few flows that must commit in steps (bulk chunks, a dispatcher page, store-first mail) call
``checkpoint()``: a commit that runs the work registered so far, and says in the code that it is one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import MANYTOONE

log = logging.getLogger("cairn.uow")
AFTER_COMMIT_KEY = "cairn_after_commit"
ON_ROLLBACK_KEY = "cairn_on_rollback"


class UnitOfWorkSession(FlaskSession):
    """The session class of the app: ``commit`` runs the after-commit work once the commit succeeded."""

    def commit(self) -> None:
        try:
            super().commit()
        except BaseException:
            self.info.pop(AFTER_COMMIT_KEY, None)
            _run_undo(self)
            raise
        self.info.pop(ON_ROLLBACK_KEY, None)
        run_after_commit(self)

    def rollback(self) -> None:
        self.info.pop(AFTER_COMMIT_KEY, None)
        _run_undo(self)
        super().rollback()

    def close(self) -> None:
        self.info.pop(AFTER_COMMIT_KEY, None)
        _run_undo(self)
        super().close()


def after_commit(fn: Callable, *args, key: object = None, **kwargs) -> None:
    """Run ``fn(*args, **kwargs)`` once the current transaction has committed; never if it rolls
    back. ``key`` makes a second registration with the same key in the same transaction a no-op."""
    from cairn.db import db

    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    pending = session.info.setdefault(AFTER_COMMIT_KEY, [])
    if key is not None and any(entry[4] == key for entry in pending):
        return
    pending.append((transaction, fn, args, kwargs, key))


def on_rollback(fn: Callable, *args) -> None:
    """Run ``fn(*args)`` if the current unit of work does not commit: undo a side effect outside
    the database (a stored attachment file) that the rows it belongs to no longer describe."""
    from cairn.db import db

    db.session().info.setdefault(ON_ROLLBACK_KEY, []).append((fn, args))


def _run_undo(session) -> None:
    for fn, args in session.info.pop(ON_ROLLBACK_KEY, None) or ():
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - undoing is best effort; the rollback goes on
            log.exception("undo %s failed", getattr(fn, "__name__", fn))


def pending_args(key: object) -> tuple | None:
    """The arguments of the work registered under ``key`` in this transaction, or None: lets a
    caller add to what one registration will act on (the outbox nudge collects object types)."""
    from cairn.db import db

    for entry in db.session().info.get(AFTER_COMMIT_KEY, ()):
        if entry[4] == key:
            return entry[2]
    return None


def run_after_commit(session) -> None:
    """Run (and forget) the work registered for the transaction that just committed. A failure is
    logged, never raised: the data is committed, and each kind of work has a sweeper behind it."""
    while True:
        pending = session.info.pop(AFTER_COMMIT_KEY, None)
        if not pending:
            return
        for _transaction, fn, args, kwargs, _key in pending:
            try:
                fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - the commit already happened
                log.exception("after-commit work %s failed; its sweeper will catch up", getattr(fn, "__name__", fn))


def checkpoint() -> None:
    """Commit now, in the middle of a unit of work that must commit in steps, and run the
    after-commit work registered so far. What the unit loaded is expired: from here on other
    processes may change it, so the next read (a row lock included, which the identity map would
    otherwise answer from memory) goes to the database."""
    from cairn.db import db

    db.session.commit()
    db.session.expire_all()


def _drop_rolled_back(session, previous_transaction) -> None:
    pending = session.info.get(AFTER_COMMIT_KEY)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(AFTER_COMMIT_KEY, None)
        return

    def inside(transaction) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[AFTER_COMMIT_KEY] = [entry for entry in pending if not inside(entry[0])]


_REFERENCES: dict = {}


def _references_of(mapper) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(relationship key, its foreign-key attribute keys)`` for every many-to-one of ``mapper``."""
    found = _REFERENCES.get(mapper)
    if found is None:
        found = tuple(
            (rel.key, tuple(mapper.get_property_by_column(column).key for column in rel.local_columns))
            for rel in mapper.relationships
            if rel.direction is MANYTOONE and not rel.viewonly
        )
        _REFERENCES[mapper] = found
    return found


STALE_KEY = "cairn_stale_references"


def _find_stale_references(session, _flush_context) -> None:
    """After a flush (history still in place): the loaded many-to-ones whose foreign key was written
    by its column (``ticket.team_id = 3``) rather than through the relationship. SQLAlchemy keeps
    the object loaded before, so an answer would name the old team."""
    stale = session.info.setdefault(STALE_KEY, [])
    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        loaded = state.dict
        keys = [
            key
            for key, columns in _references_of(state.mapper)
            if key in loaded
            and not state.attrs[key].history.has_changes()
            and any(state.attrs[column].history.has_changes() for column in columns)
        ]
        if keys:
            stale.append((obj, keys))


def _expire_stale_references(session, _flush_context) -> None:
    """Once the flush is done (new objects are persistent now): expire what went stale, so it is
    loaded again on first use and every write answers what a GET would."""
    for obj, keys in session.info.pop(STALE_KEY, None) or ():
        if obj in session and inspect(obj).persistent:
            session.expire(obj, keys)


def install(session_class=UnitOfWorkSession) -> None:
    """Forget after-commit work registered inside a savepoint that rolled back; after each flush,
    expire the references whose foreign keys changed, so every write answers what a GET would."""
    if not event.contains(session_class, "after_soft_rollback", _drop_rolled_back):
        event.listen(session_class, "after_soft_rollback", _drop_rolled_back)
    if not event.contains(session_class, "after_flush", _find_stale_references):
        event.listen(session_class, "after_flush", _find_stale_references)
        event.listen(session_class, "after_flush_postexec", _expire_stale_references)


# ---------------------------------------------------------------------------------------------
# Read-only views

READ_ONLY_ATTR = "_cairn_read_only"


def read_only(func=None, *, unless: Callable[[], bool] | None = None):
    """Declare a GET view that writes nothing but what authentication may (the token's last use)
    and reads with plain statements (no server-side cursor, no savepoint, no row lock). On
    PostgreSQL its statements then run without a transaction block: no BEGIN and COMMIT round trips,
    a third of the database traffic of a GET by id. Each statement sees what was committed when it
    started, as under READ COMMITTED (PostgreSQL's and Cairn's level) inside a transaction.
    ``unless()``, when true for the request, keeps the transaction (a CSV export streams through a
    server-side cursor)."""

    def decorate(view):
        setattr(view, READ_ONLY_ATTR, unless or True)
        return view

    return decorate(func) if func is not None else decorate


def begin_read_only(handler) -> None:
    """Before a request for ``handler`` (its view method): a read-only view on PostgreSQL takes its
    connection in autocommit (set on the client, no round trip; the pool puts it back on return)."""
    declared = getattr(handler, READ_ONLY_ATTR, None)
    if declared is None or (declared is not True and declared()):
        return
    from cairn.db import db

    session = db.session()
    bind = session.get_bind()
    # Not when the session is already in a transaction, nor bound to a connection someone else
    # manages (the test suite's per-test transaction), nor on SQLite (its own transaction rules).
    if session.in_transaction() or not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


# ---------------------------------------------------------------------------------------------
# The boundaries


def transactional(view: Callable) -> Callable:
    """Wrap a view: commit when it answered below 400, roll back otherwise. An error raised by the
    commit itself (a constraint checked at commit, a serialisation failure) reaches the error
    handlers like any other, so the client gets a problem answer, not a 200 for lost work."""
    from cairn.db import db

    @functools.wraps(view)
    def run(*args, **kwargs):
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    return run


def wrap_views(app) -> None:
    """Make every view of ``app`` one unit of work (called once, after the blueprints are in)."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static" and not getattr(view, "_cairn_unit_of_work", False):
            wrapped = transactional(view)
            wrapped._cairn_unit_of_work = True
            app.view_functions[endpoint] = wrapped


def wrap_commands(group, skip: frozenset[str] = frozenset({"db", "shell", "routes"})) -> None:
    """Make every CLI command of ``group`` (and its subgroups) one unit of work."""
    import click

    for name, cmd in group.commands.items():
        if name in skip:
            continue
        if isinstance(cmd, click.Group):
            wrap_commands(cmd, frozenset())
        elif cmd.callback is not None and not getattr(cmd.callback, "_cairn_unit_of_work", False):
            cmd.callback = command(cmd.callback)
            cmd.callback._cairn_unit_of_work = True


def command(func: Callable) -> Callable:
    """Make a CLI command one unit of work: commit when it returns, roll back when it raises."""
    from cairn.db import db

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
        return result

    return run
