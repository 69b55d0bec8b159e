"""Custom CI classes: an admin adds, changes and removes classes at run time, as data.

A custom class names a parent (built-in or custom) and inherits its attribute schema: a CI of the
class validates exactly as one of its parent. Every write bumps ``ci_class_state`` so each process's
registry (``cmdb.classes.REGISTRY``) reloads at its next unit of work; the rows are ``Audited``, so
each change is in the change log with its diff. Built-in classes are code and are never changed here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select, update

from cairn.db import JSONType, db
from cairn.errors import Conflict, Invalid, NotFound
from cmdb import classes
from cmdb.classes import BUILTIN, CATEGORIES, REGISTRY, CIClass
from cmdb.custom_fields.models import CustomField
from cmdb.lifecycle import LIFECYCLES
from cmdb.models import CIClassState, ConfigurationItem, CustomCIClass

# At most this many custom classes (each one is a choice in every class picker and filter).
MAX_CUSTOM_CLASSES = 200
NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
ICON = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# The relationship types are relations' rows; cmdb sits below relations and reads their names only.
_relationship_type = sa.table(
    "relationship_type", sa.column("name"), sa.column("source_classes", JSONType), sa.column("target_classes", JSONType)
)


def get_class_or_404(name: str) -> CIClass:
    found = REGISTRY.get(name)
    if found is None:
        raise NotFound(f"No CI class named {name!r}.")
    return found


def _custom_row(name: str, *, for_update: bool = False) -> CustomCIClass:
    cls = get_class_or_404(name)
    if cls.builtin:
        raise Conflict(
            f"{name!r} is a built-in class: built-in classes can't be changed or deleted (add a custom class instead).",
            errors={"name": ["Built-in class."]},
        )
    stmt = select(CustomCIClass).where(CustomCIClass.name == name)
    row = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None:  # the registry was read before another transaction removed it
        raise NotFound(f"No CI class named {name!r}.")
    return row


def _type_names_in_table() -> set[str]:
    return set(db.session.scalars(select(_relationship_type.c.name)))


# How the relationship type names are read: relations (above cmdb) installs its reader at start-up
# (relations.services.install_type_names, in create_app's pipeline); until then, the table's rows.
_type_names: list[Callable[[], set[str]]] = [_type_names_in_table]


def read_relationship_types_with(reader: Callable[[], set[str]]) -> None:
    _type_names[0] = reader


def _check_relationship_types(names, errors: dict) -> list[str] | None:
    if names is None:
        return None
    wanted = list(dict.fromkeys(names))
    known = _type_names[0]()
    unknown = [n for n in wanted if n not in known]
    if unknown:
        errors["relationship_types"] = [
            f"Unknown relationship types: {', '.join(map(str, unknown))[:200]} (GET /api/v1/relationship-types)."
        ]
    return wanted


def _check_common(data: dict[str, Any], errors: dict) -> None:
    if "category" in data and data["category"] not in CATEGORIES:
        errors["category"] = [f"Choose one of {', '.join(CATEGORIES)}."]
    if "lifecycle" in data and data["lifecycle"] not in LIFECYCLES:
        errors["lifecycle"] = [f"Choose one of {', '.join(LIFECYCLES)}."]
    if data.get("icon") and not ICON.match(data["icon"]):
        errors["icon"] = ["An icon name: lower-case letters, digits and -, at most 40."]
    if "label" in data and not (0 < len(data["label"].strip()) <= 100):
        errors["label"] = ["1 to 100 characters."]


def _bump_state() -> None:
    """Move the registry version in this transaction, then reload this process's registry, so the
    rest of the unit of work (and other processes, once it commits) sees the change."""
    values = {"version": CIClassState.version + 1, "stamp": random.getrandbits(62)}
    if db.session.execute(update(CIClassState).where(CIClassState.id == 1).values(**values)).rowcount == 0:
        db.session.add(CIClassState(id=1, version=1, stamp=values["stamp"]))
    db.session.flush()
    REGISTRY.refresh(force=True)


def create_class(data: dict[str, Any]) -> CIClass:
    """Add a custom class: ``name`` (a lower-case identifier, not in use), ``label``, ``parent``
    (an existing class), and optionally ``category`` and ``icon`` (default: the parent's),
    ``relationship_types`` (default: the parent's rules) and ``lifecycle`` (default: ``default``).
    422 for bad fields, 409 for a name in use or past ``MAX_CUSTOM_CLASSES``."""
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "")
    parent = REGISTRY.get(data.get("parent"))
    if not NAME.match(name):
        errors["name"] = ["2 to 40 lower-case letters, digits or _, starting with a letter."]
    if parent is None:
        errors["parent"] = [f"No CI class named {data.get('parent')!r}."]
    _check_common(data, errors)
    relationship_types = _check_relationship_types(data.get("relationship_types"), errors)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    if name in BUILTIN:
        raise Conflict(f"{name!r} is the name of a built-in class.", errors={"name": ["A built-in class."]})
    if name in REGISTRY:
        raise Conflict(f"A CI class named {name!r} exists already.", errors={"name": ["In use."]})
    count = db.session.scalar(select(func.count()).select_from(CustomCIClass))
    if count >= MAX_CUSTOM_CLASSES:
        raise Conflict(f"At most {MAX_CUSTOM_CLASSES} custom CI classes; remove one first.")
    row = CustomCIClass(
        name=name,
        label=data["label"].strip(),
        parent=parent.name,
        category=data.get("category") or parent.category,
        icon=data.get("icon") or "",
        relationship_types=relationship_types,
        lifecycle=data.get("lifecycle") or "default",
    )
    db.session.add(row)
    _bump_state()
    return REGISTRY[name]


def _ci_count(names: list[str]) -> int:
    return db.session.scalar(select(func.count()).where(ConfigurationItem.ci_class.in_(names)))


def _descendants(name: str) -> list[str]:
    return [c.name for c in REGISTRY.values() if c.name != name and name in classes.lineage(c.name)]


def update_class(name: str, data: dict[str, Any]) -> CIClass:
    """Change a custom class's label, category, icon, relationship types, lifecycle or parent. A
    new parent may not be the class itself or one of its subclasses (422); when it changes the
    attribute schema, no CI of the class (or its subclasses) may exist (409, with how many)."""
    row = _custom_row(name, for_update=True)
    errors: dict[str, list[str]] = {}
    _check_common(data, errors)
    relationship_types = _check_relationship_types(data.get("relationship_types"), errors)
    new_parent = None
    if "parent" in data and data["parent"] != row.parent:
        new_parent = REGISTRY.get(data["parent"])
        if new_parent is None:
            errors["parent"] = [f"No CI class named {data['parent']!r}."]
        elif name in classes.lineage(new_parent.name):
            errors["parent"] = [f"{new_parent.name!r} is {name!r} or one of its subclasses: that would be a cycle."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    if new_parent is not None and new_parent.attributes is not REGISTRY[name].attributes:
        in_use = _ci_count([name, *_descendants(name)])
        if in_use:
            raise Conflict(
                f"{in_use} CIs are of {name!r} or its subclasses; a parent with other attributes would "
                "change how they validate. Move them to another class first.",
                errors={"parent": ["Class in use."]},
            )
    for key in ("label", "category", "icon", "lifecycle"):
        if key in data:
            setattr(row, key, data[key].strip() if key == "label" else data[key])
    if "relationship_types" in data:
        row.relationship_types = relationship_types
    if new_parent is not None:
        row.parent = new_parent.name
    if db.session.is_modified(row):
        db.session.flush()
        _bump_state()
    return REGISTRY[name]


def delete_class(name: str) -> None:
    """Remove a custom class that no CI, subclass, relationship type rule or custom field uses (409
    saying how many otherwise)."""
    row = _custom_row(name, for_update=True)
    in_use = _ci_count([name])
    if in_use:
        raise Conflict(f"{in_use} CIs are of class {name!r}; move or delete them first.")
    subclasses = [c.name for c in REGISTRY.values() if c.parent == name]
    if subclasses:
        raise Conflict(
            f"{len(subclasses)} classes have {name!r} as their parent ({', '.join(subclasses)[:200]}); "
            "remove them or change their parent first."
        )
    t = _relationship_type
    rules = [
        n
        for n, sources, targets in db.session.execute(select(t.c.name, t.c.source_classes, t.c.target_classes))
        if name in (sources or ()) or name in (targets or ())
    ]
    if rules:
        raise Conflict(f"{len(rules)} relationship types name {name!r} in their rules ({', '.join(rules)[:200]}).")
    fields = [
        f for f, applies in db.session.execute(select(CustomField.name, CustomField.ci_classes)) if name in applies
    ]
    if fields:
        raise Conflict(
            f"{len(fields)} custom fields apply to {name!r} ({', '.join(fields)[:200]}); change or delete them first."
        )
    db.session.delete(row)
    _bump_state()
