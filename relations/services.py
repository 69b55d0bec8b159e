"""Relationships and impact: every relationship write and every graph question goes through here
(routes, jobs, the tickets package, CLI and benchmarks alike)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from inspect import signature
from typing import Any

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import (
    Integer,
    String,
    bindparam,
    column,
    event,
    func,
    inspect,
    literal,
    null,
    or_,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from cairn.audit.mixin import record, record_rows
from cairn.auth.models import Team
from cairn.auth.policy import hidden, restricted
from cairn.config import setting
from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.errors import Conflict, Invalid, NotFound
from cmdb.classes import REGISTRY, may_take_part
from cmdb.models import ConfigurationItem
from cmdb.services import visible_ci_ids
from relations import answers, graphd, paths
from relations import graph as graph_module
from relations.graph import (
    GRAPH_CI_FIELDS,
    TypeInfo,
    bump_version,
    live_graph,
    load_types,
    relationships_between,
    status_change_matters,
)
from relations.impact import (
    DOWN,
    STATE_NAMES,
    AsOfGraph,
    ImpactedCI,
    ImpactResult,
    propagate,
)
from relations.impact import single_points_of_failure as _spof
from relations.models import Relationship, RelationshipType
from relations.types import IMPACT_KINDS, MEMBER_OF

__all__ = [
    "ImpactResult",
    "ImpactedCI",
    "create_relationship",
    "create_relationship_type",
    "relationship_types",
    "bulk_create_relationships",
    "ensure_relationships",
    "open_relationship_ids",
    "delete_relationship",
    "dependencies",
    "enrich",
    "impact",
    "impact_answer",
    "impact_document",
    "register_impact_enricher",
]

MAX_DEPTH = 50
MAX_ROOTS = 1000
DIRECTIONS = ("impact", "dependencies")


# ---------------------------------------------------------------------------------------------
# Relationship types


def relationship_types() -> list[RelationshipType]:
    """Every relationship type, built-in ones first."""
    load_types()
    return list(db.session.scalars(select(RelationshipType).order_by(RelationshipType.id)))


_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def create_relationship_type(data: dict[str, Any]) -> RelationshipType:
    """Add a relationship type: ``name`` (lower-case letters, digits, _; unique), ``label``,
    ``reverse_label``, ``impact`` (one of ``relations.types.IMPACT_KINDS``), ``source_classes`` and
    ``target_classes`` (CI classes; empty: any), ``description``. 422 for bad fields, 409 for a
    name in use. A new type has no relationships yet, so no graph answer changes; every process
    reads the types again when it first meets a relationship of an unknown type. Existing types are
    not edited here: changing the impact direction of a type in use would change past answers."""
    name = str(data.get("name") or "").strip()
    label = str(data.get("label") or "").strip()
    reverse_label = str(data.get("reverse_label") or "").strip()
    impact = data.get("impact")
    errors: dict[str, list[str]] = {}
    if not _TYPE_NAME.match(name):
        errors["name"] = ["2 to 40 lower-case letters, digits or _, starting with a letter."]
    for key, value in (("label", label), ("reverse_label", reverse_label)):
        if not value or len(value) > 100:
            errors[key] = ["1 to 100 characters."]
    if impact not in IMPACT_KINDS:
        errors["impact"] = [f"Choose one of {', '.join(IMPACT_KINDS)}."]
    classes = {}
    for key in ("source_classes", "target_classes"):
        values = list(dict.fromkeys(data.get(key) or ()))
        unknown = [c for c in values if c not in REGISTRY]
        if unknown or len(values) > len(REGISTRY):
            errors[key] = [f"Unknown CI classes: {', '.join(map(str, unknown))[:200]}."]
        classes[key] = values
    description = str(data.get("description") or "")
    if len(description) > 1000:
        errors["description"] = ["At most 1,000 characters."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    load_types()  # the built-in types first, so they keep the lowest ids
    if db.session.scalar(select(RelationshipType.id).where(RelationshipType.name == name)) is not None:
        raise Conflict(f"A relationship type named {name!r} exists already.", errors={"name": ["In use."]})
    rtype = RelationshipType(
        name=name, label=label, reverse_label=reverse_label, impact=impact, description=description, **classes
    )
    db.session.add(rtype)
    db.session.flush()
    return rtype


def _types() -> dict[str, TypeInfo]:
    return load_types(db.session)


# ---------------------------------------------------------------------------------------------
# Relationships


def get_relationship(rel_id: int) -> Relationship:
    rel = db.session.get(Relationship, rel_id) if 0 < rel_id <= MAX_ID else None
    if rel is None:
        raise NotFound(f"No relationship with id {rel_id}.")
    return rel


def search_relationships(filters: dict[str, Any]):
    """A select of relationships: of a CI (either end), of a type, open only unless asked."""
    r = Relationship
    stmt = select(r)
    if filters.get("ci_id") is not None:
        stmt = stmt.where(or_(r.source_id == filters["ci_id"], r.target_id == filters["ci_id"]))
    if filters.get("source_id") is not None:
        stmt = stmt.where(r.source_id == filters["source_id"])
    if filters.get("target_id") is not None:
        stmt = stmt.where(r.target_id == filters["target_id"])
    if filters.get("type"):
        stmt = stmt.where(r.type.in_(filters["type"]))
    as_of = filters.get("as_of")
    if as_of is not None:
        stmt = stmt.where(r.valid_from <= as_of, or_(r.valid_to.is_(None), r.valid_to > as_of))
    elif not filters.get("include_closed"):
        stmt = stmt.where(r.valid_to.is_(None))
    return stmt.options(selectinload(r.source), selectinload(r.target)).order_by(r.id)


def _check_classes(info: TypeInfo, source: ConfigurationItem, target: ConfigurationItem) -> dict:
    errors: dict[str, list[str]] = {}
    if not may_take_part(source.ci_class, info.name, info.source_classes):
        errors["source_id"] = [
            f"A {source.ci_class} cannot be the source of {info.name}; allowed: {', '.join(info.source_classes)}."
        ]
    if not may_take_part(target.ci_class, info.name, info.target_classes):
        errors["target_id"] = [
            f"A {target.ci_class} cannot be the target of {info.name}; allowed: {', '.join(info.target_classes)}."
        ]
    return errors


def create_relationship(data: dict[str, Any]) -> Relationship:
    """Create ``source —type→ target``: unknown CIs or type, a self-loop or classes the type does
    not allow are 422; the same open relationship twice is 409. Cycles are allowed."""
    types = _types()
    source_id, target_id, type_name = data["source_id"], data["target_id"], data["type"]
    errors: dict[str, list[str]] = {}
    info = types.get(type_name)
    if info is None:
        errors["type"] = [f"Unknown relationship type {type_name!r}; known: {', '.join(sorted(types))}."]
    source = db.session.get(ConfigurationItem, source_id) if 0 < source_id <= MAX_ID else None
    target = db.session.get(ConfigurationItem, target_id) if 0 < target_id <= MAX_ID else None
    if source is None:
        errors["source_id"] = [f"No CI with id {source_id}."]
    if target is None:
        errors["target_id"] = [f"No CI with id {target_id}."]
    if source_id == target_id:
        errors["target_id"] = ["A CI cannot be related to itself."]
    if not errors:
        errors.update(_check_classes(info, source, target))
    if errors:
        raise Invalid("The relationship is invalid.", errors=errors)
    existing = db.session.scalar(
        select(Relationship.id).where(
            Relationship.source_id == source_id,
            Relationship.target_id == target_id,
            Relationship.type == type_name,
            Relationship.valid_to.is_(None),
        )
    )
    if existing is not None:
        raise Conflict(
            f"{source.name} {type_name} {target.name} exists already (relationship {existing}).",
            conflicting_id=existing,
        )
    rel = Relationship(
        source_id=source_id,
        target_id=target_id,
        type=type_name,
        note=data.get("note") or "",
        valid_from=utcnow(),
    )
    rel.source, rel.target = source, target
    db.session.add(rel)
    db.session.flush()
    return rel


def delete_relationship(rel: Relationship) -> None:
    """Close the relationship's validity (it stays in history and in ``as_of`` answers)."""
    if rel.valid_to is not None:
        raise Conflict(f"Relationship {rel.id} was already removed at {rel.valid_to.isoformat()}.")
    now = utcnow()
    rel.source, rel.target  # noqa: B018 - loaded for the change-log summary's names
    rel.valid_to = now
    # The flush bumps the graph version (and takes its lock) before the change-log row below.
    db.session.flush()
    record(db.session, rel, "delete", {"valid_to": [None, now.isoformat()]})


# ---------------------------------------------------------------------------------------------
# Many relationships at once (bulk API, imports, discovery, benchmarks). The one open relationship
# per (source, target, type) is the unique partial index uq_relationship_open: rows are inserted
# with ON CONFLICT DO NOTHING on it, so existence is checked by the index itself, never by a plan
# the driver may have cached while the table was small (a row-value IN list, or one planned on an
# empty table, scans every relationship of every batch). Ids of relationships that existed already
# are looked up by one probe of that index per key.


def bulk_create_relationships(items: Iterable[dict[str, Any]], *, chunk: int = 5000) -> int:
    """Insert many relationships at once with the same rules as ``create_relationship`` checked in
    bulk, one change-log row each, and one graph version bump. Raises Invalid naming the first bad
    item's index, or Conflict naming the first that exists already (then nothing is written);
    returns how many were created."""
    with db.session.begin_nested():
        outcomes = _bulk_insert(list(items), chunk=chunk, existing_is_conflict=True)
    return len(outcomes)


def ensure_relationships(
    items: Iterable[dict[str, Any]], *, chunk: int = 5000, ci_classes: dict[int, str] | None = None
) -> list[tuple[int, bool]]:
    """Create the relationships among ``items`` that are not open already (the same rules as
    ``bulk_create_relationships``; an item repeated in ``items`` counts once): per item, the
    relationship's id and whether this call created it. Safe against a concurrent writer of the
    same relationship (the index decides, the loser finds the winner's row). ``ci_classes``: the
    class of every CI the items name, when the caller has just read them (saves reading them again)."""
    return _bulk_insert(list(items), chunk=chunk, existing_is_conflict=False, ci_classes=ci_classes)


def open_relationship_ids(keys: Iterable[tuple[int, int, str]]) -> dict[tuple[int, int, str], int]:
    """The open relationships among ``keys`` (source_id, target_id, type) -> id, each found through
    the unique index on open relationships (one probe per key, never a scan of the table)."""
    keys = list(dict.fromkeys(keys))
    found: dict[tuple[int, int, str], int] = {}
    if not keys:
        return found
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    r = Relationship
    for start in range(0, len(keys), 1000):
        part = keys[start : start + 1000]
        if postgresql:
            arrays = (
                bindparam("s", [k[0] for k in part], type_=ARRAY(Integer)),
                bindparam("t", [k[1] for k in part], type_=ARRAY(Integer)),
                bindparam("ty", [k[2] for k in part], type_=ARRAY(String)),
            )
            batch = func.unnest(*arrays).table_valued("s", "t", "ty").render_derived("k")
        else:
            keys_table = values(column("s", Integer), column("t", Integer), column("ty", String), name="k")
            batch = keys_table.data(part).cte("k")  # WITH k(s, t, ty) AS (VALUES ...): SQLite's form
        # One probe of the index per key, as a correlated subquery: a join would let the planner
        # prefer reading every open relationship once a batch is large (a merge join over all of
        # them, slower as the table grows), whatever the index.
        probe = (
            select(r.id)
            .where(r.source_id == batch.c.s, r.target_id == batch.c.t, r.type == batch.c.ty, r.valid_to.is_(None))
            .scalar_subquery()
        )
        rows = db.session.execute(select(batch.c.s, batch.c.t, batch.c.ty, probe)).tuples()
        found.update({(s, t, ty): rel_id for s, t, ty, rel_id in rows if rel_id is not None})
    return found


def _bulk_insert(
    items: list[dict[str, Any]], *, chunk: int, existing_is_conflict: bool, ci_classes: dict[int, str] | None = None
) -> list[tuple[int, bool]]:
    types = _types()
    connection = db.session.connection()
    db.session.flush()
    bump_version(connection)  # before the change-log rows (see relations.graph)
    outcomes: list[tuple[int, bool]] = []
    for start in range(0, len(items), chunk):
        batch = items[start : start + chunk]
        _check_batch(batch, start, types, duplicates_allowed=not existing_is_conflict, ci_classes=ci_classes)
        outcomes += _insert_batch(connection, batch, start, existing_is_conflict)
    return outcomes


def _check_batch(
    batch: list[dict], start: int, types: dict[str, TypeInfo], *, duplicates_allowed: bool, ci_classes: dict | None
) -> None:
    """The rules of ``create_relationship`` for a batch, with one query: Invalid naming the first bad item."""
    ids = {i["source_id"] for i in batch} | {i["target_id"] for i in batch}
    classes = ci_classes if ci_classes is not None and ids <= ci_classes.keys() else _classes_of(ids)
    if not duplicates_allowed and len({(i["source_id"], i["target_id"], i["type"]) for i in batch}) != len(batch):
        raise Invalid("The same relationship appears twice in the batch.", errors={"items": ["duplicate"]})
    for offset, item in enumerate(batch):
        info = types.get(item["type"])
        problem = None
        if info is None:
            problem = {"type": [f"Unknown relationship type {item['type']!r}."]}
        elif item["source_id"] not in classes or item["target_id"] not in classes:
            problem = {"source_id": ["Unknown CI."]}
        elif item["source_id"] == item["target_id"]:
            problem = {"target_id": ["A CI cannot be related to itself."]}
        else:
            problem = _check_classes_of(info, classes[item["source_id"]], classes[item["target_id"]])
        if problem:
            raise Invalid(f"Item {start + offset} is invalid.", errors=problem, index=start + offset)


def _classes_of(ids) -> dict[int, str]:
    ci = ConfigurationItem
    wanted = [i for i in ids if 0 < i <= MAX_ID]
    return dict(db.session.execute(select(ci.id, ci.ci_class).where(id_in(ci.id, wanted))).tuples().all())


def _check_classes_of(info: TypeInfo, source_class: str, target_class: str) -> dict | None:
    src_ok = may_take_part(source_class, info.name, info.source_classes)
    dst_ok = may_take_part(target_class, info.name, info.target_classes)
    return None if src_ok and dst_ok else {"type": [f"{info.name} is not allowed between these classes."]}


def _insert_new(connection, keys: list[tuple[int, int, str]], notes: list[str], now):
    """INSERT .. ON CONFLICT DO NOTHING on the open-relationship index; the rows inserted, as (id,
    source_id, target_id, type). PostgreSQL: from four arrays (one short statement, not thousands
    of placeholders for the driver to parse); SQLite: one VALUES row per relationship."""
    table = Relationship.__table__
    columns = (table.c.source_id, table.c.target_id, table.c.type, table.c.note, table.c.valid_from,
               table.c.valid_to, table.c.version, table.c.created_at, table.c.updated_at)  # fmt: skip
    conflict = {
        "index_elements": [table.c.source_id, table.c.target_id, table.c.type],
        "index_where": table.c.valid_to.is_(None),
    }
    returning = (table.c.id, table.c.source_id, table.c.target_id, table.c.type)
    if connection.dialect.name == "postgresql":
        k = (
            func.unnest(
                bindparam("s", [key[0] for key in keys], type_=ARRAY(Integer)),
                bindparam("t", [key[1] for key in keys], type_=ARRAY(Integer)),
                bindparam("ty", [key[2] for key in keys], type_=ARRAY(String)),
                bindparam("note", notes, type_=ARRAY(String)),
            )
            .table_valued("s", "t", "ty", "note")
            .render_derived("k")
        )
        stamp = literal(now, type_=table.c.valid_from.type)
        rows = select(k.c.s, k.c.t, k.c.ty, k.c.note, stamp, null(), literal(1), stamp, stamp)
        statement = pg_insert(table).from_select(columns, rows).on_conflict_do_nothing(**conflict)
        return list(connection.execute(statement.returning(*returning)))
    rows = [
        {"source_id": s, "target_id": t, "type": ty, "note": note, "valid_from": now, "valid_to": None, "version": 1,
         "created_at": now, "updated_at": now}
        for (s, t, ty), note in zip(keys, notes, strict=True)
    ]  # fmt: skip
    statement = sqlite_insert(table).on_conflict_do_nothing(**conflict).returning(*returning)
    return list(connection.execute(statement, rows))


def _insert_batch(connection, batch: list[dict], start: int, existing_is_conflict: bool) -> list[tuple[int, bool]]:
    """Insert the batch's new relationships (ON CONFLICT DO NOTHING on the open-relationship index),
    record them in the change log; per item (id, created)."""
    now = utcnow()
    keys = [(i["source_id"], i["target_id"], i["type"]) for i in batch]
    first = {}
    for item, key in zip(batch, keys, strict=True):
        first.setdefault(key, item)
    ordered = sorted(first)  # one order for every writer: concurrent batches can't deadlock
    notes = [first[key].get("note") or "" for key in ordered]
    created = {(s, t, ty): rel_id for rel_id, s, t, ty in _insert_new(connection, ordered, notes, now)}
    if existing_is_conflict and len(created) < len(ordered):
        index = next(start + n for n, key in enumerate(keys) if key not in created)
        raise Conflict(f"Item {index} exists already.", index=index)
    record_rows(
        db.session,
        [
            (
                "relationship",
                rel_id,
                "create",
                {"source_id": [None, s], "target_id": [None, t], "type": [None, ty]},
                f"relationship CI {s} {ty} CI {t} added (bulk)",
                {s, t},
            )
            for (s, t, ty), rel_id in sorted(created.items(), key=lambda kv: kv[1])
        ],
    )
    existing = open_relationship_ids(key for key in first if key not in created)
    outcomes, seen = [], set()
    for key in keys:
        if key in created and key not in seen:
            outcomes.append((created[key], True))
        else:
            outcomes.append((created.get(key) or existing[key], False))
        seen.add(key)
    return outcomes


# ---------------------------------------------------------------------------------------------
# Keeping the graph version honest: bump it in every flush that changes the graph, before the
# change-log rows of that flush are written (see relations.graph for why the order matters).


def _ci_graph_change(ci: ConfigurationItem) -> bool:
    state = inspect(ci)
    for key in GRAPH_CI_FIELDS:
        if state.attrs[key].history.has_changes():
            return True
    status = state.attrs["status"].history
    if status.has_changes():
        before = status.deleted[0] if status.deleted else None
        if status_change_matters(before, ci.status):
            return True
    history = state.attrs["attributes"].history
    if history.has_changes():
        before = history.deleted[0] if history.deleted else None
        after = history.added[0] if history.added else None
        return (before or {}).get("min_members_up") != (after or {}).get("min_members_up") or ci.ci_class == "cluster"
    return False


def _before_flush(session, _flush_context, _instances) -> None:
    bump = False
    for obj in session.new:
        if isinstance(obj, Relationship):
            bump = True
            break
    if not bump:
        for obj in session.dirty:
            if isinstance(obj, Relationship) or (isinstance(obj, ConfigurationItem) and _ci_graph_change(obj)):
                bump = True
                break
    deleted_cis = [o.id for o in session.deleted if isinstance(o, ConfigurationItem) and o.id is not None]
    if deleted_cis:
        linked = session.execute(
            select(Relationship.source_id, Relationship.target_id)
            .where(or_(Relationship.source_id.in_(deleted_cis), Relationship.target_id.in_(deleted_cis)))
            .limit(1)
        ).first()
        if linked is not None:
            ci_id = linked[0] if linked[0] in deleted_cis else linked[1]
            raise Conflict(
                f"CI {ci_id} has relationships (also past ones, kept for history): retire it instead of deleting it.",
                ci_id=ci_id,
            )
    if bump or any(isinstance(o, Relationship) for o in session.deleted):
        bump_version(session.connection())


def install_hooks(session_class=FlaskSession) -> None:
    if not event.contains(session_class, "before_flush", _before_flush):
        event.listen(session_class, "before_flush", _before_flush)


def install_type_names() -> None:
    """Custom CI classes name the relationship types they take part in: cmdb (below relations)
    checks the names through this reader, which seeds the built-in types into an empty table."""
    from cmdb import custom_classes

    custom_classes.read_relationship_types_with(lambda: set(_types()))


# ---------------------------------------------------------------------------------------------
# Impact


_enrichers: list[Callable[..., dict]] = []


def _takes_viewer(fn: Callable) -> bool:
    try:
        return "viewer" in signature(fn).parameters
    except (TypeError, ValueError):
        return False


def register_impact_enricher(fn: Callable[..., dict]) -> None:
    """Add ``fn(result) -> dict`` or ``fn(result, viewer=...) -> dict``, merged into every impact
    answer over HTTP (tickets adds the open tickets on the impacted CIs). Registering the same
    function twice keeps one. An enricher that takes ``viewer`` shows only what that viewer may see
    (cairn.auth.policy); one that does not is left out of the answers of a restricted viewer."""
    if fn not in _enrichers:
        _enrichers.append(fn)


def enrich(result: ImpactResult, viewer=None) -> dict:
    """What the registered enrichers add to an answer for ``viewer``, merged in registration order."""
    extra: dict = {}
    for fn in _enrichers:
        if _takes_viewer(fn):
            extra.update(fn(result, viewer=viewer) or {})
        elif not restricted(viewer):
            extra.update(fn(result) or {})
    return extra


def _validate(max_depth, as_of, relationship_types, ci_classes, direction) -> tuple[set | None, set | None]:
    errors: dict[str, list[str]] = {}
    if direction not in DIRECTIONS:
        errors["direction"] = [f"One of: {', '.join(DIRECTIONS)}."]
    if max_depth is not None and not (isinstance(max_depth, int) and 1 <= max_depth <= MAX_DEPTH):
        errors["max_depth"] = [f"Must be between 1 and {MAX_DEPTH}."]
    if as_of is not None:
        if not isinstance(as_of, datetime):
            errors["as_of"] = ["Not a date-time."]
        elif (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)) > utcnow():
            errors["as_of"] = ["Must not be in the future."]
    allowed = None
    if relationship_types:
        known = _types()
        unknown = [t for t in relationship_types if t not in known]
        if unknown:
            errors["relationship_types"] = [f"Unknown relationship types: {', '.join(unknown)}."]
        allowed = set(relationship_types)
    classes = None
    if ci_classes:
        unknown = [c for c in ci_classes if c not in REGISTRY]
        if unknown:
            errors["ci_classes"] = [f"Unknown CI classes: {', '.join(unknown)}."]
        classes = set(ci_classes)
    if errors:
        raise Invalid("Some parameters are invalid.", errors=errors)
    return allowed, classes


def _roots(ci_ids: list[int], adj, field: str | None) -> tuple[list[int], dict[int, int | None]]:
    """The distinct roots, in order, and their owning teams; unknown ones are 404 (or 422 naming
    ``field`` when they came in a body)."""
    roots = list(dict.fromkeys(ci_ids))
    if not roots or len(roots) > MAX_ROOTS:
        raise Invalid("Give between 1 and 1000 CIs.", errors={field or "ci_ids": ["Between 1 and 1000 CIs."]})
    teams: dict[int, int | None] = {}
    unknown = []
    for r in roots:
        data = adj.node(r) if isinstance(adj, graph_module.LiveGraph) else None
        if data:
            teams[r] = data.get("owner_team_id")
        else:
            unknown.append(r)
    if unknown:
        ci = ConfigurationItem
        wanted = [r for r in unknown if 0 < r <= MAX_ID]
        teams.update(db.session.execute(select(ci.id, ci.owner_team_id).where(id_in(ci.id, wanted))).tuples().all())
        missing = [r for r in unknown if r not in teams]
        if missing:
            message = f"No CI with id {', '.join(map(str, missing))}."
            if field:
                raise Invalid(message, errors={field: [message]})
            raise NotFound(message)
    return roots, teams


def impact(
    ci_ids: list[int],
    *,
    max_depth: int | None = None,
    as_of: datetime | None = None,
    relationship_types: list[str] | None = None,
    ci_classes: list[str] | None = None,
    direction: str = "impact",
    include_inactive: bool = False,
    _field: str | None = None,
) -> ImpactResult:
    """What goes down (or degraded) when the CIs ``ci_ids`` fail together; with
    ``direction="dependencies"`` what they need instead.

    ``max_depth`` bounds the hops; ``relationship_types`` follows only those types;
    ``ci_classes`` keeps only impacted CIs of those classes in the answer (the walk still passes
    through the others); ``as_of`` answers from the relationships valid at that moment and the
    CIs' statuses then (names and classes are today's). Relationships whose type has impact
    ``none`` are never followed. Retired and disposed CIs are never impacted (see
    ``relations.impact``); ``include_inactive`` lists the ones the walk met under
    ``extras["inactive"]``. Unknown CIs: NotFound; bad parameters: Invalid.

    The answer is computed once per question and graph version and then shared (relations.answers):
    treat it as read-only.
    """
    return _impact(
        ci_ids, max_depth=max_depth, as_of=as_of, relationship_types=relationship_types, ci_classes=ci_classes,
        direction=direction, include_inactive=include_inactive, _field=_field,
    ).result  # fmt: skip


def dependencies(ci_id: int | list[int], **kwargs) -> ImpactResult:
    """What ``ci_id`` needs, transitively (same shape as ``impact``). An item is ``down`` when
    losing it alone takes the root down along the shown path, ``degraded`` when a redundant
    cluster on that path absorbs the loss."""
    kwargs["direction"] = "dependencies"
    return impact(ci_id if isinstance(ci_id, list) else [ci_id], **kwargs)


def bounded_walks(ci_ids: Iterable[int], *, hops: int, direction: str) -> dict[int, dict[int, int]]:
    """For each of ``ci_ids``: it and the CIs within ``hops`` of it, with their distance, following
    the graph as impact does (``direction`` ``dependencies``: what it needs; ``impact``: what needs
    it). Event correlation's walks; asked of the graph host when there is one, so a job worker
    keeps no graph of its own. Unknown CIs answer themselves alone."""
    if direction not in ("impact", "dependencies"):
        raise Invalid("direction must be impact or dependencies", errors={"direction": ["Unknown direction."]})
    wanted = sorted({int(i) for i in ci_ids})
    return _bounded_walks(wanted, hops=int(hops), direction=direction) if wanted else {}


@graphd.hosted
def _bounded_walks(ci_ids: list[int], *, hops: int, direction: str) -> dict[int, dict[int, int]]:
    walks = {}
    with live_graph() as graph:
        for ci_id in ci_ids:
            prop = propagate(graph, [ci_id], max_depth=hops, direction=direction)
            walks[ci_id] = {n: prop.depth(n) for n in prop.state}
    return walks


def _impact(
    ci_ids,
    *,
    max_depth=None,
    as_of=None,
    relationship_types=None,
    ci_classes=None,
    direction="impact",
    include_inactive=False,
    _field=None,
    chains=False,
) -> answers.Answer:
    """``impact``'s answer from the cache, or computed and kept there; with ``chains``, also what the
    summary needs from the graph the answer was computed on (derived while that graph is at hand)."""
    allowed, classes = _validate(max_depth, as_of, relationship_types, ci_classes, direction)
    question = dict(
        max_depth=max_depth, allowed=allowed, classes=classes, direction=direction, include_inactive=include_inactive
    )
    database = str(db.engine.url)
    if as_of is None:
        if graphd.socket_path():
            return _answer_from_host(ci_ids, question, _field, chains)
        return _live_answer(ci_ids, _field, chains, **_wire(question))
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    version, stamp = graph_module.read_version(db.session)
    adj = AsOfGraph(db.session, as_of, _types())
    roots, teams = _roots(ci_ids, adj, _field)
    key = answers.question_key(database, version, stamp, roots, as_of=as_of, **question)
    answer = answers.cache.get(key)
    if answer is None:
        answer = _answer(adj, roots, teams, max_depth, allowed, classes, direction, version, include_inactive)
        answer.result.extras["as_of"] = as_of.isoformat()
        answers.cache.put(key, answer, _cache_items())
    if chains and answer.chains is None:
        # The relationships among the answer's CIs as they were then (already loaded when the walk
        # just ran; read again, without walking, when the answer came from the cache).
        adj.prefetch([*roots, *answer.walked, *(i.ci_id for i in answer.result.impacted)])
        answers.ensure_chains(answer, adj)
    return answer


def _wire(question: dict) -> dict:
    """A question as the graph host takes it (JSON values)."""
    return {
        **question,
        "allowed": sorted(question["allowed"]) if question["allowed"] is not None else None,
        "classes": sorted(question["classes"]) if question["classes"] is not None else None,
    }


def _answer_from_host(ci_ids, question: dict, field, chains: bool) -> answers.Answer:
    """An answer at the database's current graph version from this process's cache (its roots
    checked against the database, as the host would), else from the graph host, then kept here:
    paging through a large answer asks the host once."""
    database = str(db.engine.url)
    version, stamp = graph_module.read_version(db.session)
    roots = list(dict.fromkeys(ci_ids))
    answer = answers.cache.get(answers.question_key(database, version, stamp, roots, as_of=None, **question))
    if answer is not None and (answer.chains is not None or not chains):
        _roots(ci_ids, None, field)
        return answer
    answer = _live_answer(ci_ids, field, chains, seen=(version, stamp), **_wire(question))
    answers.cache.put((database, *answer.key[1:]), answer, _cache_items())
    return answer


@graphd.hosted
def _live_answer(
    ci_ids, field, chains, *, max_depth, allowed, classes, direction, include_inactive, seen=None
) -> answers.Answer:
    """The answer from the live graph (cached per graph version), with the chains when asked;
    ``seen``: the graph version the asker read (see ``live_graph``)."""
    allowed = set(allowed) if allowed is not None else None
    classes = set(classes) if classes is not None else None
    question = dict(
        max_depth=max_depth, allowed=allowed, classes=classes, direction=direction, include_inactive=include_inactive
    )
    with live_graph(seen=seen) as graph:
        roots, teams = _roots(ci_ids, graph, field)
        key = answers.question_key(str(db.engine.url), graph.version, graph.stamp, roots, as_of=None, **question)
        answer = answers.cache.get(key)
        if answer is None:
            version = graph.version
            answer = _answer(graph, roots, teams, max_depth, allowed, classes, direction, version, include_inactive)
            answers.cache.put(key, answer, _cache_items())
        if chains:
            answers.ensure_chains(answer, graph)
        return answer


def _cache_items() -> int:
    return max(0, setting("CAIRN_IMPACT_CACHE_ITEMS", answers.DEFAULT_MAX_ITEMS))


def _answer(adj, roots, teams, max_depth, allowed, classes, direction, version, include_inactive) -> answers.Answer:
    answers.cache.traversed()
    prop = propagate(adj, roots, max_depth=max_depth, allowed=allowed, direction=direction)
    root_set = set(roots)
    reached = [n for n in prop.state if n not in root_set]
    if isinstance(adj, AsOfGraph):
        adj.load_nodes(reached + (list(prop.inactive) if include_inactive else []))
    node = adj.node
    impacted: list[ImpactedCI] = []
    walked: list[int] = []
    services, owner_teams = [], {t for t in teams.values() if t is not None}
    state, depth_down, depth_deg = prop.state, prop.depth_down, prop.depth_deg
    par_down, par_deg = prop.par_down, prop.par_deg
    path = prop.path
    for n in reached:
        data = node(n)
        if data is None:  # a CI deleted since (as_of answers); nothing to show
            walked.append(n)
            continue
        ci_class = data["ci_class"]
        if classes is not None and ci_class not in classes:
            walked.append(n)
            continue
        s = state[n]
        team = data.get("owner_team_id")
        if s == DOWN:
            depth, parent = depth_down[n], par_down[n]
        else:
            depth, parent = depth_deg[n], par_deg[n][0]
        impacted.append(
            ImpactedCI(n, data["name"], ci_class, data["criticality"], depth, STATE_NAMES[s], path(n), parent, team)
        )
        if ci_class == "business_service":
            services.append(n)
        if team is not None:
            owner_teams.add(team)
    impacted.sort(key=lambda i: (i.depth, i.ci_id))
    extras: dict[str, Any] = {"direction": direction}
    if include_inactive:
        extras["inactive"] = _inactive_items(prop, node, classes)
    result = ImpactResult(
        roots=roots,
        impacted=impacted,
        business_services=sorted(services),
        owner_team_ids=sorted(owner_teams),
        graph_version=version,
        extras=extras,
    )
    return answers.Answer(result, frozenset(allowed) if allowed is not None else None, tuple(walked))


def _inactive_items(prop, node, classes) -> list[dict]:
    """The retired and disposed CIs the walk met (and did not go through), as the answer shows them."""
    items = []
    for n, (_, depth) in prop.inactive.items():
        data = node(n)
        if data is None or (classes is not None and data["ci_class"] not in classes):
            continue
        ci = {"id": n, **_ci_ref(data), "status": data.get("status")}
        items.append({"ci": ci, "depth": depth, "path": prop.inactive_path(n)})
    items.sort(key=lambda i: (i["depth"], i["ci"]["id"]))
    return items


def impact_document(result: ImpactResult, *, single_root: bool, viewer=None) -> dict:
    """The JSON body of an impact answer, built without a schema per item (thousands of items), as
    ``viewer`` may see it: an impacted CI it may not see is ``{id: null, visible: false}`` (its
    depth and state stay, so the counts stay true), a path or ``parent`` names it as null, and the
    business services and owning teams are those of the CIs it may see."""
    visible = _visible_in(result, viewer)
    down = sum(1 for i in result.impacted if i.state == "down")
    body = _head(result, single_root, visible, down)
    body["impacted"] = answers.items(result.impacted, visible, hidden())
    body.update(_tail(result, visible))
    body.update(enrich(result, viewer))
    return body


def impact_answer(
    ci_ids: list[int],
    *,
    single_root: bool,
    viewer=None,
    summary: bool = False,
    page: int | None = None,
    page_size: int | None = None,
    allow_no_roots: bool = False,
    **question,
) -> dict:
    """An impact answer over HTTP for ``viewer``, as ``impact_document`` (``question``: ``impact``'s
    keywords) or, when asked, a page of it or its summary; the body to write with orjson (it may hold
    ``orjson.Fragment`` values). With ``allow_no_roots``, no ``ci_ids`` at all (a ticket without CIs)
    is an answer in the same shape with nothing impacted, instead of Invalid.

    ``page``/``page_size`` (both given; the caller applies the defaults): that page of the items,
    nearest first, then the most critical, then by id (for a viewer who may not see some CIs, those
    come after the ones it sees at their depth); ``count``, ``down`` and ``degraded`` stay the totals,
    the business services and owning teams those of the whole answer, the open tickets those on the
    roots and this page's CIs. A page past the end has no items.

    ``summary``: no items; instead ``summary`` with the counts of down and degraded CIs by CI class,
    owning team, business service and depth, the business services (with the CIs their failure comes
    through) and the impacted CIs that have open incidents (from the open tickets the registered
    enrichers add, as ``viewer`` may see them). What ``viewer`` may not see is counted in
    ``summary.hidden`` and by depth only.

    The traversal is shared with every other page, summary and caller of ``impact`` asking the same
    question at the same graph version (relations.answers); visibility is applied here, each time."""
    if not ci_ids and allow_no_roots:
        answer = _no_roots(**question)
    else:
        answer = _impact(ci_ids, chains=summary, **question)
    result = answer.result
    visible = _visible_in(result, viewer)
    body = _head(result, single_root, visible, answer.down_count())
    enriched = result
    if page is not None:
        shown = answers.page_of(answers.ranked(answer, visible), page, page_size)
        body["impacted"] = answers.items(shown, visible, hidden())
        # The enrichers (open tickets) see the page: what they add stays the size of a page.
        enriched = ImpactResult(result.roots, shown, result.business_services, result.owner_team_ids,
                                result.graph_version, result.extras)  # fmt: skip
    elif not summary and visible is None:
        body["impacted"] = answers.impacted_fragment(answer)
    elif not summary:
        body["impacted"] = answers.items(result.impacted, visible, hidden())
    body.update(_tail(result, visible))
    extra = enrich(enriched, viewer)
    body.update(extra)
    if summary:
        incidents = _open_incidents(extra.get("open_tickets", ()))
        # the owning teams of the whole answer (a superset of those the summary counts by)
        body["summary"] = answers.summary(answer, visible, _team_names(result.owner_team_ids), incidents)
    return body


def _no_roots(
    *,
    max_depth=None,
    as_of=None,
    relationship_types=None,
    ci_classes=None,
    direction="impact",
    include_inactive=False,
    _field=None,
) -> answers.Answer:
    """The answer of a question with no CIs: the parameters checked as ``impact`` checks them,
    nothing impacted, the graph version of now (not cached: there is nothing to compute)."""
    allowed, _ = _validate(max_depth, as_of, relationship_types, ci_classes, direction)
    extras: dict[str, Any] = {"direction": direction}
    if include_inactive:
        extras["inactive"] = []
    if as_of is not None:
        extras["as_of"] = (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)).isoformat()
    version, _ = graph_module.read_version(db.session)
    result = ImpactResult(roots=[], impacted=[], business_services=[], owner_team_ids=[], graph_version=version,
                          extras=extras)  # fmt: skip
    return answers.Answer(result, frozenset(allowed) if allowed is not None else None, chains={})


def _visible_in(result: ImpactResult, viewer) -> set[int] | None:
    """The CIs an answer names that ``viewer`` may see; None when it sees everything."""
    if not restricted(viewer):
        return None
    named = set(result.roots) | {n for i in result.impacted for n in i.path}
    named |= {n for item in result.extras.get("inactive", ()) for n in item["path"]}
    return visible_ci_ids(viewer, named)


def _head(result: ImpactResult, single_root: bool, visible: set[int] | None, down: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if single_root:
        body["root"] = _shown(result.roots[0], visible)
    body["roots"] = [_shown(r, visible) for r in result.roots]
    body["count"] = len(result.impacted)
    body["down"] = down
    body["degraded"] = body["count"] - down
    return body


def _tail(result: ImpactResult, visible: set[int] | None) -> dict[str, Any]:
    """What follows the items: business services, owning teams, graph version, the extras."""
    body: dict[str, Any] = {}
    if visible is None:
        body["business_services"] = result.business_services
        body["owner_team_ids"] = result.owner_team_ids
    else:
        body["business_services"] = [s for s in result.business_services if s in visible]
        body["owner_team_ids"] = _owner_teams(visible & ({i.ci_id for i in result.impacted} | set(result.roots)))
    body["graph_version"] = result.graph_version
    for key, value in result.extras.items():
        if key == "inactive" and visible is not None:
            value = [
                {**item, "ci": item["ci"] if item["ci"]["id"] in visible else hidden(),
                 "path": [_shown(n, visible) for n in item["path"]]}
                for item in value
            ]  # fmt: skip
        if key != "direction":
            body[key] = value
    return body


def _open_incidents(open_tickets) -> dict[int, list[dict]]:
    """CI id -> the open incidents on it, from the open tickets an answer shows (P1 first)."""
    found: dict[int, list[dict]] = {}
    for ticket in open_tickets:
        if ticket.get("kind") != "incident":
            continue
        entry = {"id": ticket["id"], "number": ticket.get("number"), "priority": ticket.get("priority"),
                 "state": ticket.get("state")}  # fmt: skip
        for ci_id in ticket.get("ci_ids", ()):
            found.setdefault(ci_id, []).append(entry)
    return found


def _team_names(team_ids) -> dict[int, str]:
    return dict(db.session.execute(select(Team.id, Team.name).where(id_in(Team.id, team_ids))).tuples().all())


def _shown(ci_id: int | None, visible: set[int] | None) -> int | None:
    """A CI id as an answer shows it: null when the viewer may not see that CI."""
    return ci_id if visible is None or ci_id in visible else None


def _owner_teams(ci_ids: set[int]) -> list[int]:
    ci = ConfigurationItem
    stmt = select(ci.owner_team_id).where(id_in(ci.id, ci_ids), ci.owner_team_id.is_not(None)).distinct()
    return sorted(db.session.scalars(stmt))


# ---------------------------------------------------------------------------------------------
# Analysis


def shortest_path(from_id: int, to_id: int, *, directed: bool = True, viewer=None) -> dict:
    """The shortest chain by which ``from_id`` depends on ``to_id`` (with ``directed=False``: any
    chain of relationships between them, impact-less ones included): ``{path, relationships}``;
    NotFound when there is none. For ``viewer``, both ends must be CIs it may see (else the same
    404 as an unknown CI), and a CI on the way it may not see is null, as are its relationships."""
    if restricted(viewer):
        visible = visible_ci_ids(viewer, [from_id, to_id])
        for ci_id in (from_id, to_id):
            if ci_id not in visible:
                raise NotFound(f"No CI with id {ci_id}.")
    answer = _shortest_path(from_id, to_id, directed=directed)
    if restricted(viewer):
        visible = visible_ci_ids(viewer, answer["path"])
        nodes = answer["path"]
        answer["relationships"] = [
            rel if u in visible and v in visible else None
            for rel, u, v in zip(answer["relationships"], nodes, nodes[1:], strict=False)
        ]
        answer["path"] = [_shown(n, visible) for n in nodes]
    return answer


@graphd.hosted
def _shortest_path(from_id: int, to_id: int, *, directed: bool = True) -> dict:
    with live_graph() as graph:
        for ci_id in (from_id, to_id):
            if graph.node(ci_id) is None:
                _require_ci(ci_id)
        if from_id == to_id:
            return {"path": [from_id], "relationships": []}
        if directed:
            nodes = paths.directed_path(graph.G, from_id, to_id)
        else:
            nodes = paths.undirected_path(graph, from_id, to_id)
        if nodes is None:
            raise NotFound(f"No chain of relationships leads from CI {from_id} to CI {to_id}.")
        steps = list(zip(nodes, nodes[1:], strict=False))
        between = relationships_between(db.session, steps)
        # Each step's relationship (the graph holds types, not ids; the table is read for the few
        # steps of a path): the oldest open one that makes the step; None: it ended meanwhile.
        rels = [_step_relationship(graph, step, between[step], directed) for step in steps]
        return {"path": nodes, "relationships": rels, "graph_version": graph.version}


def _step_relationship(graph, step: tuple[int, int], rows: list[tuple], directed: bool) -> int | None:
    """Of the open relationships between a step's two CIs (``rows``, oldest first), the oldest
    that makes the step: on a directed path, one of a type the graph's edge holds and oriented
    so that the step's first CI depends on its second (not, say, an older one the other way);
    on an undirected path, any."""
    if directed:
        u, v = step
        held = graph.G._succ.get(u, {}).get(v, ())
        for rel_id, source, target, type_name in rows:
            info = graph.types.get(type_name)
            if type_name in held and info is not None and ((source, target) == (u, v)) == info.forward:
                return rel_id
    return rows[0][0] if rows else None


def _require_ci(ci_id: int) -> None:
    exists = 0 < ci_id <= MAX_ID and db.session.get(ConfigurationItem, ci_id) is not None
    if not exists:
        raise NotFound(f"No CI with id {ci_id}.")


def single_points_of_failure(service_id: int, viewer=None) -> dict:
    """The CIs whose failure alone takes the service down, most critical first; for ``viewer``,
    of a service it may see (else the same 404 as an unknown CI), a CI it may not see being
    ``{id: null, visible: false}``."""
    if restricted(viewer) and service_id not in visible_ci_ids(viewer, [service_id]):
        raise NotFound(f"No CI with id {service_id}.")
    answer = _single_points_of_failure(service_id)
    if restricted(viewer):
        visible = visible_ci_ids(viewer, [item["id"] for item in answer["items"]])
        answer["items"] = [item if item["id"] in visible else hidden() for item in answer["items"]]
    return answer


@graphd.hosted
def _single_points_of_failure(service_id: int) -> dict:
    with live_graph() as graph:
        if graph.node(service_id) is None:
            _require_ci(service_id)
            return {"service_id": service_id, "count": 0, "items": [], "graph_version": graph.version}
        ids = _spof(graph, service_id)
        rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
        items = [{"id": i, **_ci_ref(graph.node(i))} for i in ids]
        items.sort(key=lambda c: (rank.get(c["criticality"], 9), c["name"], c["id"]))
        return {"service_id": service_id, "count": len(items), "items": items, "graph_version": graph.version}


def _ci_ref(data: dict) -> dict:
    return {"name": data["name"], "ci_class": data["ci_class"], "criticality": data["criticality"]}


def cycles(viewer=None) -> dict:
    """Groups of CIs that depend on each other in a circle (strongly connected components); for
    ``viewer``, only the CIs it may see (a group with none is left out)."""
    answer = _cycles()
    if not restricted(viewer):
        return answer
    visible = visible_ci_ids(viewer, {n for group in answer["cycles"] for n in group["ci_ids"]})
    groups = []
    for group in answer["cycles"]:
        members = [n for n in group["ci_ids"] if n in visible]
        if members:
            groups.append(
                {
                    "size": group["size"],
                    "ci_ids": members,
                    "cycle": [_shown(n, visible) for n in group["cycle"]],
                    "cis": [c for c in group["cis"] if c["id"] in visible],
                }
            )
    return {**answer, "count": len(groups), "cycles": groups}


@graphd.hosted
def _cycles() -> dict:
    import networkx as nx

    with live_graph() as graph:
        cached = graph.__dict__.get("_cycles")
        if cached and cached[0] == (graph.version, graph.stamp):
            return cached[1]
        G = graph.G
        groups = []
        for component in nx.strongly_connected_components(G):
            if len(component) < 2:
                continue
            members = sorted(component)
            cycle = paths.shortest_cycle(G, members)
            groups.append(
                {
                    "size": len(members),
                    "ci_ids": members,
                    "cycle": cycle,
                    "cis": [{"id": m, **_ci_ref(G._node[m])} for m in members[:50]],
                }
            )
        groups.sort(key=lambda g: (-g["size"], g["ci_ids"][0]))
        answer = {"count": len(groups), "cycles": groups, "graph_version": graph.version}
        graph._cycles = ((graph.version, graph.stamp), answer)
        return answer


def neighbourhood(ci: ConfigurationItem, depth: int = 2, max_nodes: int = 500, viewer=None) -> dict:
    """The CIs within ``depth`` relationships of ``ci`` (either way) and the relationships between
    them, for visualisers. Stops at ``max_nodes`` and says so. The CIs ``viewer`` may not see are
    left out with their relationships, and counted in ``hidden_nodes``."""
    root = {"id": ci.id, "name": ci.name, "ci_class": ci.ci_class, "criticality": ci.criticality}
    hood = _neighbourhood(root, depth, max_nodes)
    hood["hidden_nodes"] = 0
    if restricted(viewer):
        visible = visible_ci_ids(viewer, [n["id"] for n in hood["nodes"]])
        shown = [n for n in hood["nodes"] if n["id"] in visible]
        hood["hidden_nodes"] = len(hood["nodes"]) - len(shown)
        hood["nodes"] = shown
        hood["edges"] = [e for e in hood["edges"] if e["source"] in visible and e["target"] in visible]
    return hood


@graphd.hosted
def _neighbourhood(root: dict, depth: int, max_nodes: int) -> dict:
    with live_graph() as graph:
        G, P, types = graph.G, graph.passive, graph.types
        nodes = {root["id"]: 0}
        truncated = False
        frontier = [root["id"]] if root["id"] in G else []
        for d in range(1, depth + 1):
            nxt = []
            for n in frontier:
                # In id order: every process answers the same (adjacency order is how each loaded it).
                for m in sorted(set(paths.neighbours(graph, n))):
                    if m not in nodes:
                        if len(nodes) >= max_nodes:
                            truncated = True
                            break
                        nodes[m] = d
                        nxt.append(m)
            frontier = nxt
        node_list = []
        for n, d in nodes.items():
            data = G._node.get(n) or root
            node_list.append({"id": n, "depth": d, **_ci_ref(data)})
        # The linked pairs among the nodes, then their relationships (with ids) from the table.
        pairs = {
            (u, v) if u < v else (v, u)
            for u in nodes
            for adjacency in (G._succ, P._succ)
            for v in adjacency.get(u, ())
            if v in nodes
        }
        edges = []
        for rows in relationships_between(db.session, sorted(pairs)).values():
            for rel_id, source, target, type_name in rows:
                info = types.get(type_name)
                edges.append(
                    {
                        "id": rel_id,
                        "source": source,
                        "target": target,
                        "type": type_name,
                        "label": info.label if info else type_name,
                    }
                )
        edges.sort(key=lambda e: e["id"])
        return {
            "root": root["id"],
            "depth": depth,
            "nodes": node_list,
            "edges": edges,
            "truncated": truncated,
            "graph_version": graph.version,
        }


# ---------------------------------------------------------------------------------------------
# For drawing an impact answer (the web desk's impact map and its exports)


def impact_links(ci_ids, *, as_of: datetime | None = None) -> list[dict]:
    """The relationships that carry impact between CIs of ``ci_ids`` (both ends in the set), open
    now or valid at ``as_of``: ``[{id, source, target, type, label, dependency, dependent}]``, by id.
    ``source``/``target`` are as recorded; ``dependency -> dependent`` is the way a failure travels
    (so a drawing can run from the failed CIs to what they take down). Impact-less types are left out."""
    wanted = {i for i in ci_ids if isinstance(i, int) and 0 < i <= MAX_ID}
    if not wanted:
        return []
    types = _types()
    carrying = [name for name, info in types.items() if info.propagates]
    r = Relationship
    stmt = select(r.id, r.source_id, r.target_id, r.type).where(r.type.in_(carrying))
    if as_of is not None:
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        stmt = stmt.where(r.valid_from <= as_of, or_(r.valid_to.is_(None), r.valid_to > as_of))
    else:
        stmt = stmt.where(r.valid_to.is_(None))
    rows = sorted(
        db.session.execute(stmt.where(id_in(r.source_id, wanted))),
        key=lambda row: row[0],
    )
    links = []
    for rel_id, source, target, type_name in rows:
        if target not in wanted:
            continue
        info = types[type_name]
        dependent, dependency = (source, target) if info.forward else (target, source)
        links.append({"id": rel_id, "source": source, "target": target, "type": type_name, "label": info.label,
                      "dependency": dependency, "dependent": dependent})  # fmt: skip
    return links


def cluster_health(cluster_ids, *, as_of: datetime | None = None) -> dict[int, dict]:
    """For each cluster of ``cluster_ids`` (a CI with ``member_of`` members): its active members and
    how many must stay up (``min_members_up``), now or at ``as_of``: ``{id: {members, min_up}}``.
    CIs that are not clusters are left out. With an impact answer a caller tells how many are up."""
    wanted = [i for i in dict.fromkeys(cluster_ids) if isinstance(i, int) and 0 < i <= MAX_ID]
    if not wanted:
        return {}

    if as_of is None:
        return _cluster_health_now(wanted)
    adj = AsOfGraph(db.session, as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC), _types())
    adj.prefetch(wanted)
    return _cluster_health_in(adj, wanted)


@graphd.hosted
def _cluster_health_now(wanted: list[int]) -> dict[int, dict]:
    with live_graph() as graph:
        return _cluster_health_in(graph, wanted)


def _cluster_health_in(adj, wanted: list[int]) -> dict[int, dict]:
    out = {}
    for c in wanted:
        if c not in adj.member_targets:
            continue
        succ, inactive = adj.succ.get(c, {}), adj.inactive
        members = [m for m, ed in succ.items() if MEMBER_OF in ed.values() and m not in inactive]
        out[c] = {"members": sorted(members), "min_up": adj.min_up(c)}
    return out
