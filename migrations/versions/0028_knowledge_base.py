"""knowledge base articles

Articles, their links (CIs, CI classes, ticket categories, problems) and the article that resolved
each ticket (a table of its own: altering ``ticket`` on SQLite would drop its search triggers).

Full-text search of articles, as migration 0014 does it for tickets (the models can't declare these;
cairn/extensions.py keeps `cairn db migrate` from offering to drop them):
- PostgreSQL: the table ``search_article`` (rowid: the article's id, document: its tsvector, title
  weight A and body B, the 'simple' configuration) kept by a trigger on knowledge_article, with a GIN
  index; stored, so that ranking (ts_rank) reads each match's vector instead of parsing its text again.
- SQLite: the FTS5 table ``search_article`` (unicode61 words, external content ``knowledge_article``)
  kept by AFTER INSERT / UPDATE / DELETE triggers; ranked by bm25 with the title weighted.
A later ``batch_alter_table`` of knowledge_article on SQLite drops these triggers: create them again.

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

PG_ARTICLE_DOCUMENT = (
    "setweight(to_tsvector('simple'::regconfig, NEW.title), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, NEW.body), 'B')"
)
PG_SEARCH = (
    "CREATE TABLE search_article (rowid integer PRIMARY KEY REFERENCES knowledge_article (id) ON DELETE CASCADE,"
    " document tsvector NOT NULL)",
    "CREATE INDEX search_article_document ON search_article USING gin (document)",
    "CREATE FUNCTION search_article_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    f" INSERT INTO search_article (rowid, document) VALUES (NEW.id, {PG_ARTICLE_DOCUMENT})"
    " ON CONFLICT (rowid) DO UPDATE SET document = EXCLUDED.document; RETURN NULL; END $$",
    "CREATE TRIGGER search_article_refresh AFTER INSERT OR UPDATE OF title, body ON knowledge_article"
    " FOR EACH ROW EXECUTE FUNCTION search_article_refresh()",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER search_article_insert AFTER INSERT ON knowledge_article BEGIN"
    " INSERT INTO search_article(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER search_article_delete AFTER DELETE ON knowledge_article BEGIN"
    " INSERT INTO search_article(search_article, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);"
    " END",
    "CREATE TRIGGER search_article_update AFTER UPDATE OF title, body ON knowledge_article BEGIN"
    " INSERT INTO search_article(search_article, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);"
    " INSERT INTO search_article(rowid, title, body) VALUES (new.id, new.title, new.body); END",
)


def _timestamps():
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "knowledge_article",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "state IN ('draft', 'review', 'published', 'retired')", name=op.f("ck_knowledge_article_state")
        ),
        sa.CheckConstraint("visibility IN ('agents', 'everyone')", name=op.f("ck_knowledge_article_visibility")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user.id"], name=op.f("fk_knowledge_article_author_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["user.id"],
            name=op.f("fk_knowledge_article_published_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_article")),
    )
    with op.batch_alter_table("knowledge_article", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_knowledge_article_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_knowledge_article_state"), ["state"], unique=False)

    op.create_table(
        "knowledge_link",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ci_id", sa.Integer(), nullable=True),
        sa.Column("ci_class", sa.String(length=60), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("kind IN ('ci', 'ci_class', 'category', 'problem')", name=op.f("ck_knowledge_link_kind")),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["knowledge_article.id"],
            name=op.f("fk_knowledge_link_article_id_knowledge_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["ticket_category.id"],
            name=op.f("fk_knowledge_link_category_id_ticket_category"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["ci_id"], ["ci.id"], name=op.f("fk_knowledge_link_ci_id_ci"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["ticket.id"], name=op.f("fk_knowledge_link_problem_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_link")),
    )
    with op.batch_alter_table("knowledge_link", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_link_article_kind", ["article_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_knowledge_link_category_id"), ["category_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_knowledge_link_ci_class"), ["ci_class"], unique=False)
        batch_op.create_index(batch_op.f("ix_knowledge_link_ci_id"), ["ci_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_knowledge_link_problem_id"), ["problem_id"], unique=False)

    op.create_table(
        "knowledge_resolution",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("linked_by_id", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["knowledge_article.id"],
            name=op.f("fk_knowledge_resolution_article_id_knowledge_article"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["linked_by_id"], ["user.id"], name=op.f("fk_knowledge_resolution_linked_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_knowledge_resolution_ticket_id_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_resolution")),
        sa.UniqueConstraint("ticket_id", name="uq_knowledge_resolution_ticket"),
    )
    with op.batch_alter_table("knowledge_resolution", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_knowledge_resolution_article_id"), ["article_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_SEARCH:
            op.execute(statement)
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_article USING fts5(title, body, content='knowledge_article',"
            " content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS search_article_refresh ON knowledge_article")
        op.execute("DROP FUNCTION IF EXISTS search_article_refresh()")
        op.execute("DROP TABLE IF EXISTS search_article")
    else:
        for event in ("update", "delete", "insert"):
            op.execute(f"DROP TRIGGER IF EXISTS search_article_{event}")
        op.execute("DROP TABLE IF EXISTS search_article")
    op.drop_table("knowledge_resolution")
    op.drop_table("knowledge_link")
    op.drop_table("knowledge_article")
