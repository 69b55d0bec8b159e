"""Pagination of SQLAlchemy selects for flask-smorest's @paginate (page, page_size, X-Pagination)."""

from __future__ import annotations

from sqlalchemy import func, select

from cairn.db import db


def count_of(stmt) -> int:
    """How many rows ``stmt`` selects (its ORDER BY dropped)."""
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))


def paginate_select(stmt, pagination_parameters, *, count_stmt=None, scalars: bool = True):
    """Run one page of ``stmt`` and tell flask-smorest the total for the X-Pagination header."""
    pagination_parameters.item_count = count_of(stmt) if count_stmt is None else db.session.scalar(count_stmt)
    offset = (pagination_parameters.page - 1) * pagination_parameters.page_size
    if offset >= pagination_parameters.item_count:
        return []
    page = stmt.limit(pagination_parameters.page_size).offset(offset)
    result = db.session.scalars(page) if scalars else db.session.execute(page)
    return list(result)
