"""monitoring events: intake, binding rules, correlation groups

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade():
    op.create_table(
        "event_binding",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("ci_field", sa.String(length=20), nullable=False),
        sa.Column("ci_class", sa.String(length=50), nullable=True),
        sa.Column("external_source", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_binding")),
    )
    op.create_table(
        "event_group",
        sa.Column("root_ci_id", sa.Integer(), nullable=False),
        sa.Column("open_root", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("covers_all", sa.Boolean(), nullable=False),
        sa.Column("reasoning", JSON, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("firing_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["event_group.id"], name=op.f("fk_event_group_merged_into_id_event_group"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["root_ci_id"], ["ci.id"], name=op.f("fk_event_group_root_ci_id_ci"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_event_group_ticket_id_ticket"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_group")),
        sa.UniqueConstraint("open_root", name=op.f("uq_event_group_open_root")),
    )
    op.create_index("ix_event_group_state", "event_group", ["state", "last_event_at"])
    op.create_index("ix_event_group_ticket_id", "event_group", ["ticket_id"])
    op.create_table(
        "monitoring_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("severity", sa.String(length=30), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("ci_hints", JSON, nullable=False),
        sa.Column("ci_id", sa.Integer(), nullable=True),
        sa.Column("bound_by", sa.String(length=200), nullable=True),
        sa.Column("disposition", sa.String(length=20), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_change_at", sa.DateTime(), nullable=False),
        sa.Column("flap_count", sa.Integer(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("last_occurrence_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ci_id"], ["ci.id"], name=op.f("fk_monitoring_event_ci_id_ci"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["event_group.id"], name=op.f("fk_monitoring_event_group_id_event_group"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_monitoring_event_ticket_id_ticket"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_event")),
        sa.UniqueConstraint("source", "fingerprint", name="uq_monitoring_event_source_fingerprint"),
    )
    op.create_index("ix_monitoring_event_status_ci_id", "monitoring_event", ["status", "ci_id"])
    op.create_index("ix_monitoring_event_ci_id", "monitoring_event", ["ci_id"])
    op.create_index("ix_monitoring_event_group_id", "monitoring_event", ["group_id"])
    op.create_index("ix_monitoring_event_ticket_id", "monitoring_event", ["ticket_id"])
    op.create_index("ix_monitoring_event_disposition", "monitoring_event", ["disposition", "id"])
    op.create_table(
        "event_occurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("severity", sa.String(length=30), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("ci_hints", JSON, nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("generator_url", sa.String(length=2000), nullable=True),
        sa.Column("processing", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["monitoring_event.id"], name=op.f("fk_event_occurrence_alert_id_monitoring_event"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_occurrence")),
    )
    op.create_index("ix_event_occurrence_processing_id", "event_occurrence", ["processing", "id"])
    op.create_index("ix_event_occurrence_alert_id", "event_occurrence", ["alert_id", "id"])


def downgrade():
    op.drop_index("ix_event_occurrence_alert_id", table_name="event_occurrence")
    op.drop_index("ix_event_occurrence_processing_id", table_name="event_occurrence")
    op.drop_table("event_occurrence")
    for name in ("disposition", "ticket_id", "group_id", "ci_id", "status_ci_id"):
        op.drop_index(f"ix_monitoring_event_{name}", table_name="monitoring_event")
    op.drop_table("monitoring_event")
    op.drop_index("ix_event_group_ticket_id", table_name="event_group")
    op.drop_index("ix_event_group_state", table_name="event_group")
    op.drop_table("event_group")
    op.drop_table("event_binding")
