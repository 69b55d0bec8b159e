"""sign-in audit: successes, failures with their reason, throttling, sign-outs, token use by address

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "auth_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_auth_event_user_id_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_event")),
    )
    op.create_index(op.f("ix_auth_event_at"), "auth_event", ["at"])
    op.create_index(op.f("ix_auth_event_user_id"), "auth_event", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_auth_event_user_id"), table_name="auth_event")
    op.drop_index(op.f("ix_auth_event_at"), table_name="auth_event")
    op.drop_table("auth_event")
