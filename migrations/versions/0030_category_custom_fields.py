"""custom fields per ticket category

Revision ID: 0030
Revises: 0029
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The ticket categories (ids) a custom field applies to, with their subcategories.
    op.add_column(
        "custom_field", sa.Column("ticket_categories", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
    )


def downgrade() -> None:
    with op.batch_alter_table("custom_field") as batch:
        batch.drop_column("ticket_categories")
