"""user preferences for the web desk: the language and time zone pages are shown in

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=16), nullable=False, server_default="en"))
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"))


def downgrade():
    with op.batch_alter_table("user") as batch:
        batch.drop_column("timezone")
        batch.drop_column("locale")
