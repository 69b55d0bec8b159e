"""Who is acting, and under which request id: set by the request, CLI or job, read by the log."""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    label: str
    user_id: int | None = None


SYSTEM = Actor("system")

_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("cairn_actor", default=SYSTEM)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("cairn_request_id", default=None)


def current_actor() -> Actor:
    return _actor.get()


def current_request_id() -> str | None:
    return _request_id.get()


def set_actor(actor: Actor):
    return _actor.set(actor)


def set_request_id(request_id: str | None):
    return _request_id.set(request_id)


def reset(actor_token=None, request_token=None) -> None:
    if actor_token is not None:
        _actor.reset(actor_token)
    if request_token is not None:
        _request_id.reset(request_token)


@contextlib.contextmanager
def acting_as(actor: Actor, request_id: str | None = None):
    """Attribute the writes inside the block to `actor` (CLI commands, jobs)."""
    a = _actor.set(actor)
    r = _request_id.set(request_id) if request_id is not None else None
    try:
        yield
    finally:
        reset(a, r)
