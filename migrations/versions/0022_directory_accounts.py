"""directory accounts: where a user comes from, LDAP group mappings

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=10), server_default="local", nullable=False))
        batch_op.add_column(sa.Column("external_id", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("sessions_revoked_at", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_user_external_id"), ["external_id"])
    _restore_search_triggers("search_user", "user", ("name", "email"))
    op.create_table(
        "directory_group_mapping",
        sa.Column("group_dn", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_directory_group_mapping_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_group_mapping")),
    )
    op.create_index(op.f("ix_directory_group_mapping_group_dn"), "directory_group_mapping", ["group_dn"])
    op.create_table(
        "directory_profile",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("dn", sa.String(length=1000), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("deactivated_by_directory", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["manager_id"], ["user.id"], name=op.f("fk_directory_profile_manager_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_directory_profile_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_profile")),
        sa.UniqueConstraint("user_id", name=op.f("uq_directory_profile_user_id")),
    )
    op.create_table(
        "directory_sync_run",
        sa.Column("counts", JSON, nullable=False),
        sa.Column("lines", JSON, nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_sync_run")),
    )


def downgrade():
    op.drop_table("directory_sync_run")
    op.drop_table("directory_profile")
    op.drop_index(op.f("ix_directory_group_mapping_group_dn"), table_name="directory_group_mapping")
    op.drop_table("directory_group_mapping")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_user_external_id"), type_="unique")
        batch_op.drop_column("sessions_revoked_at")
        batch_op.drop_column("external_id")
        batch_op.drop_column("source")
    _restore_search_triggers("search_user", "user", ("name", "email"))


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
