"""Defining custom fields: create, change and delete definitions, safely for the values stored.

Every definition change is a write of a ``CustomField`` row (the change log records it) and bumps
the definitions' version (registry.py), in the caller's unit of work. Changes that would leave
stored values wrong are refused or carried out on the values, each CI or ticket written through
the ORM so its own change-log row says what happened to it:

- renaming a choice (``rename_choices``) rewrites the values that hold it;
- removing a choice, deleting the field, or taking a class, ticket kind or category out of ``applies_to``
  when values would be lost is 409 saying how many hold one, unless ``force`` (then those values
  are removed);
- a required field needs a value on every CI or ticket it applies to: the default is written to
  those that lack one, and without a default the change is 422 naming some of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import Select, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cairn.db import db
from cairn.errors import Conflict, Invalid
from cmdb import classes
from cmdb.custom_fields import registry
from cmdb.custom_fields.models import CustomField
from cmdb.custom_fields.patterns import pattern_problem
from cmdb.custom_fields.registry import (
    TICKET_CATEGORY_COLUMN,
    TICKET_KINDS,
    Definition,
    classes_under,
    holder_models,
)
from cmdb.custom_fields.values import REFERENCE_TYPES, load_value, missing_references

# A class (with what it inherits) or a ticket kind has at most this many custom fields.
MAX_FIELDS_PER_CLASS = 200
MAX_CHOICES = 200
NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# What the validation options apply to: lengths of text, bounds of numbers, a pattern of text.
VALIDATION_KEYS = {
    "text": ("min", "max", "regex"),
    "long_text": ("min", "max", "regex"),
    "integer": ("min", "max"),
    "decimal": ("min", "max"),
}
CHOICE_TYPES = ("choice", "multi_choice")
_SHOWN = 20  # how many lacking objects a refusal names
_BATCH = 500


def definitions_select() -> Select:
    """Every definition, by group, label and name (the order the forms show them in)."""
    return select(CustomField).order_by(CustomField.group_name, func.lower(CustomField.label), CustomField.name)


def get_definition(field_id: int, *, for_update: bool = False) -> CustomField:
    from cairn.db import get_or_404

    return get_or_404(CustomField, field_id, f"No custom field with id {field_id}.", for_update=for_update)


def create_definition(data: dict[str, Any]) -> CustomField:
    """Define a field (Invalid naming what is wrong); a required one gets its default written to the
    CIs and tickets it applies to, or is refused when some exist and it has none."""
    values = _with_defaults(data)
    _check(values, existing=None)
    field = CustomField(**_columns(values))
    _require_values(field, values, previous=None)
    db.session.add(field)
    db.session.flush()
    registry.bump_version()
    return field


def update_definition(field: CustomField, data: dict[str, Any], *, force: bool = False) -> CustomField:
    """Change a definition (name and type stay); ``rename_choices`` ({old: new}) renames choices and
    rewrites the values holding them. See the module docstring for what is refused."""
    data = dict(data)
    renames = dict(data.pop("rename_choices", None) or {})
    values = {**_current(field), **_patch_values(data)}
    if renames and "choices" not in data:
        values["choices"] = [renames.get(choice, choice) for choice in field.choices or []]
    if renames and "default" not in data:  # the default follows its renamed choice
        default = values["default"]
        values["default"] = (
            [renames.get(c, c) for c in default] if isinstance(default, list) else renames.get(default, default)
        )
    errors = _rename_errors(field, renames, values)
    _check(values, existing=field, errors=errors)
    before = registry.Definition.of(field)
    removed_choices = [c for c in before.choices if c not in values["choices"] and c not in renames]
    removed_reach = _removed_reach(before, values)
    losing = _count_losses(before, removed_choices, values) if removed_choices or removed_reach else 0
    if losing and not force:
        raise Conflict(
            f"{losing} CIs or tickets hold values this change removes (choices {', '.join(removed_choices) or 'none'}; "
            f"classes, kinds or categories {', '.join(removed_reach) or 'none'}): send force=true to remove them.",
            holding=losing,
        )
    if renames or removed_choices or removed_reach:
        _rewrite_values(before, renames, removed_choices, values)
    for key, value in _columns(values).items():
        setattr(field, key, value)
    _require_values(field, values, previous=before)
    db.session.flush()
    registry.bump_version()
    return field


def delete_definition(field: CustomField, *, force: bool = False) -> None:
    """Delete a field; one whose values some CIs or tickets hold is 409 (how many) unless ``force``,
    which removes those values."""
    definition = registry.Definition.of(field)
    holding = sum(
        _holders_count(model, definition.name, _reach(definition, target)) for target, model in holder_models().items()
    )
    if holding and not force:
        raise Conflict(
            f"{holding} CIs or tickets hold a value of {field.name}: send force=true to delete it with them.",
            holding=holding,
        )
    if holding:
        for target, model in holder_models().items():
            for obj in _holders(model, definition.name, _reach(definition, target)):
                values = dict(obj.custom_fields or {})
                values.pop(definition.name, None)
                obj.custom_fields = values
            db.session.flush()
    db.session.delete(field)
    db.session.flush()
    registry.bump_version()


# ---------------------------------------------------------------------------------------------
# Checking a definition


def _with_defaults(data: dict) -> dict:
    applies = data.get("applies_to") or {}
    return {
        "name": data.get("name"),
        "label": data.get("label"),
        "type": data.get("type"),
        "ci_classes": list(dict.fromkeys(applies.get("ci_classes") or [])),
        "ticket_kinds": list(dict.fromkeys(applies.get("ticket_kinds") or [])),
        "ticket_categories": list(dict.fromkeys(applies.get("ticket_categories") or [])),
        "required": bool(data.get("required", False)),
        "default": data.get("default"),
        "choices": list(data.get("choices") or []),
        "validation": dict(data.get("validation") or {}),
        "help_text": data.get("help_text") or "",
        "group": data.get("group") or "",
    }


def _current(field: CustomField) -> dict:
    return {
        "name": field.name,
        "label": field.label,
        "type": field.type,
        "ci_classes": list(field.ci_classes or []),
        "ticket_kinds": list(field.ticket_kinds or []),
        "ticket_categories": list(field.ticket_categories or []),
        "required": field.required,
        "default": field.default,
        "choices": list(field.choices or []),
        "validation": dict(field.validation or {}),
        "help_text": field.help_text,
        "group": field.group_name,
    }


def _patch_values(data: dict) -> dict:
    """PATCH body fields in the form of ``_current`` (``applies_to`` split, ``group`` by name)."""
    patch = {k: v for k, v in data.items() if k not in ("applies_to",)}
    if "applies_to" in data:
        applies = data["applies_to"] or {}
        patch["ci_classes"] = list(dict.fromkeys(applies.get("ci_classes") or []))
        patch["ticket_kinds"] = list(dict.fromkeys(applies.get("ticket_kinds") or []))
        patch["ticket_categories"] = list(dict.fromkeys(applies.get("ticket_categories") or []))
    for key in ("choices", "validation"):
        if key in patch and patch[key] is None:
            patch[key] = [] if key == "choices" else {}
    for key in ("help_text", "group"):
        if key in patch and patch[key] is None:
            patch[key] = ""
    return patch


def _columns(values: dict) -> dict:
    return {
        "name": values["name"],
        "label": values["label"],
        "type": values["type"],
        "ci_classes": values["ci_classes"],
        "ticket_kinds": values["ticket_kinds"],
        "ticket_categories": values["ticket_categories"],
        "required": values["required"],
        "default": values["default"],
        "choices": values["choices"],
        "validation": values["validation"],
        "help_text": values["help_text"],
        "group_name": values["group"],
    }


def _check(values: dict, *, existing: CustomField | None, errors: dict | None = None) -> None:
    errors = dict(errors or {})
    _check_name(values, existing, errors)
    _check_applies_to(values, existing, errors)
    _check_choices(values, errors)
    _check_validation(values, errors)
    if "choices" not in errors and "validation" not in errors and values["default"] is not None:
        _check_default(values, errors)
    if errors:
        raise Invalid("The definition is invalid.", errors=errors)


def _check_name(values: dict, existing: CustomField | None, errors: dict) -> None:
    name = values["name"]
    if existing is None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            errors["name"] = ["Use a lowercase identifier: a letter, then letters, digits or _ (at most 50)."]
            return
        if db.session.scalar(select(CustomField.id).where(CustomField.name == name)) is not None:
            errors["name"] = [f"A custom field named {name} exists already."]
            return
    clashes = sorted(c for c in values["ci_classes"] if name in _builtin_names_ci(c))
    if clashes:
        errors["name"] = [f"{name} is a built-in attribute of class {', '.join(clashes)}."]
    elif (values["ticket_kinds"] or values["ticket_categories"]) and name in _builtin_names_ticket():
        errors["name"] = [f"{name} is a built-in field of tickets."]


def _builtin_names_ci(class_name: str) -> set[str]:
    """The names a CI of ``class_name`` (or of a class under it) already has: columns and attributes."""
    from cmdb.models import ConfigurationItem

    names = {c.key for c in ConfigurationItem.__table__.columns} | {"category", "external_ids", "allowed_statuses"}
    for name in classes_under(class_name):
        found = classes.get_class(name)
        if found is not None:
            names |= set(found.attributes._declared_fields)
    return names


def _builtin_names_ticket() -> set[str]:
    table = db.metadata.tables.get("ticket")
    return ({c.key for c in table.columns} if table is not None else set()) | {"ci_ids", "sla", "allowed_transitions"}


def _check_applies_to(values: dict, existing: CustomField | None, errors: dict) -> None:
    ci_classes, kinds, categories = values["ci_classes"], values["ticket_kinds"], values["ticket_categories"]
    problems = []
    if not ci_classes and not kinds and not categories:
        problems.append("Name at least one CI class, ticket kind or ticket category.")
    unknown = [c for c in ci_classes if not isinstance(c, str) or classes.get_class(c) is None]
    if unknown:
        problems.append(f"No CI class {', '.join(map(str, unknown))}.")
    wrong_kinds = [k for k in kinds if k not in TICKET_KINDS]
    if wrong_kinds:
        problems.append(f"No ticket kind {', '.join(map(str, wrong_kinds))} (kinds: {', '.join(TICKET_KINDS)}).")
    found = registry.category_kinds(categories)
    missing = [c for c in categories if c not in found]
    if missing:
        problems.append(f"No ticket category {', '.join(map(str, missing))} (GET /api/v1/ticket-categories).")
    if not problems:
        problems += _over_limit(values, existing)
    if problems:
        errors["applies_to"] = problems


def _over_limit(values: dict, existing: CustomField | None) -> list[str]:
    """The classes and kinds that would have more than MAX_FIELDS_PER_CLASS fields."""
    current = registry.current()
    own = existing.name if existing is not None else None
    full = []
    for target, scopes in (
        ("ci", {c for name in values["ci_classes"] for c in classes_under(name)}),
        ("ticket", set(values["ticket_kinds"])),
    ):
        for scope in sorted(scopes):
            others = [n for n in current.fields_for(target, scope) if n != own]
            if len(others) + 1 > MAX_FIELDS_PER_CLASS:
                noun = "class" if target == "ci" else "ticket kind"
                full.append(f"The {noun} {scope} has {len(others)} custom fields: at most {MAX_FIELDS_PER_CLASS}.")
    reached = registry.category_kinds(registry.categories_under(values["ticket_categories"]))
    for category_id, (kind, parent_id) in sorted(reached.items()):
        chain = (category_id,) if parent_id is None else (category_id, parent_id)
        others = [n for n in current.fields_for("ticket", kind, chain) if n != own]
        if len(others) + 1 > MAX_FIELDS_PER_CLASS:
            full.append(
                f"The ticket category {category_id} has {len(others)} custom fields: at most {MAX_FIELDS_PER_CLASS}."
            )
    return full


def _check_choices(values: dict, errors: dict) -> None:
    choices = values["choices"]
    if values["type"] in CHOICE_TYPES:
        problems = []
        if not 1 <= len(choices) <= MAX_CHOICES:
            problems.append(f"A {values['type']} field needs 1 to {MAX_CHOICES} choices.")
        if any(not isinstance(c, str) or not c.strip() or len(c) > 100 for c in choices):
            problems.append("Each choice is a text of 1 to 100 characters.")
        elif len(set(choices)) != len(choices):
            problems.append("A choice is given twice.")
        if problems:
            errors["choices"] = problems
    elif choices:
        errors["choices"] = ["Only choice and multi_choice fields have choices."]


def _check_validation(values: dict, errors: dict) -> None:
    kind = values["type"]
    # JSON has one number type: a whole number arrives as a float from the schema.
    rules = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values["validation"].items()}
    values["validation"] = rules
    allowed = VALIDATION_KEYS.get(kind, ())
    problems = []
    extra = sorted(set(rules) - set(allowed))
    if extra:
        takes = ", ".join(allowed) if allowed else "none"
        problems.append(f"A {kind} field takes these options: {takes} (not {', '.join(extra)}).")
    for key in ("min", "max"):
        if key in rules and key in allowed:
            value = rules[key]
            if kind in ("text", "long_text") or kind == "integer":
                if isinstance(value, bool) or not isinstance(value, int) or (kind != "integer" and value < 0):
                    problems.append(f"{key}: a whole number{' of characters' if kind != 'integer' else ''}.")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"{key}: a number.")
    if not problems and "min" in rules and "max" in rules and rules["min"] > rules["max"]:
        problems.append("min is more than max.")
    if "regex" in rules and "regex" in allowed:
        pattern = rules["regex"]
        problem = "Send the pattern as text." if not isinstance(pattern, str) else pattern_problem(pattern)
        if problem:
            problems.append(f"regex: {problem}")
    if problems:
        errors["validation"] = problems


def _definition(values: dict, field_id: int = 0) -> Definition:
    field = CustomField(id=field_id, **_columns(values))
    return Definition.of(field)


def _check_default(values: dict, errors: dict) -> None:
    definition = _definition(values)
    try:
        loaded = load_value(definition, values["default"])
    except ma.ValidationError as exc:
        errors["default"] = exc.messages
        return
    if definition.type in REFERENCE_TYPES and missing_references([(definition.type, loaded)]):
        errors["default"] = [f"No {definition.type} with id {loaded}."]
        return
    values["default"] = loaded


def _rename_errors(field: CustomField, renames: dict, values: dict) -> dict:
    if not renames:
        return {}
    problems = []
    if field.type not in CHOICE_TYPES:
        problems.append("Only choice and multi_choice fields have choices to rename.")
    for old, new in renames.items():
        if old not in (field.choices or []):
            problems.append(f"{old} is not a choice.")
        elif not isinstance(new, str) or new not in values["choices"]:
            problems.append(f"The new name of {old} must be among the choices.")
        elif old != new and old in values["choices"]:
            problems.append(f"{old} is renamed: leave it out of the choices.")
    return {"rename_choices": problems} if problems else {}


# ---------------------------------------------------------------------------------------------
# The values the CIs and tickets hold


@dataclass(frozen=True)
class _Reach:
    """What a definition reaches among one target's objects: class names (with their subclasses)
    or ticket kinds, and for tickets the category ids (with their subcategories)."""

    scopes: frozenset = frozenset()
    categories: frozenset = frozenset()

    def __bool__(self) -> bool:
        return bool(self.scopes or self.categories)

    def where(self, model):
        """The SQL condition: an object of ``model`` this reaches."""
        conditions = []
        if self.scopes:
            conditions.append(_scope_column(model).in_(sorted(self.scopes)))
        if self.categories:
            conditions.append(getattr(model, TICKET_CATEGORY_COLUMN).in_(sorted(self.categories)))
        return or_(*conditions) if len(conditions) > 1 else conditions[0]

    def holds(self, model, obj) -> bool:
        """Whether this reaches ``obj`` (loaded)."""
        if getattr(obj, model.__custom_fields_scope__[1]) in self.scopes:
            return True
        return bool(self.categories) and getattr(obj, TICKET_CATEGORY_COLUMN, None) in self.categories


def _reach(definition: Definition | dict, target: str) -> _Reach:
    """The objects of ``target`` a definition (or the values of one) reaches."""
    get = definition.get if isinstance(definition, dict) else lambda key: getattr(definition, key)
    if target == "ci":
        return _Reach(frozenset(c for name in get("ci_classes") for c in classes_under(name)))
    return _Reach(frozenset(get("ticket_kinds")), frozenset(registry.categories_under(get("ticket_categories"))))


def _has_key(column, name: str):
    if db.session.get_bind().dialect.name == "postgresql":
        return type_coerce(column, JSONB).has_key(name)  # noqa: W601 - the JSONB ? operator
    return func.json_type(column, f"$.{name}").is_not(None)


def _scope_column(model):
    return getattr(model, model.__custom_fields_scope__[1])


def _holders_count(model, name: str, reach: _Reach) -> int:
    if not reach:
        return 0
    stmt = select(func.count()).select_from(model).where(reach.where(model), _has_key(model.custom_fields, name))
    return db.session.scalar(stmt) or 0


def _holders(model, name: str, reach: _Reach):
    """The objects ``reach`` reaches holding a value of ``name``, loaded a batch at a time."""
    if not reach:
        return []
    stmt = select(model).where(reach.where(model), _has_key(model.custom_fields, name))
    return db.session.scalars(stmt.order_by(model.id).execution_options(yield_per=_BATCH))


def _removed_reach(before: Definition, values: dict) -> list[str]:
    """What the change takes out of ``applies_to``, for the messages: classes, kinds, categories."""
    removed = [c for c in before.ci_classes if c not in values["ci_classes"]]
    removed += [k for k in before.ticket_kinds if k not in values["ticket_kinds"]]
    removed += [f"category {c}" for c in before.ticket_categories if c not in values["ticket_categories"]]
    return removed


def _count_losses(before: Definition, removed_choices: list[str], values: dict) -> int:
    """How many objects hold a value that the change would drop (a removed choice, or an object
    the field no longer reaches)."""
    losing = 0
    gone = set(removed_choices)
    for target, model in holder_models().items():
        after = _reach(values, target)
        for obj in _holders(model, before.name, _reach(before, target)):
            value = (obj.custom_fields or {}).get(before.name)
            held = set(value) if isinstance(value, list) else {value}
            if not after.holds(model, obj) or held & gone:
                losing += 1
    return losing


def _rewrite_values(before: Definition, renames: dict, removed: list[str], values: dict) -> None:
    """Rename and remove choices in the stored values, and drop the values of the objects the field
    no longer reaches (each object written through the ORM: its change is logged)."""
    order = values["choices"]
    for target, model in holder_models().items():
        after = _reach(values, target)
        for obj in _holders(model, before.name, _reach(before, target)):
            stored = dict(obj.custom_fields or {})
            value = stored.get(before.name)
            if not after.holds(model, obj):
                stored.pop(before.name, None)
            elif isinstance(value, list):
                kept = {renames.get(item, item) for item in value if item not in removed}
                if kept:
                    stored[before.name] = [c for c in order if c in kept]
                else:
                    stored.pop(before.name, None)
            elif value in removed:
                stored.pop(before.name, None)
            else:
                stored[before.name] = renames.get(value, value)
            if stored != obj.custom_fields:
                obj.custom_fields = stored
        db.session.flush()


def _require_values(field: CustomField, values: dict, previous: Definition | None) -> None:
    """A required field: write its default where it lacks a value, or refuse naming some lacking."""
    if not values["required"]:
        return
    name, default = values["name"], values["default"]
    lacking: list[str] = []
    total = 0
    for target, model in holder_models().items():
        reach = _reach(values, target)
        if not reach:
            continue
        stmt = select(model).where(reach.where(model), ~_has_key(model.custom_fields, name)).order_by(model.id)
        if default is None:
            total += db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            label = "CI" if target == "ci" else "ticket"
            lacking += [
                f"{label} {obj_id}" for obj_id in db.session.scalars(stmt.with_only_columns(model.id).limit(_SHOWN))
            ]
            continue
        for obj in db.session.scalars(stmt.execution_options(yield_per=_BATCH)):
            obj.custom_fields = {**(obj.custom_fields or {}), name: default}
        db.session.flush()
    if total:
        raise Invalid(
            f"{total} CIs or tickets have no value for {name}: give the field a default (written to them), "
            "or fill them in first.",
            errors={
                "required": [f"Lacking a value: {', '.join(lacking)}{' and more' if total > len(lacking) else ''}."]
            },
            lacking=total,
        )


# ---------------------------------------------------------------------------------------------
# The JSON Schema of a class's or kind's values (for clients and forms)

_BASE_SCHEMAS = {
    "text": {"type": "string"},
    "long_text": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "boolean": {"type": "boolean"},
    "choice": {"type": "string"},
    "multi_choice": {"type": "array", "uniqueItems": True},
    "url": {"type": "string", "format": "uri", "maxLength": 2000},
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "ip_address": {"type": "string", "description": "an IPv4 or IPv6 address"},
    "ci": {"type": "integer", "minimum": 1, "description": "the id of a CI"},
    "user": {"type": "integer", "minimum": 1, "description": "the id of a user"},
    "team": {"type": "integer", "minimum": 1, "description": "the id of a team"},
}


def ticket_json_schema(kind: str | None, category_id: int | None) -> dict:
    """``json_schema`` of tickets of ``kind``, or of ``category_id`` (its kind when none is given)."""
    if kind is None:
        found = registry.category_kinds([category_id]).get(category_id)
        if found is None:
            message = f"No ticket category with id {category_id}."
            raise Invalid("No such ticket category.", errors={"ticket_category_id": [message]})
        kind = found[0]
    return json_schema("ticket", kind, category_id)


def json_schema(target: str, scope: str, category_id: int | None = None) -> dict:
    """The JSON Schema of ``custom_fields`` for a CI class (``target`` ``ci``, its inherited fields
    too) or a ticket kind (with a category: its fields and its parent's too), as the definitions
    stand now; Invalid for a class or category that does not exist (or a category of another kind)."""
    if target == "ci" and classes.get_class(scope) is None:
        raise Invalid("No such CI class.", errors={"ci_class": [f"No CI class {scope}."]})
    chain: tuple[int, ...] = ()
    if category_id is not None:
        found = registry.category_kinds([category_id]).get(category_id)
        if found is None or found[0] != scope:
            raise Invalid(
                "No such ticket category.",
                errors={"ticket_category_id": [f"No {scope} ticket category with id {category_id}."]},
            )
        chain = (category_id,) if found[1] is None else (category_id, found[1])
    from cmdb.custom_fields.values import MAX_LONG_TEXT, MAX_TEXT

    properties, required = {}, []
    for name, definition in registry.current().fields_for(target, scope, chain).items():
        prop = {"title": definition.label, **_BASE_SCHEMAS[definition.type]}
        rules = definition.validation
        if definition.type in ("text", "long_text"):
            prop["maxLength"] = min(
                rules.get("max", MAX_LONG_TEXT), MAX_TEXT if definition.type == "text" else MAX_LONG_TEXT
            )
            if "min" in rules:
                prop["minLength"] = rules["min"]
            if "regex" in rules:
                prop["pattern"] = f"^(?:{rules['regex']})$"
        elif definition.type in ("integer", "decimal"):
            prop.update({word: rules[key] for key, word in (("min", "minimum"), ("max", "maximum")) if key in rules})
        elif definition.type == "choice":
            prop["enum"] = list(definition.choices)
        elif definition.type == "multi_choice":
            prop["items"] = {"enum": list(definition.choices)}
        if definition.help_text:
            prop["description"] = definition.help_text
        if definition.default is not None:
            prop["default"] = definition.default
        if definition.group:
            prop["x-cairn-group"] = definition.group
        properties[name] = prop
        if definition.required:
            required.append(name)
    noun = f"class {scope}" if target == "ci" else f"{scope} tickets"
    if chain:
        noun += f" of category {category_id}"
    return {
        "schema_": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Custom fields of {noun}",
        "type": "object",
        "properties": properties,
        "required": required,
        "additional_properties": False,
    }
