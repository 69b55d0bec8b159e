"""ticket routing rules and assignment within a team

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps():
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _fk(table: str, column: str, target: str, ondelete: str = "RESTRICT"):
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "routing_rule",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("match_kind", sa.String(length=10), nullable=True),
        sa.Column("match_category_id", sa.Integer(), nullable=True),
        sa.Column("match_ci_class", sa.String(length=60), nullable=True),
        sa.Column("match_ci_team_id", sa.Integer(), nullable=True),
        sa.Column("match_requester_team_id", sa.Integer(), nullable=True),
        sa.Column("match_requester_location_id", sa.Integer(), nullable=True),
        sa.Column("match_mail_route", sa.String(length=254), nullable=True),
        sa.Column("match_title_words", JSON, nullable=True),
        sa.Column("set_team_id", sa.Integer(), nullable=True),
        sa.Column("set_priority", sa.Integer(), nullable=True),
        sa.Column("set_category_id", sa.Integer(), nullable=True),
        sa.Column("set_assignee_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        _fk("routing_rule", "match_category_id", "ticket_category"),
        _fk("routing_rule", "match_ci_team_id", "team"),
        _fk("routing_rule", "match_requester_team_id", "team"),
        _fk("routing_rule", "match_requester_location_id", "location"),
        _fk("routing_rule", "set_team_id", "team"),
        _fk("routing_rule", "set_category_id", "ticket_category"),
        _fk("routing_rule", "set_assignee_id", "user"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_routing_rule_name")),
    )
    op.create_index("ix_routing_rule_position", "routing_rule", ["position", "id"])
    op.create_table(
        "team_assignment",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("away_user_ids", JSON, nullable=False),
        sa.Column("last_assignee_id", sa.Integer(), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        _fk("team_assignment", "team_id", "team", "CASCADE"),
        _fk("team_assignment", "calendar_id", "business_calendar"),
        _fk("team_assignment", "last_assignee_id", "user", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_assignment")),
        sa.UniqueConstraint("team_id", name=op.f("uq_team_assignment_team_id")),
    )
    op.create_index(op.f("ix_team_assignment_calendar_id"), "team_assignment", ["calendar_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_team_assignment_calendar_id"), table_name="team_assignment")
    op.drop_table("team_assignment")
    op.drop_index("ix_routing_rule_position", table_name="routing_rule")
    op.drop_table("routing_rule")
