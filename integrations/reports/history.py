"""CI columns as they stood at a past moment, replayed from the change log in one SQL aggregate.

The change log holds, for every create and update of a CI, ``changes = {field: [before, after]}``. The
value of a field at a moment is the ``after`` of the last row before that moment that mentions it. A CI
with change-log rows before the moment but none mentioning a field had it unset (NULL) then; a CI
without any row before the moment (loaded before the change log existed) keeps its current values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, case, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased

from cairn.audit.models import ChangeLog
from cairn.db import db
from cmdb.models import ConfigurationItem

INTEGER_FIELDS = {"owner_team_id", "assigned_to_id", "location_id"}


def _mentions(changes, field: str):
    """SQL: the diff has a key ``field`` (the JSONB ``?`` operator on PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return type_coerce(changes, JSONB).has_key(field)  # noqa: W601 - the JSONB ? operator
    return func.json_type(changes, f"$.{field}").is_not(None)


def _after(changes, field: str):
    """SQL: the ``after`` half of ``changes[field]``, typed like the CI column."""
    if db.session.get_bind().dialect.name == "postgresql":
        text = type_coerce(changes, JSONB)[field][1].astext
        return text.cast(Integer) if field in INTEGER_FIELDS else text
    value = func.json_extract(changes, f"$.{field}[1]")
    return type_coerce(value, Integer) if field in INTEGER_FIELDS else value


class StateAt:
    """``fields`` of every CI at ``moment``: join ``self.subquery`` on ``ci_id`` (outer) and read each
    field with ``self.value(field)``, which falls back to the CI's current column without history."""

    def __init__(self, moment: datetime, fields: tuple[str, ...]):
        log = ChangeLog
        last_ids = (
            select(
                log.object_id.label("ci_id"),
                *[func.max(case((_mentions(log.changes, f), log.id))).label(f"{f}_change") for f in fields],
            )
            .where(log.object_type == "ci", log.at < moment, log.action.in_(("create", "update")))
            .group_by(log.object_id)
            .subquery("last_ids")
        )
        columns = [last_ids.c.ci_id]
        joins = []
        for f in fields:
            row = aliased(ChangeLog, name=f"at_{f}")
            joins.append((row, row.id == last_ids.c[f"{f}_change"]))
            columns.append(_after(row.changes, f).label(f))
        stmt = select(*columns).select_from(last_ids)
        for row, on in joins:
            stmt = stmt.outerjoin(row, on)
        self.subquery = stmt.subquery("state_at")

    def join(self, stmt, ci=ConfigurationItem):
        return stmt.outerjoin(self.subquery, self.subquery.c.ci_id == ci.id)

    def value(self, field: str, ci=ConfigurationItem):
        column = getattr(ci, field) if hasattr(ci, field) else ci.c[field]
        return case((self.subquery.c.ci_id.is_(None), column), else_=self.subquery.c[field])
