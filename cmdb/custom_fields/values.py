"""Custom field values: each type's JSON form, and the check every write path runs.

Values are stored as JSON by field name: text types as strings, integer and decimal as numbers,
boolean as true/false, date as ``YYYY-MM-DD``, datetime as ISO 8601 in UTC, choice as one of the
choices, multi_choice as a list of them (in the order of the choices), ip_address in its canonical
form, and references (ci, user, team) as the id, which must exist.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, date, datetime
from typing import Any

import marshmallow as ma
from sqlalchemy import select

from cairn.auth.models import Team, User
from cairn.db import MAX_ID, db
from cmdb.custom_fields.registry import Definition, current

MAX_TEXT = 1000
MAX_LONG_TEXT = 20000
MAX_NUMBER = 2**53 - 1  # exact in JSON readers that use doubles
_url = ma.validate.URL(schemes={"http", "https"}, require_tld=False, error="Not a valid http(s) URL.")
_email = ma.validate.Email(error="Not a valid e-mail address.")


def load_value(definition: Definition, value: Any) -> Any:
    """``value`` in its stored form for ``definition``; ValidationError (a list of messages) when it
    is not one. References are not looked up here (``check_references``)."""
    kind = definition.type
    loader = _LOADERS[kind]
    loaded = loader(definition, value)
    rules = definition.validation
    if kind in ("text", "long_text"):
        if "min" in rules and len(loaded) < rules["min"]:
            raise ma.ValidationError(f"At least {rules['min']} characters.")
        if "max" in rules and len(loaded) > rules["max"]:
            raise ma.ValidationError(f"At most {rules['max']} characters.")
        if definition.pattern is not None and definition.pattern.fullmatch(loaded) is None:
            raise ma.ValidationError(f"Does not match the pattern {rules['regex']}.")
    elif kind in ("integer", "decimal"):
        if "min" in rules and loaded < rules["min"]:
            raise ma.ValidationError(f"Must be at least {rules['min']}.")
        if "max" in rules and loaded > rules["max"]:
            raise ma.ValidationError(f"Must be at most {rules['max']}.")
    return loaded


def _string(limit: int):
    def load(_definition, value):
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        if "\x00" in value:
            raise ma.ValidationError("Text may not contain NUL characters.")
        if len(value) > limit:
            raise ma.ValidationError(f"At most {limit} characters.")
        return value

    return load


def _integer(_definition, value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ma.ValidationError("Not a valid integer: send a whole number such as 3.")
    if abs(value) > MAX_NUMBER:
        raise ma.ValidationError(f"Must be between -{MAX_NUMBER} and {MAX_NUMBER}.")
    return value


def _decimal(_definition, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ma.ValidationError("Not a valid number: send a number such as 2.5.")
    if not math.isfinite(value) or abs(value) > 1e15:
        raise ma.ValidationError("Must be between -1e15 and 1e15.")
    return value


def _date(_definition, value):
    if not isinstance(value, str) or len(value) != 10:
        raise ma.ValidationError("Not a valid date: send YYYY-MM-DD.")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise ma.ValidationError("Not a valid date: send YYYY-MM-DD.") from exc


def _datetime(_definition, value):
    if not isinstance(value, str) or len(value) > 40:
        raise ma.ValidationError("Not a valid date and time: send ISO 8601, such as 2026-05-01T09:30:00Z.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ma.ValidationError("Not a valid date and time: send ISO 8601, such as 2026-05-01T09:30:00Z.") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("Out of range once in UTC.") from None
    return moment.isoformat().replace("+00:00", "Z")


def _boolean(_definition, value):
    if not isinstance(value, bool):
        raise ma.ValidationError("Not a valid boolean: send true or false.")
    return value


def _choice(definition, value):
    if not isinstance(value, str) or value not in definition.choices:
        raise ma.ValidationError(f"Must be one of: {', '.join(definition.choices)}.")
    return value


def _multi_choice(definition, value):
    if not isinstance(value, list):
        raise ma.ValidationError("Send a list of choices.")
    wrong = [item for item in value if not isinstance(item, str) or item not in definition.choices]
    if wrong:
        raise ma.ValidationError(f"Each must be one of: {', '.join(definition.choices)}.")
    if len(set(value)) != len(value):
        raise ma.ValidationError("A choice is given twice.")
    return [choice for choice in definition.choices if choice in value]


def _url_value(definition, value):
    text = _string(2000)(definition, value)
    _url(text)
    return text


def _email_value(definition, value):
    text = _string(254)(definition, value)
    _email(text)
    return text


def _ip_address(_definition, value):
    if not isinstance(value, str) or len(value) > 100:
        raise ma.ValidationError("Not a valid IP address.")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ma.ValidationError("Not a valid IP address.") from exc


def _reference(_definition, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ma.ValidationError("Not a valid id: send a whole number such as 3.")
    return value


_LOADERS = {
    "text": _string(MAX_TEXT),
    "long_text": _string(MAX_LONG_TEXT),
    "integer": _integer,
    "decimal": _decimal,
    "date": _date,
    "datetime": _datetime,
    "boolean": _boolean,
    "choice": _choice,
    "multi_choice": _multi_choice,
    "url": _url_value,
    "email": _email_value,
    "ip_address": _ip_address,
    "ci": _reference,
    "user": _reference,
    "team": _reference,
}
REFERENCE_TYPES = ("ci", "user", "team")
_NOUNS = {"ci": "CI", "user": "user", "team": "team"}


def _reference_models() -> dict[str, Any]:
    from cmdb.models import ConfigurationItem

    return {"ci": ConfigurationItem, "user": User, "team": Team}


def missing_references(pairs: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Those of ``(type, id)`` pairs that name nothing (one query per referenced type)."""
    missing: set[tuple[str, int]] = set()
    models = _reference_models()
    for kind in REFERENCE_TYPES:
        wanted = {value for k, value in pairs if k == kind}
        if wanted:
            model = models[kind]
            found = set(db.session.scalars(select(model.id).where(model.id.in_(wanted))))
            missing |= {(kind, value) for value in wanted - found}
    return missing


def check_references(definitions: dict[str, Definition], values: dict, errors: dict) -> None:
    """Add an error for every reference in ``values`` to a CI, user or team that does not exist."""
    pairs = [
        (definitions[name].type, value)
        for name, value in values.items()
        if name in definitions and definitions[name].type in REFERENCE_TYPES and name not in errors
    ]
    if not pairs:
        return
    missing = missing_references(pairs)
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is not None and definition.type in REFERENCE_TYPES and (definition.type, value) in missing:
            errors[name] = [f"No {_NOUNS[definition.type]} with id {value}."]


def scope_label(target: str, scope: str, categories: tuple[int, ...] = ()) -> str:
    if target == "ci":
        return f"class {scope}"
    return f"{scope} tickets of category {categories[0]}" if categories else f"{scope} tickets"


def with_defaults(target: str, scope: str, values: dict | None, categories: tuple[int, ...] = ()) -> dict:
    """``values`` with the default of every field in force that it lacks, for an object whose
    class or category was chosen after its values were checked (a routing rule choosing a new
    ticket's category). Nothing is refused here: a required field without a default stays empty,
    and the next write that checks the values asks for it."""
    merged = dict(values or {})
    for name, definition in current().fields_for(target, scope, categories).items():
        if name not in merged and definition.default is not None:
            merged[name] = definition.default
    return merged


def checked_values(
    target: str,
    scope: str,
    given: dict | None,
    current_values: dict | None,
    *,
    fill_defaults: bool,
    categories: tuple[int, ...] = (),
) -> dict:
    """The custom field values of a CI (``target`` ``ci``, ``scope`` its class) or a ticket
    (``ticket``, its kind) after a write: ``current_values`` with ``given`` merged in (a null
    removes a value). Every value is checked against the definitions in force: an unknown name for
    that class or kind, a wrong value, a missing required one or a reference to nothing is a
    ValidationError whose messages are ``{name: [message]}`` (the shape of built-in attributes'
    errors). ``fill_defaults`` (a new object, or one whose class changed) writes the defaults of
    the fields it lacks. A ticket's ``categories`` (its category and that one's parent,
    ``registry.category_chain``) bring their fields too."""
    definitions = current().fields_for(target, scope, categories)
    merged = dict(current_values or {})
    errors: dict[str, list[str]] = {}
    if given is not None and not isinstance(given, dict):
        raise ma.ValidationError({"_schema": ["Send an object of field names and values."]})
    for name, value in (given or {}).items():
        definition = definitions.get(name)
        if definition is None and value is None and name in merged:
            merged.pop(name)  # a value the object holds from its former class
        elif definition is None:
            errors[name] = [f"Unknown field for {scope_label(target, scope, categories)}."]
        elif value is None:
            merged.pop(name, None)
        else:
            try:
                merged[name] = load_value(definition, value)
            except ma.ValidationError as exc:
                errors[name] = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
    for name in merged:
        if name not in definitions and name not in errors:
            errors[name] = [f"Not a field of {scope_label(target, scope, categories)}: send it as null to remove it."]
    for name, definition in definitions.items():
        if name in merged or name in errors:
            continue
        if fill_defaults and definition.default is not None:
            merged[name] = definition.default
        elif definition.required:
            errors[name] = ["Missing data for required field."]
    if any(d.type in REFERENCE_TYPES for d in definitions.values()):
        check_references(definitions, {k: v for k, v in merged.items() if k in (given or {})}, errors)
    if errors:
        raise ma.ValidationError(errors)
    return merged
