"""business-hours calendars, SLA policies and escalation rules

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps():
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _match(table):
    return [
        sa.Column("match_kind", sa.String(length=10), nullable=True),
        sa.Column("match_priority", sa.Integer(), nullable=True),
        sa.Column("match_category_id", sa.Integer(), nullable=True),
        sa.Column("match_team_id", sa.Integer(), nullable=True),
        sa.Column("match_service_ci_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["match_category_id"],
            ["ticket_category.id"],
            name=op.f(f"fk_{table}_match_category_id_ticket_category"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["match_team_id"], ["team.id"], name=op.f(f"fk_{table}_match_team_id_team"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["match_service_ci_id"], ["ci.id"], name=op.f(f"fk_{table}_match_service_ci_id_ci"), ondelete="RESTRICT"
        ),
    ]


def upgrade():
    op.create_table(
        "business_calendar",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("hours", JSON, nullable=False),
        sa.Column("closures", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_calendar")),
        sa.UniqueConstraint("name", name=op.f("uq_business_calendar_name")),
    )
    op.create_table(
        "sla_policy",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=3), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("response_seconds", sa.Integer(), nullable=False),
        sa.Column("resolution_seconds", sa.Integer(), nullable=False),
        sa.Column("warn_at", sa.Float(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_match("sla_policy"),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendar.id"],
            name=op.f("fk_sla_policy_calendar_id_business_calendar"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policy")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policy_name")),
    )
    op.create_index(op.f("ix_sla_policy_calendar_id"), "sla_policy", ["calendar_id"])
    op.create_table(
        "escalation_rule",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("on", sa.String(length=10), nullable=False),
        sa.Column("idle_business_hours", sa.Float(), nullable=True),
        sa.Column("actions", JSON, nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_match("escalation_rule"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_escalation_rule_name")),
    )
    op.create_table(
        "sla_firing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("fired_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_sla_firing_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["escalation_rule.id"], name=op.f("fk_sla_firing_rule_id_escalation_rule"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_firing")),
        sa.UniqueConstraint("ticket_id", "key", "since", name="uq_sla_firing_ticket_key_since"),
    )
    op.create_index("ix_sla_firing_key", "sla_firing", ["key", "ticket_id"])
    op.create_index(op.f("ix_sla_firing_rule_id"), "sla_firing", ["rule_id"])
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("sla_policy_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ola_policy_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ola_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("hold_intervals", JSON, server_default=sa.text("'[]'"), nullable=False))
        batch.add_column(sa.Column("sla_next_check_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_ticket_sla_policy_id_sla_policy"), "sla_policy", ["sla_policy_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            batch.f("fk_ticket_ola_policy_id_sla_policy"), "sla_policy", ["ola_policy_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_ticket_sla_policy_id", ["sla_policy_id"], unique=False)
        batch.create_index("ix_ticket_ola_policy_id", ["ola_policy_id"], unique=False)
        batch.create_index("ix_ticket_sla_next_check_at", ["sla_next_check_at"], unique=False)
    _restore_search_triggers("search_ticket", "ticket", ("number", "title", "description"))


def downgrade():
    with op.batch_alter_table("ticket") as batch:
        batch.drop_index("ix_ticket_sla_next_check_at")
        batch.drop_index("ix_ticket_ola_policy_id")
        batch.drop_index("ix_ticket_sla_policy_id")
        batch.drop_constraint(batch.f("fk_ticket_ola_policy_id_sla_policy"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_ticket_sla_policy_id_sla_policy"), type_="foreignkey")
        batch.drop_column("sla_next_check_at")
        batch.drop_column("hold_intervals")
        batch.drop_column("ola_started_at")
        batch.drop_column("ola_policy_id")
        batch.drop_column("sla_policy_id")
    _restore_search_triggers("search_ticket", "ticket", ("number", "title", "description"))
    op.drop_index(op.f("ix_sla_firing_rule_id"), table_name="sla_firing")
    op.drop_index("ix_sla_firing_key", table_name="sla_firing")
    op.drop_table("sla_firing")
    op.drop_table("escalation_rule")
    op.drop_index(op.f("ix_sla_policy_calendar_id"), table_name="sla_policy")
    op.drop_table("sla_policy")
    op.drop_table("business_calendar")


def _restore_search_triggers(name: str, source: str, columns: tuple[str, ...]) -> None:
    """On SQLite the move-and-copy of ``source`` above dropped its search triggers (migration 0014):
    create them again and rebuild the index from the table."""
    if op.get_bind().dialect.name != "sqlite":
        return
    listed = ", ".join(columns)
    new = ", ".join(["new.id", *(f"new.{c}" for c in columns)])
    old = ", ".join(["old.id", *(f"old.{c}" for c in columns)])
    insert = f"INSERT INTO {name}(rowid, {listed}) VALUES ({new});"
    delete = f"INSERT INTO {name}({name}, rowid, {listed}) VALUES ('delete', {old});"
    op.execute(f'CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON "{source}" BEGIN {insert} END')
    op.execute(f'CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON "{source}" BEGIN {delete} END')
    op.execute(
        f'CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {listed} ON "{source}" BEGIN {delete} {insert} END'
    )
    op.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
