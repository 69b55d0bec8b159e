"""Leases in the database: one holder at a time for a named piece of work, across processes and
hosts, and a way to ask the holder for one more pass (so a wake-up is never lost).

Each call commits (``checkpoint``): a lease is only worth something once others can see it. Call
them from a job or a runner, not from inside a request's unit of work.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from cairn.db import db, utcnow
from cairn.jobs.models import Lease
from cairn.uow import checkpoint


def acquire(name: str, seconds: float) -> str | None:
    """Take the lease ``name`` for ``seconds`` if it is free or expired; returns the holder token
    (pass it to ``renew`` and ``release``), or None when another holder has it. Taking it clears
    the requests for another pass: the new holder's first pass covers them."""
    token = uuid.uuid4().hex
    now = utcnow()
    taken = db.session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at.is_(None), Lease.expires_at <= now))
        .values(owner=token, expires_at=now + timedelta(seconds=seconds), rerun=False)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        if db.session.execute(select(Lease.name).where(Lease.name == name)).first() is not None:
            checkpoint()
            return None
        try:
            with db.session.begin_nested():
                db.session.add(Lease(name=name, owner=token, expires_at=now + timedelta(seconds=seconds)))
        except IntegrityError:  # created by another process a moment ago
            checkpoint()
            return None
    checkpoint()
    return token


def renew(name: str, token: str, seconds: float) -> bool:
    """Extend a lease we hold; False when it expired and someone else took it."""
    kept = db.session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.owner == token)
        .values(expires_at=utcnow() + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    ).rowcount
    checkpoint()
    return bool(kept)


def request_rerun(name: str) -> None:
    """Ask whoever holds ``name`` for one more pass (no-op when the lease does not exist yet)."""
    db.session.execute(
        update(Lease).where(Lease.name == name).values(rerun=True).execution_options(synchronize_session=False)
    )
    checkpoint()


def release(name: str, token: str) -> bool:
    """Give the lease up; returns whether another pass was asked for while we held it (then the
    caller should try to take it again: nobody else ran because we held it)."""
    stmt = select(Lease.rerun).where(Lease.name == name, Lease.owner == token)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    rerun = db.session.execute(stmt).scalar()
    db.session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.owner == token)
        .values(owner=None, expires_at=None, rerun=False)
        .execution_options(synchronize_session=False)
    )
    checkpoint()
    return bool(rerun)


def exclusively(name: str, seconds: float, work: Callable[[Callable[[], None]], None]) -> bool:
    """Run ``work(renew)`` as the only holder of lease ``name``, and again for every request for
    another pass made while it ran (``request_rerun``), so no wake-up is lost. When another process
    holds the lease, ask that holder for one more pass instead and return False. ``work`` calls
    ``renew()`` between long steps."""
    token = acquire(name, seconds)
    if token is None:
        request_rerun(name)
        token = acquire(name, seconds)  # the holder may have let go meanwhile
        if token is None:
            return False
    try:
        while True:
            work(functools.partial(renew, name, token, seconds))
            rerun = release(name, token)
            token = None
            if not rerun:
                return True
            token = acquire(name, seconds)
            if token is None:  # someone else took it after we let go: that run makes the pass
                return True
    except BaseException:
        db.session.rollback()
        if token is not None:
            try:
                release(name, token)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                db.session.rollback()
        raise


def hold_for(name: str, seconds: float) -> bool:
    """Take ``name`` for ``seconds`` and keep it (never released): at most one taker per period,
    across processes. The embedded runner's periodic jobs use it as their schedule."""
    return acquire(name, seconds) is not None
