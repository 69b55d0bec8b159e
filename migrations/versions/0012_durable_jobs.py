"""durable jobs: imports and discovery runs record when they were queued, a heartbeat and their position

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sync_job") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("sync_job") as batch:
        batch.drop_column("position")
        batch.drop_column("heartbeat_at")
        batch.drop_column("enqueued_at")
