"""saved views: a list's filters, columns and sort under a name, private or shared with a team

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "saved_view",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("filters", JSON, nullable=False),
        sa.Column("columns", JSON, nullable=False),
        sa.Column("sort", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("shared_with_team_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_saved_view_owner_id_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shared_with_team_id"],
            ["team.id"],
            name=op.f("fk_saved_view_shared_with_team_id_team"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_view")),
        sa.UniqueConstraint("owner_id", "resource", "name", name=op.f("uq_saved_view_owner_id_resource_name")),
    )
    op.create_index("ix_saved_view_shared_with_team_id", "saved_view", ["shared_with_team_id"])


def downgrade():
    op.drop_index("ix_saved_view_shared_with_team_id", table_name="saved_view")
    op.drop_table("saved_view")
