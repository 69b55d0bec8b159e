"""SLA recomputations as durable jobs: a calendar or policy edit commits at once and queues one

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "sla_recompute",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("rematch", sa.Boolean(), nullable=False),
        sa.Column("policy_ids", JSON, nullable=True),
        sa.Column("orphan_ids", JSON, nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_recompute")),
    )
    op.create_index("ix_sla_recompute_status", "sla_recompute", ["status"])


def downgrade():
    op.drop_index("ix_sla_recompute_status", table_name="sla_recompute")
    op.drop_table("sla_recompute")
