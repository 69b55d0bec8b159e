"""ticket external ids: the ids other tools know tickets by

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ticket_external_id",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_external_id_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_external_id")),
        sa.UniqueConstraint("source", "external_id", name="uq_ticket_external_id_source_external_id"),
        sa.UniqueConstraint("ticket_id", "source", name="uq_ticket_external_id_ticket_source"),
    )
    with op.batch_alter_table("ticket_external_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_external_id_ticket_id"), ["ticket_id"], unique=False)


def downgrade():
    with op.batch_alter_table("ticket_external_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_external_id_ticket_id"))
    op.drop_table("ticket_external_id")
