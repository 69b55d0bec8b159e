"""global search: trigram and full-text indexes (PostgreSQL), FTS5 tables kept by triggers (SQLite)

What integrations/search reads. The indexes are built from the columns (and the CI attributes
hostname, fqdn, ip_addresses, mac_addresses, management_ip, virtual_ips), so every write keeps them
current, through the ORM or a Core bulk insert alike:

- PostgreSQL: pg_trgm GIN indexes on the lower()ed text searched (one "document" expression per
  table: a search term must be a substring of it), btree indexes for the exact and prefix lookups of
  CIs and users, and a GIN full-text index (the 'simple' configuration) over ticket title and description.
  integrations/search/services.py writes the same expressions in its queries, so the planner uses
  these indexes; tests/integrations/test_search.py checks that it does.
- SQLite: FTS5 tables with the trigram tokenizer (SQLite >= 3.34), kept by AFTER INSERT / UPDATE /
  DELETE triggers on the source tables. ticket, user, team and ci_external_id are the external
  content of theirs; search_ci is contentless, since what it indexes of a CI is partly computed from
  its JSON attributes (a view as content would make any later move-and-copy migration of ``ci``
  fail on SQLite).

On SQLite a later ``batch_alter_table`` of ci, ci_external_id, ticket, user or team (move and copy)
drops that table's triggers with it: such a migration must create them again (copy them from here);
tests/integrations/test_search.py fails while any of them is missing.

These objects are not in the models (SQLAlchemy can't declare FTS5 tables, triggers or these
expression indexes); tests/kernel/test_migrations.py leaves them out of its comparison by name.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# --- PostgreSQL -------------------------------------------------------------------------------

# The documents searched: integrations/search/services.py builds its conditions on exactly these
# expressions (the planner matches an expression index only to the same expression).
PG_CI_DOCUMENT = (
    "lower(name || ' ' || coalesce(asset_tag, '') || ' ' || coalesce(serial_number, '')"
    " || ' ' || coalesce(attributes ->> 'hostname', '') || ' ' || coalesce(attributes ->> 'fqdn', '')"
    " || ' ' || coalesce(attributes ->> 'ip_addresses', '') || ' ' || coalesce(attributes ->> 'mac_addresses', '')"
    " || ' ' || coalesce(attributes ->> 'management_ip', '') || ' ' || coalesce(attributes ->> 'virtual_ips', ''))"
)
PG_INDEXES = (
    ("ix_search_ci_document", "ci", f"USING gin (({PG_CI_DOCUMENT}) gin_trgm_ops)"),
    ("ix_search_ci_name", "ci", "(lower(name) text_pattern_ops)"),
    ("ix_search_ci_asset_tag", "ci", "(lower(asset_tag))"),
    ("ix_search_ci_serial_number", "ci", "(lower(serial_number))"),
    ("ix_search_ci_external_id", "ci_external_id", "USING gin (lower(external_id) gin_trgm_ops)"),
    ("ix_search_ticket_document", "ticket", "USING gin (lower(number || ' ' || title) gin_trgm_ops)"),
    ("ix_search_ticket_text", "ticket", "USING gin (to_tsvector('simple', title || ' ' || description))"),
    ("ix_search_user_document", '"user"', "USING gin (lower(name || ' ' || email) gin_trgm_ops)"),
    ("ix_search_user_name", '"user"', "(lower(name) text_pattern_ops)"),
    ("ix_search_user_email", '"user"', "(lower(email) text_pattern_ops)"),
    ("ix_search_team_document", "team", "USING gin (lower(name || ' ' || coalesce(email, '')) gin_trgm_ops)"),
)


# --- SQLite -----------------------------------------------------------------------------------


def _attribute(row: str, key: str) -> str:
    return f"coalesce(json_extract(CASE WHEN json_valid({row}.attributes) THEN {row}.attributes END, '$.{key}'), '')"


def _ci_values(row: str) -> str:
    """What search_ci indexes of a CI (``row``: new or old), in its column order."""
    hostname = f"{_attribute(row, 'hostname')} || ' ' || {_attribute(row, 'fqdn')}"
    addresses = " || ' ' || ".join(
        _attribute(row, key) for key in ("ip_addresses", "mac_addresses", "management_ip", "virtual_ips")
    )
    return f"{row}.id, {row}.name, {row}.asset_tag, {row}.serial_number, {hostname}, {addresses}"


# name: (source table, indexed columns, external content (None: contentless), values of new/old)
SQLITE_FTS = {
    "search_ci": ("ci", ("name", "asset_tag", "serial_number", "hostname", "addresses"), None, _ci_values),
    "search_ci_external_id": ("ci_external_id", ("external_id",), "ci_external_id", None),
    "search_ticket": ("ticket", ("number", "title", "description"), "ticket", None),
    "search_user": ("user", ("name", "email"), "user", None),
    "search_team": ("team", ("name", "email"), "team", None),
}


def _sqlite_upgrade():
    for name, (source, columns, content, values) in SQLITE_FTS.items():
        listed = ", ".join(columns)
        storage = f"content='{content}', content_rowid='id'" if content else "content=''"
        op.execute(f"CREATE VIRTUAL TABLE {name} USING fts5({listed}, {storage}, tokenize='trigram')")

        def row_values(row, columns=columns, values=values):
            return values(row) if values else ", ".join([f"{row}.id", *(f"{row}.{c}" for c in columns)])

        insert = f"INSERT INTO {name}(rowid, {listed}) VALUES ({row_values('new')});"
        delete = f"INSERT INTO {name}({name}, rowid, {listed}) VALUES ('delete', {row_values('old')});"
        watched = "attributes, name, asset_tag, serial_number" if source == "ci" else listed
        op.execute(f'CREATE TRIGGER {name}_insert AFTER INSERT ON "{source}" BEGIN {insert} END')
        op.execute(f'CREATE TRIGGER {name}_delete AFTER DELETE ON "{source}" BEGIN {delete} END')
        op.execute(f'CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON "{source}" BEGIN {delete} {insert} END')
        if content:
            op.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
        else:
            op.execute(f'INSERT INTO {name}(rowid, {listed}) SELECT {row_values(source)} FROM "{source}"')


def _sqlite_downgrade():
    for name in reversed(SQLITE_FTS):
        for event in ("update", "delete", "insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {name}")


# ----------------------------------------------------------------------------------------------


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, definition in PG_INDEXES:
            op.execute(f"CREATE INDEX {name} ON {table} {definition}")
    else:
        _sqlite_upgrade()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _table, _definition in reversed(PG_INDEXES):
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # pg_trgm stays: it may have been there before, and other databases' objects may use it.
    else:
        _sqlite_downgrade()
