"""Filter and sort the CI and ticket lists by custom fields: ``cf_<name>=<value>`` and
``sort=cf_<name>`` (``-cf_<name>`` descending), typed by the field's definition.

PostgreSQL: a filter is JSONB containment (``custom_fields @> '{"name": value}'``), which the GIN
index (jsonb_path_ops) of the ``custom_fields`` column answers; a multi_choice filter matches the
lists that hold the value (``{"name": [value]}``). A sort orders by ``custom_fields -> 'name'``
(JSONB orders numbers as numbers, text as text). SQLite: ``json_extract`` for both (its values
come out typed), ``json_each`` for a multi_choice filter. CIs or tickets without a value sort last
either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import marshmallow as ma
from sqlalchemy import bindparam, exists, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cairn.api import UNKNOWN_QUERY_PARAMETER, FullMatch
from cairn.db import db
from cmdb.custom_fields.registry import current
from cmdb.custom_fields.values import load_value

PREFIX = "cf_"
_NAME = r"cf_[a-z][a-z0-9_]{0,49}"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_JSON_TYPES = ("integer", "decimal", "ci", "user", "team")


def SortKeys(sortable, **kwargs):
    """The ``sort`` parameter's items: a built-in column or ``cf_<name>``, a leading - descending."""
    from webargs.fields import DelimitedList

    pattern = "^-?(?:" + "|".join([*sortable, _NAME]) + ")$"
    kwargs.setdefault(
        "metadata", {"description": "comma-separated; a leading - sorts descending; cf_<name>: by a custom field"}
    )
    return DelimitedList(
        ma.fields.String(validate=FullMatch(pattern, "Not a sort key of this list.")),
        validate=ma.validate.Length(max=4),
        **kwargs,
    )


class CustomFieldQuery:
    """Mixin for a list's query schema: ``cf_<name>`` parameters filter by the custom fields of
    ``CUSTOM_FIELDS_TARGET`` (``ci`` or ``ticket``); the loaded filters hold them, typed, under
    ``custom_fields`` ({name: (type, value)}). An unknown name is 422 like any unknown parameter.
    The kernel's check of unknown query parameters leaves names with these prefixes to the schema."""

    OPEN_QUERY_PREFIXES = (PREFIX,)
    CUSTOM_FIELDS_TARGET = "ci"

    def _do_load(self, data, *args, **kwargs):
        custom = {}
        if isinstance(data, Mapping):
            custom = {key: data[key] for key in data if isinstance(key, str) and key.startswith(PREFIX)}
            if custom:
                data = {key: data[key] for key in data if key not in custom}
        errors: dict = {}
        try:
            loaded = super()._do_load(data, *args, **kwargs)
        except ma.ValidationError as exc:
            if not custom and not _custom_sort(data):
                raise
            errors, loaded = (exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}), None
        fields = current().anywhere(self.CUSTOM_FIELDS_TARGET) if custom or _custom_sort(data) else {}
        filters = {}
        for key, raw in custom.items():
            try:
                filters[key[len(PREFIX) :]] = _typed(fields, key, raw)
            except ma.ValidationError as exc:
                errors[key] = exc.messages
        for key in (loaded or {}).get("sort") or ():
            name = key.lstrip("-")
            if name.startswith(PREFIX) and name[len(PREFIX) :] not in fields:
                errors.setdefault("sort", []).append(f"No custom field {name[len(PREFIX) :]} to sort by.")
        if errors:
            raise ma.ValidationError(errors)
        if filters:
            loaded["custom_fields"] = filters
        return loaded


def _custom_sort(data) -> bool:
    sort = data.get("sort") if isinstance(data, Mapping) else None
    return isinstance(sort, str) and PREFIX in sort


def _typed(fields: dict, key: str, raw) -> tuple[str, Any]:
    definition = fields.get(key[len(PREFIX) :])
    if definition is None:
        raise ma.ValidationError(f"{UNKNOWN_QUERY_PARAMETER}: no custom field {key[len(PREFIX) :]}.")
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    if not isinstance(raw, str) or not raw or len(raw) > 1000 or "\x00" in raw:
        raise ma.ValidationError("Give one value (at most 1000 characters).")
    kind = definition.type
    if kind == "boolean":
        lowered = raw.lower()
        if lowered not in _TRUE + _FALSE:
            raise ma.ValidationError("Not a valid boolean: true or false.")
        return kind, lowered in _TRUE
    if kind == "multi_choice":
        if raw not in definition.choices:
            raise ma.ValidationError(f"Must be one of: {', '.join(definition.choices)}.")
        return kind, raw
    value: Any = raw
    if kind in _JSON_TYPES:
        try:
            value = float(raw) if kind == "decimal" else int(raw)
        except ValueError:
            raise ma.ValidationError("Not a valid number.") from None
    # The filter value in its stored form (a datetime in UTC, an address canonical), without the
    # definition's own min/max/pattern: filtering by a value no CI may hold just matches nothing.
    return kind, load_value(replace(definition, validation={}, pattern=None), value)


# ---------------------------------------------------------------------------------------------
# SQL


def param_name(name: str, kind: str) -> str:
    """The bind parameter of a filter: its name says the SQL shape (multi_choice differs)."""
    return f"cfm_{name}" if kind == "multi_choice" else f"cf_{name}"


def param_value(name: str, kind: str, value, dialect: str):
    if dialect == "postgresql":
        return {name: [value]} if kind == "multi_choice" else {name: value}
    if isinstance(value, bool):
        return int(value)  # json_extract gives 1 or 0 for true and false
    return value


def condition(column, param: str, value_of, dialect: str):
    """The WHERE condition of the filter bound as ``param`` (``value_of(param, type_)``: its bind)."""
    multi = param.startswith("cfm_")
    name = param[4:] if multi else param[3:]
    if dialect == "postgresql":
        return type_coerce(column, JSONB).op("@>")(value_of(param, JSONB))
    path = f"$.{name}"
    if multi:
        items = func.json_each(column, path).table_valued("value")
        return exists(select(literal_column("1")).select_from(items).where(items.c.value == value_of(param, None)))
    return func.json_extract(column, path) == value_of(param, None)


def bind(params: dict, bound: bool):
    """``value_of(name, type_)`` for ``condition``: the named parameter, with its value (``bound``) or
    to be supplied at execution (a statement cached by its shape)."""

    def value_of(name: str, type_):
        return bindparam(name, params[name] if bound else None, type_=type_)

    return value_of


def sort_expression(column, key: str):
    """ORDER BY for ``cf_<name>`` or ``-cf_<name>``: objects without a value last."""
    name = key.lstrip("-")[len(PREFIX) :]
    if db.session.get_bind().dialect.name == "postgresql":
        expression = type_coerce(column, JSONB)[name]
    else:
        expression = func.json_extract(column, f"$.{name}")
    ordered = expression.desc() if key.startswith("-") else expression.asc()
    return ordered.nulls_last()


def is_sort_key(key: str) -> bool:
    return key.lstrip("-").startswith(PREFIX)
