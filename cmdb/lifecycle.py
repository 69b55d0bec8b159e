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

# Statuses in which a CI takes part in the running estate (impact, licence consumption).
ACTIVE_STATUSES = ("deployed", "in_maintenance")
CRITICALITIES = ("low", "medium", "high", "critical")


def allowed_moves(current: str) -> tuple[str, ...]:
    return TRANSITIONS.get(current, ())


def can_move(current: str, target: str) -> bool:
    return current == target or target in allowed_moves(current)
