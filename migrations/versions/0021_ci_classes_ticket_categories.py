"""custom CI classes (and the registry's version row) and ticket categories

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "ci_class",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("parent", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("icon", sa.String(length=40), nullable=False),
        sa.Column("relationship_types", JSON, nullable=True),
        sa.Column("lifecycle", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_class")),
        sa.UniqueConstraint("name", name=op.f("uq_ci_class_name")),
    )
    state = op.create_table(
        "ci_class_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_class_state")),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0, "stamp": 0}])
    op.create_table(
        "ticket_category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("default_team_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["default_team_id"], ["team.id"], name=op.f("fk_ticket_category_default_team_id_team"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["ticket_category.id"],
            name=op.f("fk_ticket_category_parent_id_ticket_category"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_category")),
    )
    op.create_index("ix_ticket_category_kind_name", "ticket_category", ["kind", "name"])
    op.create_index(op.f("ix_ticket_category_parent_id"), "ticket_category", ["parent_id"])
    # No foreign key (see tickets.models.Ticket.category_id): added and dropped in place on SQLite too.
    op.add_column("ticket", sa.Column("category_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_ticket_category_id"), "ticket", ["category_id"])


def downgrade():
    op.drop_index(op.f("ix_ticket_category_id"), table_name="ticket")
    # SQLite drops the column in place: a batch copy of the ticket table would lose its search triggers (0014).
    op.drop_column("ticket", "category_id")
    op.drop_index(op.f("ix_ticket_category_parent_id"), table_name="ticket_category")
    op.drop_index("ix_ticket_category_kind_name", table_name="ticket_category")
    op.drop_table("ticket_category")
    op.drop_table("ci_class_state")
    op.drop_table("ci_class")
