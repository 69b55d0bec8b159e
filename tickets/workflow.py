"""States, legal moves, who may make them and what each needs: the one place the workflow is written.

Read a line as: from ``state``, ``Move(to, roles, needs, change_types)``. ``roles`` are who may make
the move (``allowed_targets`` lists a caller only the moves its role may make). ``needs`` names what
the move requires: fields of the transition body (``note``, ``resolution_code``, ``outcome``) or
checks the service runs (``window``: a planned window with start < end; ``approvals``: enough
approvals in this round, waived for standard and emergency changes; ``no_blackout``: the window
meets no blackout; ``in_window``: now is inside the planned window, waived for emergency changes;
``approved_after_the_fact``: an emergency change has its approvals before it is closed;
``workaround``: a known error says how to live with it). ``change_types``, when set, limits a move
to changes of those types.

Change types, as ITIL 4 has them:
- ``normal``: assessed, authorised by the change managers (the CAB), scheduled, implemented inside
  its window.
- ``standard``: pre-approved, opened from a change template (tickets.models.ChangeTemplate): it may
  go from ``new`` straight to ``scheduled`` and never waits for approvals; its window still binds.
- ``emergency``: may be implemented at once, from ``new``, ``assess`` or ``authorize``, without
  approval and outside a window; it is approved after the fact (approvals are taken until it is
  closed, and closing needs them) and flagged as such in its answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.auth.roles import ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION, REQUESTER

STAFF = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION)
MANAGERS = (ADMIN, CHANGE_MANAGER)
# A requester may cancel its own ticket, confirm a resolution (close) or reopen it.
STAFF_AND_REQUESTER = (*STAFF, REQUESTER)

RESOLUTION_CODES = (
    "fixed",
    "workaround",
    "duplicate",
    "not_reproducible",
    "user_error",
    "no_action_needed",
    "problem_resolved",
    "fulfilled",
)
HOLD_REASONS = ("awaiting_caller", "awaiting_change", "awaiting_problem", "awaiting_vendor", "other")


CHANGE_TYPES = ("standard", "normal", "emergency")
DEFAULT_CHANGE_TYPE = "normal"


@dataclass(frozen=True)
class Move:
    to: str
    roles: tuple[str, ...] = STAFF
    needs: tuple[str, ...] = ()
    change_types: tuple[str, ...] | None = None  # None: every type (and every kind)


_SERVICE_FLOW: dict[str, tuple[Move, ...]] = {
    "new": (
        Move("in_progress"),
        Move("on_hold", needs=("note",)),
        Move("resolved", needs=("note", "resolution_code")),
        Move("canceled", STAFF_AND_REQUESTER, needs=("note",)),
    ),
    "in_progress": (
        Move("on_hold", needs=("note",)),
        Move("resolved", needs=("note", "resolution_code")),
        Move("canceled", STAFF_AND_REQUESTER, needs=("note",)),
    ),
    "on_hold": (
        Move("in_progress"),
        Move("resolved", needs=("note", "resolution_code")),
        Move("canceled", STAFF_AND_REQUESTER, needs=("note",)),
    ),
    "resolved": (Move("in_progress", STAFF_AND_REQUESTER), Move("closed", STAFF_AND_REQUESTER)),
    "closed": (),
    "canceled": (),
}

WORKFLOWS: dict[str, dict[str, tuple[Move, ...]]] = {
    "incident": _SERVICE_FLOW,
    "request": _SERVICE_FLOW,
    "problem": {
        "new": (Move("assessed"), Move("canceled", needs=("note",))),
        "assessed": (Move("root_cause_analysis"), Move("canceled", needs=("note",))),
        "root_cause_analysis": (
            Move("known_error", needs=("workaround",)),
            Move("resolved", needs=("note", "resolution_code")),
            Move("canceled", needs=("note",)),
        ),
        "known_error": (
            Move("root_cause_analysis"),
            Move("resolved", needs=("note", "resolution_code")),
            Move("canceled", needs=("note",)),
        ),
        "resolved": (Move("root_cause_analysis"), Move("closed")),
        "closed": (),
        "canceled": (),
    },
    "change": {
        "new": (
            Move("assess"),
            Move("scheduled", needs=("window", "no_blackout"), change_types=("standard",)),
            Move("implement", change_types=("emergency",)),
            Move("canceled", needs=("note",)),
        ),
        "assess": (
            Move("authorize", needs=("window",)),
            Move("implement", change_types=("emergency",)),
            Move("canceled", needs=("note",)),
        ),
        # A change manager's rejection sends it back to assess (see services.decide_approval).
        "authorize": (
            Move("scheduled", MANAGERS, needs=("window", "approvals", "no_blackout")),
            Move("implement", change_types=("emergency",)),
            Move("assess"),
            Move("canceled", needs=("note",)),
        ),
        "scheduled": (Move("implement", needs=("in_window",)), Move("assess"), Move("canceled", needs=("note",))),
        "implement": (Move("review", needs=("outcome",)),),
        # Canceling from review is blocked: the work happened, it is reviewed and closed.
        "review": (Move("closed", needs=("approved_after_the_fact",)),),
        "closed": (),
        "canceled": (),
    },
}

CLOSED_STATES = ("closed", "canceled")
# States where the work is done (no SLA clock, not "open" for the CI's ticket list).
DONE_STATES = ("resolved", "closed", "canceled")
PAUSED_STATES = ("on_hold",)


def states(kind: str) -> tuple[str, ...]:
    return tuple(WORKFLOWS[kind])


def all_states() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for flow in WORKFLOWS.values():
        seen.update(dict.fromkeys(flow))
    return tuple(seen)


def moves(kind: str, state: str, change_type: str | None = None) -> tuple[Move, ...]:
    """The moves out of ``state``; for a change, those its type may take."""
    if kind == "change":
        change_type = change_type or DEFAULT_CHANGE_TYPE
    return tuple(m for m in WORKFLOWS[kind].get(state, ()) if m.change_types is None or change_type in m.change_types)


def find_move(kind: str, state: str, to: str, change_type: str | None = None) -> Move | None:
    return next((m for m in moves(kind, state, change_type) if m.to == to), None)


def allowed_targets(kind: str, state: str, role: str | None = None, change_type: str | None = None) -> list[str]:
    """The states a ticket may move to; with ``role``, only those that role may move it to."""
    return [m.to for m in moves(kind, state, change_type) if role is None or role in m.roles]


def is_open(state: str) -> bool:
    return state not in DONE_STATES


# ITIL priority from impact x urgency (1 high .. 3 low), as API.md states it.
PRIORITY_MATRIX: dict[tuple[int, int], int] = {
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 5,
}  # fmt: skip


def priority_of(impact: int, urgency: int) -> int:
    return PRIORITY_MATRIX[(impact, urgency)]
