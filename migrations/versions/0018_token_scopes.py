"""scoped tokens: a token may be limited to some scopes and to some networks

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("scopes", JSON, nullable=True))
        batch.add_column(sa.Column("allowed_networks", JSON, nullable=True))


def downgrade():
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("allowed_networks")
        batch.drop_column("scopes")
