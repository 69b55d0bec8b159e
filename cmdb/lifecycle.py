"""CI lifecycle statuses and the legal moves between them, as data (API.md)."""

STATUSES = ("planned", "ordered", "in_stock", "deployed", "in_maintenance", "retired", "disposed")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "planned": ("ordered", "in_stock", "deployed", "retired"),
    "ordered": ("in_stock", "deployed", "retired"),
    "in_stock": ("deployed", "in_maintenance", "retired"),
    "deployed": ("in_stock", "in_maintenance", "retired"),
    "in_maintenance": ("deployed", "in_stock", "retired"),
    "retired": ("in_stock", "disposed"),
    "disposed": (),
}

# The lifecycles a CI class may follow, by name (a custom class names one; built-in ones follow
# ``default``). One today: the moves above.
LIFECYCLES: dict[str, dict[str, tuple[str, ...]]] = {"default": TRANSITIONS}

# A CI in an inactive status has left the estate: it is held by no one (moving there closes its
# assignment), takes no part in impact answers (it can neither fail nor be taken down), and its
# installations consume no licence. Every other status is active, planned and in stock included.
INACTIVE_STATUSES = ("retired", "disposed")
ACTIVE_STATUSES = tuple(s for s in STATUSES if s not in INACTIVE_STATUSES)
CRITICALITIES = ("low", "medium", "high", "critical")


def allowed_moves(current: str) -> tuple[str, ...]:
    return TRANSITIONS.get(current, ())


def can_move(current: str, target: str) -> bool:
    return current == target or target in allowed_moves(current)


def is_active(status: str | None) -> bool:
    return status not in INACTIVE_STATUSES
