"""The global search: CIs, tickets, users and teams by what a person types, ranked, grouped by type.

What matches. The query is split at white space into terms; an object matches when every term is
found, case-insensitively, in the text searched of it: a term of three characters or more anywhere
(a substring), a shorter one at the start of a word (after a space or one of ``SEPARATORS``), so a
two-character typeahead finds "lo" in "london-web-01" and not in "hello". What is searched:

- a CI: name, asset tag, serial number, the hostname, fqdn, IP and MAC addresses of its attributes;
  or one of its external ids; or the name or e-mail of the person it is assigned to;
- a ticket: number and title; its description too (PostgreSQL: every term the start of a word of
  the title or description, full-text search; SQLite: a substring, as the rest);
- a user: name and e-mail; a team: name and e-mail.

How it is ranked: ``score`` is the tier plus a fraction below 1 (trigram similarity of the name,
ts_rank on PostgreSQL; bm25 on SQLite) that orders the objects within their tier. Tiers: 4 the
exact asset tag or ticket number (``exact``: the UI can jump straight to it), 3 a field equal to
the whole query, 2 a field that starts with it, 1 any other match.

How it stays fast (migration 0014 builds the indexes): each group is one query. Its matching
branches (the text through the trigram / full-text / FTS5 index; external ids; holders) each stop at
COUNT_CAP + 1 rows and their distinct ids are counted, so a query that matches half the estate costs
little more than one that matches a thousand: ``total`` then says COUNT_CAP and ``more`` that there
are more (``total`` is exact while ``more`` is false). Only the first RANK_POOL of each branch, and
of the indexed exact and prefix lookups (so that the best are never crowded out), are scored and
sorted. The statements depend only on the query's shape (how many terms of each kind), its text
being parameters: for a viewer who sees everything they are built once per shape and reused.

Who sees what: the CI and ticket visibility rules of their domains (cmdb.services.ci_visibility,
tickets.services.ticket_visibility) are in every branch; a requester gets no users and no teams.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from cairn.auth.models import Team, User
from cairn.auth.policy import restricted
from cairn.db import db
from cairn.errors import Invalid
from cmdb.classes import REGISTRY
from cmdb.models import CIExternalId, ConfigurationItem
from cmdb.services import ci_visibility
from tickets.models import NUMBER_PREFIXES, Ticket
from tickets.services import ticket_visibility

TYPES = ("ci", "ticket", "user", "team", "article")
# Knowledge articles are searched by the knowledge base's own full-text index (tickets.knowledge).
SEARCHED_ELSEWHERE = frozenset({"article"})
SEARCHED = tuple(t for t in TYPES if t not in SEARCHED_ELSEWHERE)
# An article's score is its rank among the articles, kept below a CI's or ticket's exact hits.
ARTICLE_SCORE_CEILING = 0.9
MIN_QUERY_LENGTH = 2
MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
# Each group counts its matches up to this many; past it, total is COUNT_CAP and more is true.
COUNT_CAP = 1000
# How many matches of each branch are ranked (the exact and prefix lookups rank among them).
RANK_POOL = MAX_LIMIT
# A term shorter than a trigram matches at the start of a word: of a field, or after one of these.
SEPARATORS = " .,:;_/@\"'()-"
TRIGRAM = 3
# What separates terms and is trimmed from the query (ASCII white space: the OpenAPI document's
# pattern for q says the same, and every regular expression dialect reads it alike).
WHITE_SPACE = " \t\n\r\f\v"

TOO_SHORT = f"Type at least {MIN_QUERY_LENGTH} characters (not counting spaces) to search."
TOO_LONG = f"A search is at most {MAX_QUERY_LENGTH} characters long."

_PREFIXES = "|".join(NUMBER_PREFIXES.values())
_NUMBER = re.compile(rf"({_PREFIXES})[-\s]?0*([0-9]{{1,9}})", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# What the search answers (plain data: the API serialises it, the web desk renders it)


# Where a person opens an object of each type: the web desk's pages for CIs and tickets (API.md: the
# same ids as the API), the API's resource for the others.
URLS = {
    "ci": "/cis/{id}", "ticket": "/tickets/{id}", "user": "/api/v1/users/{id}", "team": "/api/v1/teams/{id}",
    "article": "/knowledge/{id}",
}  # fmt: skip


@dataclass(frozen=True)
class Hit:
    type: str
    id: int
    title: str
    subtitle: str
    score: float
    # The exact asset tag or ticket number (tier 4): what ``exact`` names.
    exact: bool = field(default=False, compare=False)

    @property
    def url(self) -> str:
        return URLS[self.type].format(id=self.id)

    def as_dict(self) -> dict:
        return {"type": self.type, "id": self.id, "title": self.title, "subtitle": self.subtitle,
                "url": self.url, "score": self.score}  # fmt: skip


@dataclass(frozen=True)
class Group:
    type: str
    total: int
    more: bool
    items: list[Hit]


@dataclass(frozen=True)
class Exact:
    type: str
    id: int
    title: str

    @property
    def url(self) -> str:
        return URLS[self.type].format(id=self.id)


@dataclass(frozen=True)
class SearchResults:
    query: str
    exact: Exact | None
    groups: list[Group]

    def as_dict(self) -> dict:
        """The API's answer (API.md): every hit in one list, best first (an exact ticket number or
        asset tag first of all), and per type asked for how many matched."""
        hits = sorted((hit for group in self.groups for hit in group.items), key=lambda hit: -hit.score)
        exact = None if self.exact is None else {**asdict(self.exact), "url": self.exact.url}
        return {
            "query": self.query,
            "exact": exact,
            "results": [hit.as_dict() for hit in hits],
            "groups": [{"type": g.type, "total": g.total, "more": g.more} for g in self.groups],
        }


# ---------------------------------------------------------------------------------------------
# The query


@dataclass(frozen=True)
class Query:
    text: str  # as typed, without surrounding white space
    terms: tuple[str, ...]
    number: str | None  # the ticket number the text names (INC0000012 for "inc-12"), if it names one

    @property
    def long_terms(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if len(t) >= TRIGRAM)

    @property
    def short_terms(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if len(t) < TRIGRAM)

    @property
    def shape(self) -> tuple[int, int, bool]:
        """What the statements depend on (the rest are their parameters): queries of one shape share them."""
        return len(self.long_terms), len(self.short_terms), self.number is not None

    def parameters(self) -> dict[str, Any]:
        """The values of the parameters of the search statements (see _param)."""
        values = {
            "text": self.text,
            "prefix": _escape_like(self.text) + "%",
            "in_list": '%"' + _escape_like(self.text) + '"%',
            "number": self.number or "",
            "fts": _fts5_match(self.long_terms),
            "tsquery": _tsquery(self.terms),
            "cap": COUNT_CAP + 1,
            "pool": RANK_POOL,
        }
        for n, term in enumerate(self.long_terms):
            values[f"like_{n}"] = "%" + _escape_like(term) + "%"
        for n, term in enumerate(self.short_terms):
            values[f"regex_{n}"] = _word_start_regex(term)
            values[f"glob_{n}"] = _word_start_glob(term)
        return values


def parse_query(q: str | None) -> Query:
    """The query's terms; Invalid (422, naming ``q``) when it is too short or too long."""
    q = q or ""
    if len(q) > MAX_QUERY_LENGTH:
        raise Invalid(TOO_LONG, errors={"q": [TOO_LONG]})
    text_ = q.strip(WHITE_SPACE)
    if len(text_) < MIN_QUERY_LENGTH:
        raise Invalid(TOO_SHORT, errors={"q": [TOO_SHORT]})
    number = None
    found = _NUMBER.fullmatch(text_)
    if found:
        number = f"{found.group(1).upper()}{int(found.group(2)):07d}"
    terms = (t for t in re.split(f"[{WHITE_SPACE}]+", text_) if t)
    return Query(text_, tuple(dict.fromkeys(terms)), number)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _word_start_regex(term: str) -> str:
    """A PostgreSQL regular expression: ``term`` (lower case) at the start of the text or after a
    separator. Every character but an ASCII letter or digit is written as its code (\\Uhhhhhhhh), so
    nothing typed is read as regular expression syntax."""
    literal_term = "".join(c if c.isascii() and c.isalnum() else f"\\U{ord(c):08x}" for c in term.lower())
    return "(^|[" + SEPARATORS + "])" + literal_term


def _word_start_glob(term: str) -> str:
    """A SQLite GLOB over " " || text: ``term`` after the leading space or a separator."""
    literal_term = "".join("[" + c + "]" if c in "*?[" else c for c in term)
    return "*[" + SEPARATORS + "]" + literal_term + "*"


def _fts5_match(terms) -> str:
    """An FTS5 query in which every term is a string (so no FTS5 syntax reaches MATCH): all of them."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _tsquery(terms) -> str:
    """A to_tsquery text in which every term is a quoted lexeme, as a prefix: all of them."""
    return " & ".join("'" + term.replace("\\", "\\\\").replace("'", "''") + "':*" for term in terms)


def _param(name: str):
    """A parameter of the search statements, its value from Query.parameters()."""
    return bindparam(name, type_=Integer if name in ("cap", "pool", "limit") else String)


def _lower(name: str) -> ColumnElement:
    """A text parameter folded by the database (as the columns it is compared with are)."""
    return func.lower(_param(name))


# ---------------------------------------------------------------------------------------------
# The searched text of each table, as each database writes it. The PostgreSQL documents are the
# expressions of the trigram indexes of migration 0014, verbatim (else the planner would not use them).


def _pg_attribute(key: str) -> str:
    return f"coalesce(ci.attributes ->> '{key}', '')"


def _sqlite_attribute(key: str) -> str:
    return f"coalesce(json_extract(CASE WHEN json_valid(ci.attributes) THEN ci.attributes END, '$.{key}'), '')"


_ADDRESS_KEYS = ("ip_addresses", "mac_addresses", "management_ip", "virtual_ips")


def _ci_document(attribute) -> str:
    parts = [
        "ci.name",
        "coalesce(ci.asset_tag, '')",
        "coalesce(ci.serial_number, '')",
        attribute("hostname"),
        attribute("fqdn"),
        *(attribute(key) for key in _ADDRESS_KEYS),
    ]
    return " || ' ' || ".join(parts)


PG_DOCUMENTS = {
    "ci": f"lower({_ci_document(_pg_attribute)})",
    "ci_external_id": "lower(ci_external_id.external_id)",
    "ticket": "lower(ticket.number || ' ' || ticket.title)",
    "user": """lower("user".name || ' ' || "user".email)""",
    "team": "lower(team.name || ' ' || coalesce(team.email, ''))",
}
PG_TICKET_TEXT = "to_tsvector('simple', ticket.title || ' ' || ticket.description)"
SQLITE_DOCUMENTS = {
    "ci": f"lower({_ci_document(_sqlite_attribute)})",
    "ci_external_id": "lower(ci_external_id.external_id)",
    "ticket": "lower(ticket.number || ' ' || ticket.title || ' ' || ticket.description)",
    "user": """lower("user".name || ' ' || "user".email)""",
    "team": "lower(team.name || ' ' || coalesce(team.email, ''))",
}
# The FTS5 table (migration 0014) over each searched table on SQLite.
SQLITE_FTS = {
    "ci": "search_ci",
    "ci_external_id": "search_ci_external_id",
    "ticket": "search_ticket",
    "user": "search_user",
    "team": "search_team",
}


class _Postgres:
    name = "postgresql"

    @staticmethod
    def text_match(source: str, shape, table_, condition=None):
        """A select of (id, relevance) of the rows of ``source`` whose document holds every term."""
        long_terms, short_terms, _ = shape
        document = literal_column(PG_DOCUMENTS[source])
        matches = [document.like(_lower(f"like_{n}"), escape="\\") for n in range(long_terms)]
        matches += [document.op("~")(_param(f"regex_{n}")) for n in range(short_terms)]
        return _ids(table_, *matches, condition)

    @staticmethod
    def within_matches(source: str, shape, table_):
        """A condition that keeps a lookup to the rows the text matches (None: the lookups are indexed)."""
        return None

    @staticmethod
    def similarity(column_) -> ColumnElement:
        return func.similarity(func.lower(column_), _lower("text"))

    @staticmethod
    def fraction(similarity, relevance) -> ColumnElement:
        return func.greatest(similarity, relevance)


class _SQLite:
    name = "sqlite"

    @staticmethod
    def text_match(source: str, shape, table_, condition=None):
        """As _Postgres.text_match: FTS5 (trigram) for the terms of three characters or more, relevance
        its bm25; GLOB for the shorter ones, which no trigram can find."""
        long_terms, short_terms, _ = shape
        document = literal_column("' ' || " + SQLITE_DOCUMENTS[source])
        short = [document.op("GLOB")(_lower(f"glob_{n}")) for n in range(short_terms)]
        if not long_terms:
            return _ids(table_, *short, condition)
        fts_name = SQLITE_FTS[source]
        fts = table(fts_name, column("rowid"))
        index = literal_column(fts_name)
        stmt = (
            select(table_.c.id.label("id"), (-func.bm25(index)).label("relevance"))
            .select_from(fts.join(table_, table_.c.id == fts.c.rowid))
            .where(index.op("MATCH")(_param("fts")), *short)
        )
        return stmt.where(condition) if condition is not None else stmt

    @staticmethod
    def within_matches(source: str, shape, table_):
        """The lookups have no index of their own here: keep them to the rows the FTS5 index matches
        (a scan of the table otherwise, as for queries of short terms only)."""
        if not shape[0]:
            return None
        fts = table(SQLITE_FTS[source], column("rowid"))
        return table_.c.id.in_(select(fts.c.rowid).where(literal_column(SQLITE_FTS[source]).op("MATCH")(_param("fts"))))

    @staticmethod
    def similarity(column_) -> ColumnElement:
        return literal(0.0, Float)

    @staticmethod
    def fraction(similarity, relevance) -> ColumnElement:
        positive = func.max(relevance, 0.0)  # bm25, negated; SQLite's max(a, b) is the greater
        return positive / (positive + 1.0)


_DIALECTS = {"postgresql": _Postgres, "sqlite": _SQLite}


# ---------------------------------------------------------------------------------------------
# Searching


def search(q: str | None, viewer: User | None, types=None, limit: int = DEFAULT_LIMIT) -> SearchResults:
    """Search for ``q`` as ``viewer`` sees the service (None: the system, which sees everything).

    ``types``: the groups wanted (a subset of TYPES, in the order wanted; None: all). ``limit``: items
    per group, 1 to MAX_LIMIT. Raises Invalid (422) for a query too short or too long, an unknown
    type or a limit out of range."""
    query = parse_query(q)
    wanted = list(dict.fromkeys(types or TYPES))
    unknown = [t for t in wanted if t not in TYPES]
    if unknown:
        message = f"Unknown type {unknown[0]!r}; the types are {', '.join(TYPES)}."
        raise Invalid(message, errors={"types": [message]})
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        message = f"The limit is 1 to {MAX_LIMIT}."
        raise Invalid(message, errors={"limit": [message]})
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # Plan each query for its actual text (a generic plan can't use the trigram indexes well).
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    parameters = {**query.parameters(), "limit": limit}
    groups = []
    for type_ in wanted:
        if type_ == "article":
            groups.append(_article_group(query.text, viewer, limit))
            continue
        if type_ in ("user", "team") and restricted(viewer):
            groups.append(Group(type_, 0, False, []))
            continue
        visible = _VISIBILITY[type_](viewer)
        if visible is None:  # most viewers see everything: their statements are built once per shape
            stmt = _shared_statement(type_, dialect, query.shape)
        else:
            stmt = _statement(type_, dialect, query.shape, visible)
        rows = db.session.execute(stmt, parameters).mappings().all()
        count = rows[0]["matches"] if rows else 0
        items = [_RENDER[type_](row) for row in rows]
        groups.append(Group(type_, min(count, COUNT_CAP), count > COUNT_CAP, items))
    by_type = {g.type: g for g in groups}
    exact = None
    for type_ in ("ticket", "ci"):
        group = by_type.get(type_)
        if group and group.items and group.items[0].exact:
            hit = group.items[0]
            exact = Exact(hit.type, hit.id, hit.title)
            break
    return SearchResults(query.text, exact, groups)


def _article_group(q: str, viewer: User | None, limit: int) -> Group:
    """The articles ``viewer`` may read that match every word of ``q``, best first (their total is
    what is shown, ``more`` when there are others)."""
    from tickets.knowledge.services import search_hits

    try:
        found = search_hits(q, viewer, limit=limit + 1)
    except Invalid:  # no word to look for in text (a query of punctuation): it may still name a CI
        return Group("article", 0, False, [])
    items = [Hit("article", h["id"], h["title"], h["subtitle"], round(h["score"] * ARTICLE_SCORE_CEILING, 4))
             for h in found[:limit]]  # fmt: skip
    return Group("article", len(items), len(found) > limit, items)


@dataclass
class _Plan:
    """How one group is searched: ``matching`` selects (id, relevance) of the objects that match
    (counted); ``lookups`` the prefix lookups that rank high (their objects match too, so they are
    not counted again: they make sure the best are among the candidates ranked)."""

    table: Any
    matching: list
    lookups: list
    columns: list
    tier: ColumnElement
    similarity: ColumnElement  # 0 to 1, orders within a tier (with the candidate's relevance)
    order: list


@functools.lru_cache(maxsize=256)
def _shared_statement(type_: str, dialect: str, shape: tuple[int, int, bool]):
    """The statement of a group for a viewer who sees everything (the statement and its cache key are
    then made once; only the parameters change)."""
    return _statement(type_, dialect, shape, None)


def _statement(type_: str, dialect_name: str, shape: tuple[int, int, bool], visible):
    """One query per group: every matching branch stops at one past the count cap and the distinct
    ids are counted; the first RANK_POOL of each branch and of the lookups are the candidates,
    scored; the best ``limit`` come back, each row with the count."""
    dialect = _DIALECTS[dialect_name]
    plan = _PLANS[type_](dialect, shape, visible)
    branches = [b.limit(_param("cap")).cte(f"{type_}_matching_{n}") for n, b in enumerate(plan.matching)]
    counted = union(*(select(b.c.id) for b in branches)).subquery(f"{type_}_counted")
    matches = select(func.count()).select_from(counted).scalar_subquery()
    pool = [_wrapped(select(b.c.id, b.c.relevance).limit(_param("pool"))) for b in branches]
    pool += [_wrapped(lookup.limit(_param("pool"))) for lookup in plan.lookups]
    hits = union_all(*pool).subquery("hits")
    candidates = (
        select(hits.c.id, func.max(hits.c.relevance).label("relevance")).group_by(hits.c.id).subquery("candidates")
    )
    table_ = plan.table
    score = (plan.tier + 0.99 * dialect.fraction(plan.similarity, candidates.c.relevance)).label("score")
    return (
        select(*plan.columns, plan.tier.label("tier"), score, matches.label("matches"))
        .select_from(candidates.join(table_, table_.c.id == candidates.c.id))
        .order_by(score.desc(), *plan.order, table_.c.id)
        .limit(_param("limit"))
    )


def _wrapped(stmt):
    """A select with a LIMIT as a member of a compound select (SQLite wants it in a subquery)."""
    sub = stmt.subquery()
    return select(sub.c.id, sub.c.relevance)


def _ids(table_, *conditions):
    """A select of (id, relevance 0) of the rows of ``table_`` that meet every condition (None: none)."""
    stmt = select(table_.c.id.label("id"), literal(0.0, Float).label("relevance"))
    return stmt.where(*(c for c in conditions if c is not None))


def _equals(column_) -> ColumnElement:
    return func.lower(column_) == _lower("text")


def _starts(column_) -> ColumnElement:
    return func.lower(column_).like(_lower("prefix"), escape="\\")


def _json_text(dialect, column_, key: str) -> ColumnElement:
    """The text of an attribute (for a list, its JSON text: '["10.0.0.1", ...]')."""
    if dialect.name == "postgresql":
        return column_.op("->>")(literal_column(f"'{key}'"))
    return func.json_extract(column_, literal_column(f"'$.{key}'"))


def _humane(code: str | None) -> str:
    return (code or "").replace("_", " ")


def _hit(type_: str, row, title: str, subtitle: str) -> Hit:
    return Hit(type_, row["id"], title, subtitle, round(float(row["score"]), 4), exact=row["tier"] == 4)


# --- CIs: name, asset tag, serial, addresses; external ids; the holder ----------------------------


def _ci_plan(dialect, shape, visible) -> _Plan:
    ci = ConfigurationItem.__table__
    external = CIExternalId.__table__
    holders = dialect.text_match("user", shape, User.__table__).subquery()
    by_external_id = dialect.text_match("ci_external_id", shape, external).subquery()
    hostname, fqdn = (_json_text(dialect, ci.c.attributes, key) for key in ("hostname", "fqdn"))
    named_by_external_id = select(external.c.id).where(external.c.ci_id == ci.c.id, _equals(external.c.external_id))
    # an address equal to the query: the management IP, or an item of a list (its JSON text holds "it")
    addresses = [_equals(_json_text(dialect, ci.c.attributes, "management_ip"))]
    addresses += [
        func.lower(_json_text(dialect, ci.c.attributes, key)).like(_lower("in_list"), escape="\\")
        for key in ("ip_addresses", "mac_addresses", "virtual_ips")
    ]
    return _Plan(
        table=ci,
        matching=[
            dialect.text_match("ci", shape, ci, visible),
            _ids(
                ci, ci.c.id.in_(select(external.c.ci_id).where(external.c.id.in_(select(by_external_id.c.id)))), visible
            ),
            _ids(ci, ci.c.assigned_to_id.in_(select(holders.c.id)), visible),
        ],
        # indexed on PostgreSQL (lower(name) text_pattern_ops, lower(asset_tag), lower(serial_number))
        lookups=[
            _ids(
                ci,
                or_(_starts(ci.c.name), _equals(ci.c.asset_tag), _equals(ci.c.serial_number)),
                dialect.within_matches("ci", shape, ci),
                visible,
            )
        ],
        columns=[ci.c.id, ci.c.name, ci.c.ci_class, ci.c.status, ci.c.asset_tag],
        tier=case(
            (_equals(ci.c.asset_tag), 4),
            (
                or_(
                    _equals(ci.c.name),
                    _equals(ci.c.serial_number),
                    _equals(hostname),
                    _equals(fqdn),
                    *addresses,
                    named_by_external_id.exists(),
                ),
                3,
            ),
            (or_(_starts(ci.c.name), _starts(ci.c.serial_number), _starts(hostname)), 2),
            else_=1,
        ),
        similarity=dialect.similarity(ci.c.name),
        order=[func.lower(ci.c.name)],
    )


def _render_ci(row) -> Hit:
    known = REGISTRY.get(row["ci_class"])
    detail = [known.label if known else row["ci_class"], _humane(row["status"])]
    if row["asset_tag"]:
        detail.append(row["asset_tag"])
    return _hit("ci", row, row["name"], " · ".join(detail))


# --- tickets: number, title, description ------------------------------------------------------


def _ticket_plan(dialect, shape, visible) -> _Plan:
    ticket = Ticket.__table__
    matching = [dialect.text_match("ticket", shape, ticket, visible)]
    similarity = dialect.similarity(ticket.c.title)
    if dialect.name == "postgresql":
        # The words of the title and description, through the full-text index; ranked by ts_rank.
        words = literal_column(PG_TICKET_TEXT)
        tsquery = func.to_tsquery(literal_column("'simple'"), _param("tsquery"))
        matching.append(_ids(ticket, words.op("@@")(tsquery), visible))
        similarity = func.greatest(similarity, func.ts_rank(words, tsquery, 32))
    if shape[2]:  # "inc-12" names INC0000012, which its text does not hold: a match of its own
        matching.append(_ids(ticket, ticket.c.number == _param("number"), visible))
    return _Plan(
        table=ticket,
        matching=matching,
        lookups=[],
        columns=[ticket.c.id, ticket.c.number, ticket.c.title, ticket.c.kind, ticket.c.state],
        tier=case(
            (ticket.c.number == _param("number"), 4),
            (_equals(ticket.c.title), 3),
            (or_(_starts(ticket.c.number), _starts(ticket.c.title)), 2),
            else_=1,
        ),
        similarity=similarity,
        order=[ticket.c.number.desc()],
    )


def _render_ticket(row) -> Hit:
    detail = f"{_humane(row['kind']).capitalize()} · {_humane(row['state'])}"
    return _hit("ticket", row, f"{row['number']} {row['title']}", detail)


# --- users and teams: name and e-mail ---------------------------------------------------------


def _user_plan(dialect, shape, visible) -> _Plan:
    user = User.__table__
    similarity = dialect.similarity(user.c.name)
    if dialect.name == "postgresql":
        similarity = func.greatest(similarity, dialect.similarity(user.c.email))
    return _Plan(
        table=user,
        matching=[dialect.text_match("user", shape, user)],
        # indexed on PostgreSQL (lower(name) and lower(email), text_pattern_ops)
        lookups=[
            _ids(user, or_(_starts(user.c.name), _starts(user.c.email)), dialect.within_matches("user", shape, user))
        ],
        columns=[user.c.id, user.c.name, user.c.email, user.c.role],
        tier=case(
            (or_(_equals(user.c.name), _equals(user.c.email)), 3),
            (or_(_starts(user.c.name), _starts(user.c.email)), 2),
            else_=1,
        ),
        similarity=similarity,
        order=[func.lower(user.c.name)],
    )


def _render_user(row) -> Hit:
    return _hit("user", row, row["name"] or row["email"], f"{row['email']} · {_humane(row['role'])}")


def _team_plan(dialect, shape, visible) -> _Plan:
    team = Team.__table__
    return _Plan(
        table=team,
        matching=[dialect.text_match("team", shape, team)],
        lookups=[
            _ids(team, or_(_starts(team.c.name), _starts(team.c.email)), dialect.within_matches("team", shape, team))
        ],
        columns=[team.c.id, team.c.name, team.c.email],
        tier=case(
            (or_(_equals(team.c.name), _equals(team.c.email)), 3),
            (or_(_starts(team.c.name), _starts(team.c.email)), 2),
            else_=1,
        ),
        similarity=dialect.similarity(team.c.name),
        order=[func.lower(team.c.name)],
    )


def _render_team(row) -> Hit:
    return _hit("team", row, row["name"], " · ".join(filter(None, ["Team", row["email"]])))


_PLANS = {"ci": _ci_plan, "ticket": _ticket_plan, "user": _user_plan, "team": _team_plan}
_RENDER = {"ci": _render_ci, "ticket": _render_ticket, "user": _render_user, "team": _render_team}
# Each type's visibility rule, from its domain (None: the viewer sees them all). Users and teams:
# everyone who may see any sees them all (requesters see none, above).
_VISIBILITY = {
    "ci": ci_visibility,
    "ticket": ticket_visibility,
    "user": lambda viewer: None,
    "team": lambda viewer: None,
}
