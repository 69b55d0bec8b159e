"""The custom field definitions a process enforces, kept in step with the database.

Every transaction that changes a definition bumps the one-row ``custom_field_state`` (version and a
random stamp) in the same transaction. A unit of work (request, job, CLI command) that needs the
definitions reads that row once, the first time it does (one primary-key lookup, then remembered
with the session's transaction); when it differs from what the process holds, the process reloads
every definition (a few hundred rows at most). So a definition made through one worker process is
enforced by the next request in any other, and the hot paths pay one lookup per unit of work. The
stamp tells a process that a version it holds was rolled back and its number reused.

Which fields apply: a CI gets those of its class and of the classes it inherits from (a class's
``parent`` in the class registry, cmdb.classes); a ticket those of its kind, and those of its
category and of that category's parent (ticket categories are tickets' rows: this package reads
their ids and parents through a plain table, ``category_chain``). The models that carry
values say so with ``__custom_fields_scope__ = (target, discriminator column)`` (the CI and ticket
models), so this package reaches the ticket table without importing the tickets package.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select, update

from cairn.db import MAX_ID, db, utcnow
from cmdb import classes
from cmdb.custom_fields.models import CustomField, CustomFieldState
from cmdb.custom_fields.patterns import compile_pattern

TARGETS = ("ci", "ticket")
# tickets.models.KINDS (the tickets package sits above this one; tests/cmdb/test_custom_fields.py
# checks the two agree).
TICKET_KINDS = ("incident", "request", "problem", "change")
_SESSION_KEY = "cairn_custom_fields"


@dataclass(frozen=True)
class Definition:
    """One custom field as the write paths enforce it."""

    id: int
    name: str
    label: str
    type: str
    ci_classes: tuple[str, ...]
    ticket_kinds: tuple[str, ...]
    ticket_categories: tuple[int, ...]
    required: bool
    default: Any
    choices: tuple[str, ...]
    validation: dict
    help_text: str
    group: str
    pattern: Any = field(default=None, compare=False)

    @classmethod
    def of(cls, row: CustomField) -> Definition:
        regex = (row.validation or {}).get("regex")
        return cls(
            id=row.id,
            name=row.name,
            label=row.label,
            type=row.type,
            ci_classes=tuple(row.ci_classes or ()),
            ticket_kinds=tuple(row.ticket_kinds or ()),
            ticket_categories=tuple(row.ticket_categories or ()),
            required=bool(row.required),
            default=row.default,
            choices=tuple(row.choices or ()),
            validation=dict(row.validation or {}),
            help_text=row.help_text or "",
            group=row.group_name or "",
            pattern=compile_pattern(regex) if regex else None,
        )


class Registry:
    """The definitions of one version, looked up by the class or kind they apply to."""

    def __init__(self, definitions: list[Definition]):
        self.definitions = sorted(definitions, key=lambda d: (d.group, d.label.lower(), d.name))
        self.by_name = {d.name: d for d in self.definitions}
        self._by_scope: dict[tuple[str, str], list[Definition]] = {}
        for definition in self.definitions:
            for name in definition.ci_classes:
                self._by_scope.setdefault(("ci", name), []).append(definition)
            for kind in definition.ticket_kinds:
                self._by_scope.setdefault(("ticket", kind), []).append(definition)
            for category_id in definition.ticket_categories:
                self._by_scope.setdefault(("ticket_category", category_id), []).append(definition)

    def fields_for(self, target: str, scope: str, categories: tuple[int, ...] = ()) -> dict[str, Definition]:
        """The fields a CI of class ``scope`` (with those of its ancestors) or a ticket of kind
        ``scope`` has, by name, in display order. For a ticket, ``categories`` is its category
        with the category's parent (``category_chain``): their fields apply too."""
        if not self.definitions:
            return {}
        scopes = lineage(scope) if target == "ci" else (scope,)
        chosen = {d.name for s in scopes for d in self._by_scope.get((target, s), ())}
        if target == "ticket":
            chosen |= {d.name for c in categories for d in self._by_scope.get(("ticket_category", c), ())}
        return {d.name: d for d in self.definitions if d.name in chosen}

    def anywhere(self, target: str) -> dict[str, Definition]:
        """Every field that applies to some CI class (``ci``) or ticket kind or category (``ticket``)."""
        if target == "ci":
            return {d.name: d for d in self.definitions if d.ci_classes}
        return {d.name: d for d in self.definitions if d.ticket_kinds or d.ticket_categories}


def class_fields(class_name: str) -> list[dict]:
    """The custom fields of a CI class (its own and those it inherits), in display order, as the
    class registry's answers list them."""
    chain = lineage(class_name)
    fields = []
    for definition in current().fields_for("ci", class_name).values():
        defined_on = next((name for name in chain if name in definition.ci_classes), class_name)
        fields.append(
            {
                "name": definition.name,
                "label": definition.label,
                "type": definition.type,
                "required": definition.required,
                "group": definition.group,
                "defined_on": defined_on,
            }
        )
    return fields


def lineage(class_name: str) -> list[str]:
    """The class and the classes it inherits from, nearest first."""
    names, seen = [], set()
    name: str | None = class_name
    while name and name not in seen:
        seen.add(name)
        names.append(name)
        found = classes.get_class(name)
        name = getattr(found, "parent", None) if found is not None else None
    return names


# The ticket categories are tickets' rows (tickets.models.TicketCategory); this package, below
# tickets, reads their ids, kinds and parents only.
CATEGORY_TABLE = sa.table("ticket_category", sa.column("id"), sa.column("kind"), sa.column("parent_id"))
# The ticket column that names its category (tickets.models.Ticket.category_id).
TICKET_CATEGORY_COLUMN = "category_id"


def category_chain(category_id: int | None) -> tuple[int, ...]:
    """A ticket category and its parent (subcategories hold no others), nearest first: the
    categories whose fields a ticket in ``category_id`` has. Empty for none."""
    if category_id is None or not 0 < category_id <= MAX_ID:
        return ()
    t = CATEGORY_TABLE
    parent_id = db.session.execute(select(t.c.parent_id).where(t.c.id == category_id)).scalar()
    return (category_id,) if parent_id is None else (category_id, parent_id)


def categories_under(category_ids) -> list[int]:
    """The categories a field on ``category_ids`` reaches: them and their subcategories."""
    wanted = sorted({int(c) for c in category_ids})
    if not wanted:
        return []
    t = CATEGORY_TABLE
    children = db.session.scalars(select(t.c.id).where(t.c.parent_id.in_(wanted)))
    return sorted(set(wanted) | set(children))


def category_kinds(category_ids) -> dict[int, tuple[str, int | None]]:
    """``{id: (kind, parent_id)}`` of those of ``category_ids`` that exist."""
    wanted = sorted({c for c in category_ids if isinstance(c, int) and not isinstance(c, bool)})
    if not wanted:
        return {}
    t = CATEGORY_TABLE
    rows = db.session.execute(select(t.c.id, t.c.kind, t.c.parent_id).where(t.c.id.in_(wanted)))
    return {row.id: (row.kind, row.parent_id) for row in rows}


def classes_under(class_name: str) -> list[str]:
    """The registered classes a field on ``class_name`` reaches: the class and its descendants."""
    return [name for name in classes.REGISTRY if class_name in lineage(name)]


# ---------------------------------------------------------------------------------------------
# The per-process copy

_lock = threading.Lock()
_STATE_ROW = select(CustomFieldState.version, CustomFieldState.stamp).where(CustomFieldState.id == 1)
_held: tuple[tuple[int, int], Registry] | None = None


def current() -> Registry:
    """The definitions in force for the current unit of work (read as described above)."""
    session = db.session()
    cached = session.info.get(_SESSION_KEY)
    transaction = session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    # Core on the session's connection: the ORM's execution would double the cost of this one lookup.
    row = session.connection().execute(_STATE_ROW).first()
    key = (row[0], row[1]) if row else (0, 0)
    registry = _registry_for(session, key)
    session.info[_SESSION_KEY] = (session.get_transaction(), registry)
    return registry


def _registry_for(session, key: tuple[int, int]) -> Registry:
    global _held
    held = _held
    if held is not None and held[0] == key:
        return held[1]
    registry = Registry([Definition.of(row) for row in session.scalars(select(CustomField))])
    with _lock:
        _held = (key, registry)
    return registry


def bump_version() -> None:
    """Move the definitions' version in the caller's transaction (every definition change does)."""
    session = db.session()
    table = CustomFieldState.__table__
    values = {"version": table.c.version + 1, "stamp": random.getrandbits(62), "updated_at": utcnow()}
    result = session.execute(update(table).where(table.c.id == 1).values(**values))
    if result.rowcount == 0:  # the row went missing (tables emptied): start again
        session.execute(table.insert().values(id=1, version=1, stamp=random.getrandbits(62), updated_at=utcnow()))
    session.info.pop(_SESSION_KEY, None)


def holder_models() -> dict[str, Any]:
    """The mapped classes that carry values, by target (``ci``, ``ticket``)."""
    found = {}
    for mapper in db.Model.registry.mappers:
        scope = getattr(mapper.class_, "__custom_fields_scope__", None)
        if scope is not None and "__custom_fields_scope__" in vars(mapper.class_):
            found[scope[0]] = mapper.class_
    return found
