"""external ids: the ids other tools know CIs by

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ci_external_id",
        sa.Column("ci_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ci_id"], ["ci.id"], name=op.f("fk_ci_external_id_ci_id_ci"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_external_id")),
        sa.UniqueConstraint("ci_id", "source", name="uq_ci_external_id_ci_source"),
        sa.UniqueConstraint("source", "external_id", name="uq_ci_external_id_source_external_id"),
    )
    with op.batch_alter_table("ci_external_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ci_external_id_ci_id"), ["ci_id"], unique=False)


def downgrade():
    with op.batch_alter_table("ci_external_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_external_id_ci_id"))
    op.drop_table("ci_external_id")
