"""partial indexes on open tickets: the web desk's queue counts, near-breach and major-incident lists

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OPEN = "state NOT IN ('resolved', 'closed', 'canceled')"
INDEXES = {
    "ix_ticket_open_queue": ["assignee_id", "team_id", "sla_breached"],
    "ix_ticket_open_due": ["sla_breached", "resolution_due"],
    "ix_ticket_open_priority": ["priority", "created_at"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "ticket", columns, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="ticket")
