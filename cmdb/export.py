"""CIs as CSV, streamed: rows are read in batches and written as they come (no whole-table memory).
Attributes are flattened to ``attributes.<name>`` columns (lists and objects as JSON text), custom
fields to ``cf_<name>`` columns; cells
are written through the kernel's CSV writer (no cell runs as a spreadsheet formula)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from sqlalchemy import Select, select
from sqlalchemy.orm import lazyload

from cairn.db import db
from cairn.safe_output import csv_writer
from cmdb.classes import REGISTRY
from cmdb.custom_fields.registry import current as current_fields
from cmdb.models import CIExternalId

BASE_COLUMNS = (
    "id", "name", "ci_class", "status", "criticality", "asset_tag", "serial_number", "vendor", "model",
    "description", "owner_team_id", "assigned_to_id", "location_id", "purchase_date", "purchase_cost",
    "currency", "warranty_expires", "external_ids", "created_at", "updated_at",
)  # fmt: skip
BATCH = 1000


def attribute_columns(class_names: Iterable[str] | None = None) -> list[str]:
    """``attributes.<name>`` for every attribute the classes (default: all) declare, sorted."""
    names: set[str] = set()
    for name in class_names or REGISTRY:
        names.update(REGISTRY[name].attributes._declared_fields)
    return [f"attributes.{n}" for n in sorted(names)]


def custom_field_columns(class_names: Iterable[str] | None = None) -> list[str]:
    """``cf_<name>`` for every custom field of the classes (default: every field of some class), sorted."""
    fields = current_fields()
    if class_names is None:
        names = set(fields.anywhere("ci"))
    else:
        names = {name for class_name in class_names for name in fields.fields_for("ci", class_name)}
    return [f"cf_{n}" for n in sorted(names)]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def iter_csv(stmt: Select, class_names: Iterable[str] | None = None) -> Iterator[str]:
    """CSV text chunks for the CIs of ``stmt`` (a select of ConfigurationItem), header first."""
    attrs = attribute_columns(class_names)
    custom = custom_field_columns(class_names)
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow([*BASE_COLUMNS, *attrs, *custom])
    yield buffer.getvalue()
    stmt = stmt.options(lazyload("*")).execution_options(yield_per=BATCH)
    for partition in db.session.execute(stmt).scalars().partitions(BATCH):
        ids = [ci.id for ci in partition]
        external: dict[int, list[str]] = {}
        for ci_id, source, external_id in db.session.execute(
            select(CIExternalId.ci_id, CIExternalId.source, CIExternalId.external_id)
            .where(CIExternalId.ci_id.in_(ids))
            .order_by(CIExternalId.ci_id, CIExternalId.source)
        ):
            external.setdefault(ci_id, []).append(f"{source}:{external_id}")
        buffer.seek(0)
        buffer.truncate()
        for ci in partition:
            base = [
                _cell(getattr(ci, column)) if column != "external_ids" else ";".join(external.get(ci.id, []))
                for column in BASE_COLUMNS
            ]
            attributes, values = ci.attributes or {}, ci.custom_fields or {}
            writer.writerow(
                [*base, *(_cell(attributes.get(a[11:])) for a in attrs), *(_cell(values.get(c[3:])) for c in custom)]
            )
        yield buffer.getvalue()
