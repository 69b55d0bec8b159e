"""OpenID Connect sign-in: a group mapping says whose group it names (the directory's or the
OpenID provider's); every existing mapping is the directory's.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_group_mapping") as batch:
        batch.add_column(sa.Column("source", sa.String(length=10), nullable=False, server_default="ldap"))


def downgrade() -> None:
    op.execute("DELETE FROM directory_group_mapping WHERE source <> 'ldap'")
    with op.batch_alter_table("directory_group_mapping") as batch:
        batch.drop_column("source")
