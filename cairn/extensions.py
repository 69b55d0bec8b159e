"""Extensions, created unbound here and bound in `create_app` in a fixed order."""

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


migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)
api = Api()

__all__ = ["api", "db", "migrate"]
