"""one outbox: kernel leases, outbox cursors (the notifier's moves here), notification retry times

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("rerun", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )
    op.create_table(
        "outbox_cursor",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("txid", BIG, nullable=False, server_default="0"),
        sa.Column("change_id", BIG, nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outbox_cursor")),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT name, cursor, started_at FROM email_notify_cursor")).all()
    for name, cursor, started_at in rows:
        txid, _, change_id = (cursor or "0.0").partition(".")
        connection.execute(
            sa.text(
                "INSERT INTO outbox_cursor (name, txid, change_id, started_at) VALUES (:name, :txid, :change_id, :at)"
            ),
            {"name": name, "txid": int(txid or 0), "change_id": int(change_id or 0), "at": started_at},
        )
    op.drop_table("email_notify_cursor")
    with op.batch_alter_table("outbound_email") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbound_email") as batch:
        batch.drop_column("next_attempt_at")
    op.create_table(
        "email_notify_cursor",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("cursor", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_email_notify_cursor")),
    )
    connection = op.get_bind()
    for name, txid, change_id, started_at in connection.execute(
        sa.text("SELECT name, txid, change_id, started_at FROM outbox_cursor")
    ).all():
        connection.execute(
            sa.text("INSERT INTO email_notify_cursor (name, cursor, started_at) VALUES (:name, :cursor, :at)"),
            {"name": name, "cursor": f"{txid}.{change_id}", "at": started_at},
        )
    op.drop_table("outbox_cursor")
    op.drop_table("lease")
