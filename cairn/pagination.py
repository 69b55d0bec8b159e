"""Pagination of SQLAlchemy selects for flask-smorest's @paginate (page, page_size, X-Pagination)."""

from __future__ import annotations

from sqlalchemy import func, select

from cairn.db import db, reader


def count_of(stmt) -> int:
    """How many rows ``stmt`` selects (its ORDER BY dropped). A plain select (no DISTINCT, GROUP BY,
    HAVING, LIMIT or OFFSET) is counted over its own FROM and WHERE: a smaller statement to key and
    plan on every list request than the count of it as a subquery, which the others need."""
    plain = not (
        stmt._distinct
        or stmt._group_by_clauses
        or stmt._having_criteria
        or stmt._limit_clause is not None
        or stmt._offset_clause is not None
    )
    if plain:
        counted = stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    else:
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return reader().scalar(counted)


def paginate_select(stmt, pagination_parameters, *, count_stmt=None, scalars: bool = True):
    """Run one page of ``stmt`` and tell flask-smorest the total for the X-Pagination header."""
    pagination_parameters.item_count = count_of(stmt) if count_stmt is None else db.session.scalar(count_stmt)
    offset = (pagination_parameters.page - 1) * pagination_parameters.page_size
    if offset >= pagination_parameters.item_count:
        return []
    page = stmt.limit(pagination_parameters.page_size).offset(offset)
    result = db.session.scalars(page) if scalars else db.session.execute(page)
    return list(result)
