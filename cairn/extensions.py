"""Extensions, created unbound here and bound in `create_app` in a fixed order."""

import re

from flask_migrate import Migrate

from cairn.api import Api
from cairn.db import UTCDateTime, db


def render_migration_type(type_, obj, autogen_context):
    """Write our column types into migrations as plain SQLAlchemy types, so a migration never
    imports application code."""
    if isinstance(type_, UTCDateTime):
        return "sa.DateTime()"
    variants = getattr(type_, "_variant_mapping", None)
    if variants and "postgresql" in variants and type(variants["postgresql"]).__name__ == "JSONB":
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


def _render_item(type_, obj, autogen_context):
    if type_ == "type":
        return render_migration_type(obj, None, autogen_context)
    return False


# What migration 0014 builds for the global search (integrations/search) and the models can't declare:
# SQLite FTS5 tables (with their shadow tables), PostgreSQL trigram and full-text expression indexes.
# `cairn db migrate` must not offer to drop them (tests/integrations/test_search.py checks they exist).
# Migration 0028 adds search_article (knowledge articles, tickets/knowledge/search.py).
SEARCH_TABLES = re.compile(r"search_(ci|ci_external_id|ticket|user|team|article)(_data|_idx|_docsize|_config)?")


def not_a_search_index(name, type_, parent_names) -> bool:
    """Alembic's include_name: everything but the search objects of migration 0014."""
    if type_ == "table":
        return not SEARCH_TABLES.fullmatch(name or "")
    return not (type_ == "index" and (name or "").startswith("ix_search_"))


migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item, include_name=not_a_search_index)
api = Api()

__all__ = ["api", "db", "migrate"]
