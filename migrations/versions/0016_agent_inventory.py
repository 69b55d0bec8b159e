"""inventory agents: per-site agent tokens (hash only) and the devices the agents reported

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "agent_token",
        sa.Column("site", sa.String(length=60), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_token_token_hash")),
    )
    op.create_table(
        "agent_device",
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=60), nullable=False),
        sa.Column("ci_id", sa.Integer(), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("logged_in_user", sa.String(length=200), nullable=False),
        sa.Column("proposed_assignee_id", sa.Integer(), nullable=True),
        sa.Column("inventory_digest", sa.String(length=64), nullable=False),
        sa.Column("last_inventory_at", sa.DateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ci_id"], ["ci.id"], name=op.f("fk_agent_device_ci_id_ci"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["proposed_assignee_id"],
            ["user.id"],
            name=op.f("fk_agent_device_proposed_assignee_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_device")),
        sa.UniqueConstraint("device_id", name=op.f("uq_agent_device_device_id")),
    )
    op.create_index("ix_agent_device_ci_id", "agent_device", ["ci_id"])


def downgrade():
    op.drop_index("ix_agent_device_ci_id", table_name="agent_device")
    op.drop_table("agent_device")
    op.drop_table("agent_token")
