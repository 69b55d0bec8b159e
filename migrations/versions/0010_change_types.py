"""change types: standard (from a change template), normal, emergency; when a change's risk was assessed

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "change_template",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("implementation_plan", sa.Text(), nullable=True),
        sa.Column("backout_plan", sa.Text(), nullable=True),
        sa.Column("ci_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_template")),
        sa.UniqueConstraint("name", name=op.f("uq_change_template_name")),
    )
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("change_type", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("template_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("risk_assessed_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_ticket_template_id_change_template"),
            "change_template",
            ["template_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_ticket_template_id", ["template_id"], unique=False)
    # Every change filed so far went the normal way.
    op.execute("UPDATE ticket SET change_type = 'normal' WHERE kind = 'change'")


def downgrade():
    with op.batch_alter_table("ticket") as batch:
        batch.drop_index("ix_ticket_template_id")
        batch.drop_constraint(batch.f("fk_ticket_template_id_change_template"), type_="foreignkey")
        batch.drop_column("risk_assessed_at")
        batch.drop_column("template_id")
        batch.drop_column("change_type")
    op.drop_table("change_template")
