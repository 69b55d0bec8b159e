"""service catalogue, approvals and fulfilment tasks

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps():
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _fk(table, column, target, ondelete):
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "catalogue_item",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("form", JSON, nullable=False),
        sa.Column("audience", JSON, nullable=False),
        sa.Column("approval_mode", sa.String(length=20), nullable=False),
        sa.Column("approval_steps", JSON, nullable=False),
        sa.Column("tasks", JSON, nullable=False),
        sa.Column("deliver_ci_class", sa.String(length=60), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_item")),
        sa.UniqueConstraint("name", name=op.f("uq_catalogue_item_name")),
    )
    op.create_table(
        "catalogue_request_item",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("catalogue_item_id", sa.Integer(), nullable=False),
        sa.Column("requested_for_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("approval_mode", sa.String(length=20), nullable=False),
        sa.Column("delivered_ci_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        _fk("catalogue_request_item", "ticket_id", "ticket", "CASCADE"),
        _fk("catalogue_request_item", "catalogue_item_id", "catalogue_item", "RESTRICT"),
        _fk("catalogue_request_item", "requested_for_id", "user", "RESTRICT"),
        _fk("catalogue_request_item", "delivered_ci_id", "ci", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_request_item")),
    )
    for column in ("ticket_id", "catalogue_item_id", "requested_for_id"):
        op.create_index(op.f(f"ix_catalogue_request_item_{column}"), "catalogue_request_item", [column])
    op.create_table(
        "catalogue_approval_step",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("request_item_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("mode", sa.String(length=5), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("approver_ids", JSON, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        *_timestamps(),
        _fk("catalogue_approval_step", "ticket_id", "ticket", "CASCADE"),
        _fk("catalogue_approval_step", "request_item_id", "catalogue_request_item", "CASCADE"),
        _fk("catalogue_approval_step", "team_id", "team", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_approval_step")),
    )
    op.create_index(op.f("ix_catalogue_approval_step_ticket_id"), "catalogue_approval_step", ["ticket_id"])
    op.create_index("ix_catalogue_approval_step_item", "catalogue_approval_step", ["request_item_id", "number"])
    op.create_index("ix_catalogue_approval_step_state", "catalogue_approval_step", ["state"])
    op.create_table(
        "catalogue_task",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("request_item_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("delivers_ci_class", sa.String(length=60), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("completed_by_id", sa.Integer(), nullable=True),
        sa.Column("delivered_ci_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        _fk("catalogue_task", "ticket_id", "ticket", "CASCADE"),
        _fk("catalogue_task", "request_item_id", "catalogue_request_item", "CASCADE"),
        _fk("catalogue_task", "team_id", "team", "SET NULL"),
        _fk("catalogue_task", "assignee_id", "user", "SET NULL"),
        _fk("catalogue_task", "completed_by_id", "user", "SET NULL"),
        _fk("catalogue_task", "delivered_ci_id", "ci", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_task")),
    )
    op.create_index(op.f("ix_catalogue_task_ticket_id"), "catalogue_task", ["ticket_id"])
    op.create_index("ix_catalogue_task_item", "catalogue_task", ["request_item_id", "position"])
    op.create_index("ix_catalogue_task_queue", "catalogue_task", ["state", "team_id"])


def downgrade() -> None:
    op.drop_table("catalogue_task")
    op.drop_table("catalogue_approval_step")
    op.drop_table("catalogue_request_item")
    op.drop_table("catalogue_item")
