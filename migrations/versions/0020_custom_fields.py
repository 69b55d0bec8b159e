"""custom fields: definitions and values on CIs and tickets

Revision ID: 0020
Revises: 0019
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON_VALUES = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "custom_field",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("ci_classes", sa.JSON(), nullable=False),
        sa.Column("ticket_kinds", sa.JSON(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("default_json", sa.Text(), nullable=True),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("help_text", sa.String(length=500), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_field")),
        sa.UniqueConstraint("name", name=op.f("uq_custom_field_name")),
    )
    state = op.create_table(
        "custom_field_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_field_state")),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(state, [{"id": 1, "version": 0, "stamp": 0, "updated_at": now}])
    for table in ("ci", "ticket"):
        op.add_column(table, sa.Column("custom_fields", JSON_VALUES, server_default=sa.text("'{}'"), nullable=False))
        op.create_index(
            op.f(f"ix_{table}_custom_fields"),
            table,
            ["custom_fields"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        )


def downgrade():
    for table in ("ticket", "ci"):
        op.drop_index(op.f(f"ix_{table}_custom_fields"), table_name=table)
        # SQLite drops the column in place: a batch copy of the table would lose its search triggers (0014).
        op.drop_column(table, "custom_fields")
    op.drop_table("custom_field_state")
    op.drop_table("custom_field")
