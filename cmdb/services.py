"""CMDB operations: every write to CIs and locations goes through here (routes, CLI, jobs, sync)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
from sqlalchemy import (
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    type_coerce,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased, joinedload, selectinload

from cairn.audit.mixin import jsonable, record_rows, reserve_ids
from cairn.audit.models import ChangeLog
from cairn.auth.models import Team, User
from cairn.auth.policy import restricted, visible_ids
from cairn.db import MAX_ID, DirectSelect, db, id_in, utcnow
from cairn.errors import Conflict, DomainError, Invalid, NotFound
from cairn.external_ids import set_external_ids
from cmdb import classes, lifecycle
from cmdb.bulk_updates import flush_updates
from cmdb.custom_fields import query as custom_query
from cmdb.custom_fields.values import checked_values
from cmdb.models import LOCATION_KINDS, CIAssignment, CIExternalId, ConfigurationItem, Location

CI_FIELDS = (
    "name", "ci_class", "status", "criticality", "asset_tag", "serial_number", "vendor", "model",
    "description", "owner_team_id", "assigned_to_id", "location_id", "purchase_date", "purchase_cost",
    "currency", "warranty_expires",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Reading


@cache
def _ci_loading(*, single: bool) -> tuple:
    """What a CI answer shows of its team, holder and location (a few columns, in the same query) and
    its external ids (joined for one CI, one extra query per page for a list). Versioned rows need
    their version column loaded too. Loader options are immutable: built once per process (building
    them took a third of a millisecond per request)."""
    ci = ConfigurationItem
    return (
        joinedload(ci.owner_team).load_only(Team.id, Team.name, Team.version),
        joinedload(ci.assigned_to).load_only(User.id, User.email, User.name, User.version),
        joinedload(ci.location).load_only(Location.id, Location.name, Location.version),
        joinedload(ci.external_ids) if single else selectinload(ci.external_ids),
    )


@cache
def _ci_by_id(for_update: bool) -> Select:
    """The select of one CI by id (``ci_id``) as an answer shows it, optionally locking its row."""
    ci = ConfigurationItem
    stmt = select(ci).options(*_ci_loading(single=True)).where(ci.id == bindparam("ci_id"))
    return stmt.with_for_update(of=ci) if for_update else stmt


class _Ref(SimpleNamespace):
    """A team, holder or location as a CI answer shows it."""


class CIAnswer(SimpleNamespace):
    """One CI as read for an answer (``CISchema`` dumps it as it dumps the model, ``etag_of`` tags
    it the same): read with one Core statement, without the ORM's identity map and loaders."""

    __tablename__ = ConfigurationItem.__tablename__


_CI_COLUMNS = tuple(c.key for c in ConfigurationItem.__table__.columns)


@cache
def _ci_answer_parts(dialect: str) -> tuple[list, Any]:
    """The columns of a CI answer and the FROM they come from (the CI, its team, holder, place)."""
    ci = ConfigurationItem.__table__
    team, holder, place = Team.__table__.alias("t"), User.__table__.alias("u"), Location.__table__.alias("l")
    columns = [*ci.columns, team.c.name.label("t_name"), holder.c.email.label("u_email"),
               holder.c.name.label("u_name"), place.c.name.label("l_name")]  # fmt: skip
    if dialect == "postgresql":  # the external ids in the same round trip, as the ORM orders them
        ext = CIExternalId.__table__
        pairs = func.json_agg(aggregate_order_by(func.json_build_array(ext.c.source, ext.c.external_id), ext.c.source))
        columns.append(select(pairs).where(ext.c.ci_id == ci.c.id).scalar_subquery().label("x_ids"))
    joined = (
        ci.outerjoin(team, team.c.id == ci.c.owner_team_id)
        .outerjoin(holder, holder.c.id == ci.c.assigned_to_id)
        .outerjoin(place, place.c.id == ci.c.location_id)
    )
    return columns, joined


@cache
def _ci_answer_select(dialect: str, by_id: bool):
    """The answers' select, built once (its columns coerced once, its cache key memoised): of one CI
    by ``ci_id``, or with no WHERE yet."""
    columns, joined = _ci_answer_parts(dialect)
    answers = select(*columns).select_from(joined)
    return answers.where(ConfigurationItem.__table__.c.id == bindparam("ci_id")) if by_id else answers


@cache
def _ci_by_id_direct(dialect: str) -> DirectSelect:
    return DirectSelect(_ci_answer_select(dialect, True))


_N_CI = len(_CI_COLUMNS)


def _answers(rows, dialect: str) -> list[CIAnswer]:
    """Answers from rows of ``_ci_answer_select`` (the CI's columns, then the team's name, the
    holder's e-mail and name, the place's name and, on PostgreSQL, the external ids)."""
    answers = []
    columns, n = _CI_COLUMNS, _N_CI
    postgres = dialect == "postgresql"
    for row in rows:
        answer = CIAnswer(**dict(zip(columns, row[:n], strict=True)))
        team_id, holder_id, place_id = answer.owner_team_id, answer.assigned_to_id, answer.location_id
        answer.owner_team = None if team_id is None else _Ref(id=team_id, name=row[n])
        answer.assigned_to = None if holder_id is None else _Ref(id=holder_id, email=row[n + 1], name=row[n + 2])
        answer.location = None if place_id is None else _Ref(id=place_id, name=row[n + 3])
        pairs = (row[n + 4] or ()) if postgres else ()
        answer.external_ids = [_Ref(source=source, external_id=external_id) for source, external_id in pairs]
        answers.append(answer)
    if not postgres and answers:
        ext = CIExternalId.__table__
        by_id = {answer.id: answer for answer in answers}
        rows = db.session.execute(
            select(ext.c.ci_id, ext.c.source, ext.c.external_id)
            .where(ext.c.ci_id.in_(list(by_id)))
            .order_by(ext.c.ci_id, ext.c.source)
        )
        for ci_id, source, external_id in rows:
            by_id[ci_id].external_ids.append(_Ref(source=source, external_id=external_id))
    return answers


def ci_answer(ci_id: int, viewer: User | None = None) -> CIAnswer:
    """The CI as a GET shows it (NotFound as ``get_ci``), read for answering only: a third of the
    CPU of loading the model. Nothing read here may be written back."""
    dialect = db.session.get_bind().dialect.name
    rows = _ci_by_id_direct(dialect).rows({"ci_id": ci_id}) if 0 < ci_id <= MAX_ID else ()
    answers = _answers(rows, dialect)
    if not answers or not can_see_ci(viewer, answers[0]):
        raise NotFound(f"No CI with id {ci_id}.")
    return answers[0]


# ---------------------------------------------------------------------------------------------
# Who sees which CI: the one rule, for the CI endpoints and for every answer that embeds CIs
# (impact, dependencies, graphs, a ticket's CIs, ...). See cairn.auth.policy.


def ci_visibility(viewer: User | None):
    """The SQL condition a CI must meet for ``viewer`` to see it, or None when it sees them all:
    requesters see only the CIs assigned to them."""
    return _visible_to(viewer.id) if restricted(viewer) else None


def _visible_to(viewer_id):
    """The rule of ``ci_visibility`` for a restricted viewer's id (a value or a bound parameter)."""
    return ConfigurationItem.assigned_to_id == viewer_id


def can_see_ci(viewer: User | None, ci: ConfigurationItem | None) -> bool:
    """Whether ``viewer`` may see ``ci`` (the rule of ``ci_visibility``, for a loaded CI)."""
    if ci is None:
        return False
    return not restricted(viewer) or ci.assigned_to_id == viewer.id


def visible_ci_ids(viewer: User | None, ids) -> set[int]:
    """Those of ``ids`` that ``viewer`` may see (one query; none for a viewer who sees all, who
    gets the ids back as given)."""
    return visible_ids(ConfigurationItem, ci_visibility(viewer), ids)


def visible_cis(viewer: User | None, *, load: bool = True) -> Select:
    """Every CI a viewer may see: requesters only the CIs assigned to them. ``load=False`` leaves
    out the eager loads of what an answer shows (for a count or ids)."""
    stmt = select(ConfigurationItem)
    if load:
        stmt = stmt.options(*_ci_loading(single=False))
    condition = ci_visibility(viewer)
    return stmt if condition is None else stmt.where(condition)


def get_ci(ci_id: int, viewer: User | None = None, *, for_update: bool = False) -> ConfigurationItem:
    """The CI, or NotFound when it does not exist or the viewer may not see it.

    ``for_update`` locks the row until commit, so concurrent writers queue instead of losing an
    update or failing on the version check."""
    if not 0 < ci_id <= MAX_ID:
        ci = None
    elif for_update or (ConfigurationItem, (ci_id,), None) not in db.session.identity_map:
        # Not in the session yet: the one prepared statement (its cache key is computed once per
        # process; Session.get builds and keys a new statement every call, 0.3 ms).
        ci = db.session.execute(_ci_by_id(for_update), {"ci_id": ci_id}).unique().scalar_one_or_none()
    else:
        ci = db.session.get(ConfigurationItem, ci_id, options=_ci_loading(single=True))
    if ci is None or not can_see_ci(viewer, ci):
        raise NotFound(f"No CI with id {ci_id}.")
    return ci


def location_and_descendants(location_id: int):
    """A select of the ids of a location and every location inside it (at most four levels)."""
    level = select(Location.id).where(Location.id == location_id)
    levels = [level]
    for _ in range(len(LOCATION_KINDS) - 1):
        child = aliased(Location)
        level = select(child.id).where(child.parent_id.in_(level))
        levels.append(level)
    return union(*levels)


def _search_params(filters: dict[str, Any], viewer: User | None) -> dict[str, Any]:
    """The values the filters of GET /cis bind, by parameter name, in a fixed order (its keys are
    the statement's shape: ``_search_conditions``)."""
    params: dict[str, Any] = {}
    if restricted(viewer):
        params["viewer_id"] = viewer.id
    for key in ("ci_class", "status", "criticality"):
        if filters.get(key):
            params[key] = list(filters[key])
    if filters.get("category"):
        params["category"] = list(classes.classes_in(filters["category"]))
    for key in ("owner_team_id", "assigned_to_id", "asset_tag", "serial_number", "location_id"):
        if filters.get(key) is not None:
            params[key] = filters[key]
    if filters.get("vendor") is not None:
        params["vendor"] = filters["vendor"].lower()
    for key in ("warranty_expires_before", "warranty_expires_after"):
        if filters.get(key) is not None:
            params[key] = filters[key]
    if filters.get("q"):
        params["q"] = "%" + filters["q"].lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if filters.get("custom_fields"):
        dialect = db.session.get_bind().dialect.name
        for name, (kind, value) in sorted(filters["custom_fields"].items()):
            params[custom_query.param_name(name, kind)] = custom_query.param_value(name, kind, value, dialect)
    return params


def _search_conditions(params: dict[str, Any], *, bound: bool, arrays: bool = False) -> list:
    """The WHERE conditions for ``params`` (``_search_params``): with their values (``bound``), or
    with named parameters to supply at execution (a statement cached by shape; ``arrays``: a list is
    one array parameter, ``= ANY(:name)``, PostgreSQL's, so the statement compiles to one string)."""
    ci = ConfigurationItem

    def value(name: str):
        return bindparam(name, params[name] if bound else None)

    def member(column, name: str):
        if arrays:
            return column == any_(bindparam(name, type_=ARRAY(String)))
        return column.in_(bindparam(name, params[name] if bound else None, expanding=True))

    conditions = []
    for name in params:
        if name.startswith(("cf_", "cfm_")):
            dialect = db.session.get_bind().dialect.name
            conditions.append(custom_query.condition(ci.custom_fields, name, custom_query.bind(params, bound), dialect))
        elif name == "viewer_id":
            conditions.append(_visible_to(value(name)))
        elif name == "category":
            conditions.append(member(ci.ci_class, name))
        elif name in ("ci_class", "status", "criticality"):
            conditions.append(member(getattr(ci, name), name))
        elif name in ("owner_team_id", "assigned_to_id", "asset_tag", "serial_number"):
            conditions.append(getattr(ci, name) == value(name))
        elif name == "vendor":
            conditions.append(func.lower(ci.vendor) == value(name))
        elif name == "location_id":
            conditions.append(ci.location_id.in_(location_and_descendants(value(name))))
        elif name == "warranty_expires_before":
            conditions.append(ci.warranty_expires < value(name))
        elif name == "warranty_expires_after":
            conditions.append(ci.warranty_expires > value(name))
        elif name == "q":
            like = value(name)
            # The holder by name or e-mail: a subquery over users, not a join (the CI rows stay one per CI).
            holders = select(User.id).where(
                or_(func.lower(User.name).like(like, escape="\\"), func.lower(User.email).like(like, escape="\\"))
            )
            conditions.append(
                or_(
                    func.lower(ci.name).like(like, escape="\\"),
                    func.lower(ci.asset_tag).like(like, escape="\\"),
                    func.lower(ci.serial_number).like(like, escape="\\"),
                    func.lower(ci.attributes["hostname"].as_string()).like(like, escape="\\"),
                    ci.assigned_to_id.in_(holders),
                )
            )
    return conditions


def search_cis(filters: dict[str, Any], viewer: User | None = None, *, load: bool = True) -> Select:
    """A select of the CIs matching the filters of GET /cis, sorted as asked (``load``: as
    ``visible_cis``)."""
    stmt = select(ConfigurationItem)
    if load:
        stmt = stmt.options(*_ci_loading(single=False))
    return stmt.where(*_search_conditions(_search_params(filters, viewer), bound=True)).order_by(*ci_order(filters))


@cache
def _list_statements(dialect: str, shape: tuple[str, ...], sort: tuple[str, ...]) -> tuple[DirectSelect, DirectSelect]:
    """The count and the page of answers of GET /cis for one shape of filters (the names of its
    parameters) and sort, built once: each request only binds its values (``limit``, ``offset``)."""
    ci = ConfigurationItem.__table__
    postgres = dialect == "postgresql"
    conditions = _search_conditions(dict.fromkeys(shape), bound=False, arrays=postgres)
    counted = select(func.count()).select_from(ci).where(*conditions)
    order = ci_order({"sort": list(sort)})
    ids = select(ci.c.id).where(*conditions).order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    page = ids.scalar_subquery()
    chosen = ci.c.id == any_(func.array(page)) if postgres else ci.c.id.in_(page)
    return DirectSelect(counted), DirectSelect(_ci_answer_select(dialect, False).where(chosen).order_by(*order))


def ci_list_page(filters: dict[str, Any], viewer: User | None, page: int, page_size: int) -> tuple[int, list]:
    """GET /cis as JSON: the total of the CIs matching ``filters`` that ``viewer`` may see, and the
    answers of one page of them (the rows of ``search_cis``, in its order), from statements cached
    by the filters' shape. The page is one statement: its ids in a subquery, their answers by primary
    key sorted again by the same keys; on PostgreSQL the ids are an array (``= ANY(ARRAY(...))``):
    with ``IN (subquery)`` it hash-joined a scan of the whole table (2.8 ms at 5,000 CIs, growing)."""
    params = _search_params(filters, viewer)
    dialect = db.session.get_bind().dialect.name
    sort = tuple(filters.get("sort") or ("name",))
    counted, answers = _list_statements(dialect, tuple(params), sort)
    total = counted.rows(params)[0][0]
    offset = (page - 1) * page_size
    if offset >= total:
        return total, []
    return total, _answers(answers.rows({**params, "limit": page_size, "offset": offset}), dialect)


def ci_order(filters: dict[str, Any]) -> list:
    """The ORDER BY of a CI list: the ``sort`` keys (default name), then the id."""
    ci = ConfigurationItem
    order = []
    for key in filters.get("sort") or ["name"]:
        if custom_query.is_sort_key(key):
            order.append(custom_query.sort_expression(ci.custom_fields, key))
            continue
        column = getattr(ci, key.lstrip("-"))
        order.append(column.desc() if key.startswith("-") else column.asc())
    return [*order, ci.id]


def statuses_at(ci_ids: list[int], moment: datetime) -> dict[int, str]:
    """Each CI's lifecycle status at ``moment``: for a CI whose status moved since, the "before" of
    the first such move in the change log; for the others, the current status."""
    ci_ids = list(ci_ids)
    if not ci_ids:
        return {}
    statuses = dict(
        db.session.execute(
            select(ConfigurationItem.id, ConfigurationItem.status).where(ConfigurationItem.id.in_(ci_ids))
        )
        .tuples()
        .all()
    )
    if db.session.get_bind().dialect.name == "postgresql":
        moved = type_coerce(ChangeLog.changes, JSONB).has_key("status")  # noqa: W601 - the JSONB ? operator
    else:
        moved = func.json_type(ChangeLog.changes, "$.status").is_not(None)
    later = db.session.execute(
        select(ChangeLog.object_id, ChangeLog.changes)
        .where(
            ChangeLog.object_type == "ci",
            ChangeLog.action == "update",
            ChangeLog.object_id.in_(ci_ids),
            ChangeLog.at > moment,
            moved,
        )
        .order_by(ChangeLog.id.desc())
    ).tuples()
    for ci_id, changes in later:  # newest first: the earliest move after the moment is applied last
        before = (changes.get("status") or [None])[0]
        if before:
            statuses[ci_id] = before
    return statuses


def assignments_of(ci: ConfigurationItem) -> list[CIAssignment]:
    return list(
        db.session.scalars(
            select(CIAssignment)
            .where(CIAssignment.ci_id == ci.id)
            .order_by(CIAssignment.assigned_from.desc(), CIAssignment.id.desc())
        )
    )


# ---------------------------------------------------------------------------------------------
# Writing


def create_ci(data: dict[str, Any]) -> ConfigurationItem:
    """Create a CI from validated API fields; raises Invalid (422) or Conflict (409)."""
    data = dict(data)
    attributes = data.pop("attributes", None) or {}
    external_ids = data.pop("external_ids", None)
    # external_ids starts as a (loaded) empty collection: the answer does not query for it
    ci = ConfigurationItem(attributes={}, vendor="", status="planned", criticality="medium", external_ids=[])
    _apply(ci, data, attributes, creating=True)
    db.session.add(ci)
    if external_ids:
        _set_external_ids(ci, external_ids)
    db.session.flush()
    if ci.assigned_to_id is not None:
        _open_assignment(ci, ci.assigned_to_id)
    return ci


def update_ci(ci: ConfigurationItem, data: dict[str, Any]) -> ConfigurationItem:
    """Apply a PATCH: fields replace, attributes merge (None removes a key), status moves by the
    lifecycle's rules, ``external_ids`` (when given) replace the CI's set."""
    _update(ci, data)
    db.session.flush()
    return ci


def _update(ci: ConfigurationItem, data: dict[str, Any]) -> bool:
    """Apply ``data`` without flushing; True when anything actually differs from before."""
    data = dict(data)
    attributes = data.pop("attributes", None)
    external_ids = data.pop("external_ids", None)
    previous_holder = ci.assigned_to_id
    _apply(ci, data, attributes, creating=False)
    changed = db.session.is_modified(ci, include_collections=False)
    if external_ids is not None:
        changed = _set_external_ids(ci, external_ids, replace=True) or changed
    if ci.assigned_to_id != previous_holder:
        _close_assignment(ci, "" if lifecycle.is_active(ci.status) else f"returned: the CI was {ci.status}")
        if ci.assigned_to_id is not None:
            _open_assignment(ci, ci.assigned_to_id)
    return changed


def find_by_external_id(
    source: str, external_id: str, viewer: User | None = None, *, for_update: bool = False
) -> ConfigurationItem | None:
    """The CI a source knows by ``external_id``, or None. ``for_update`` serialises with other
    writers of the same id (and locks the CI row) and reads it fresh, so an update never works
    from a version another writer has just replaced."""
    stmt = (
        visible_cis(viewer)
        .join(CIExternalId)
        .where(CIExternalId.source == source, CIExternalId.external_id == external_id)
    )
    if for_update:
        _lock_external_id(source, external_id)
        stmt = stmt.with_for_update(of=ConfigurationItem).execution_options(populate_existing=True)
    return db.session.scalar(stmt)


def upsert_ci(source: str, external_id: str, data: dict[str, Any]) -> tuple[ConfigurationItem, str]:
    """Create or update the CI that ``source`` knows as ``external_id``.

    Returns the CI and ``created``, ``updated`` or ``unchanged`` (then nothing is written, not even a
    change-log row). Concurrent calls for the same id are serialised (an advisory lock on
    PostgreSQL, the write lock on SQLite), so they make one CI, never two."""
    data = dict(data)
    given = data.pop("external_ids", None) or []
    if any(item["source"] == source and item["external_id"] != external_id for item in given):
        raise Invalid("Conflicting ids.", errors={"external_ids": [f"The path names the {source} id already."]})
    ids = [item for item in given if item["source"] != source]
    ci = find_by_external_id(source, external_id, for_update=True)
    if ci is None:
        missing = {key: ["Needed to create the CI."] for key in ("name", "ci_class") if not data.get(key)}
        if missing:
            raise Invalid(f"No CI is known as {source}:{external_id}; creating one needs more.", errors=missing)
        data["external_ids"] = [*ids, {"source": source, "external_id": external_id}]
        return create_ci(data), "created"
    if ids:
        data["external_ids"] = [*ids, *({"source": e.source, "external_id": e.external_id} for e in ci.external_ids)]
    if not _update(ci, data):
        return ci, "unchanged"
    db.session.flush()
    return ci, "updated"


def _lock_external_id(source: str, external_id: str) -> None:
    bind = db.session.get_bind()
    if bind.dialect.name == "postgresql":
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"ci-external-id:{source}:{external_id}"},
        )


def _set_external_ids(ci: ConfigurationItem, items: list[dict], *, replace: bool = False) -> bool:
    return set_external_ids(ci, items, model=CIExternalId, owner_key="ci_id", label="CI", replace=replace)


def delete_ci(ci: ConfigurationItem) -> None:
    """Delete a CI that nothing refers to; one with tickets or relationships must be retired."""
    db.session.delete(ci)
    db.session.flush()


def _apply(ci: ConfigurationItem, data: dict, attributes: dict | None, *, creating: bool) -> None:
    errors: dict[str, list[str]] = {}
    if "vendor" in data:
        data["vendor"] = (data["vendor"] or "").strip()
    moving = "status" in data and not creating and data["status"] != ci.status
    if moving and not lifecycle.can_move(ci.status, data["status"]):
        allowed = lifecycle.allowed_moves(ci.status)
        raise Conflict(
            f"A CI cannot move from {ci.status} to {data['status']}; allowed: "
            + (", ".join(allowed) or "none, it is final"),
            allowed=list(allowed),
        )
    if moving and data["status"] == "disposed":
        from cmdb.assets.services import require_wipe_record  # the retirement rule lives with the asset records

        require_wipe_record(ci)
    _release_if_inactive(ci, data, creating=creating)
    _check_references(data, errors)
    new_class = data.get("ci_class", ci.ci_class)
    if attributes is not None or new_class != ci.ci_class:
        merged = dict(ci.attributes or {}) if not creating else {}
        for key, value in (attributes or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        try:
            data["attributes"] = classes.validate_attributes(new_class, merged)
        except ma.ValidationError as exc:
            errors["attributes"] = exc.messages
    _check_custom_fields(ci, data, new_class, errors, creating=creating)
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    for key, value in data.items():
        setattr(ci, key, value)
    _check_unique(ci)


def _check_custom_fields(ci: ConfigurationItem, data: dict, new_class: str, errors: dict, *, creating: bool) -> None:
    """The CI's custom field values after the write (``data["custom_fields"]`` merges: a null
    removes a value), checked against the definitions of its class; a new CI or one changing class
    gets the defaults of the fields it lacks."""
    given = data.pop("custom_fields", None)
    moving = not creating and new_class != ci.ci_class
    if given is None and not creating and not moving:
        return
    try:
        data["custom_fields"] = checked_values(
            "ci", new_class, given, None if creating else ci.custom_fields, fill_defaults=creating or moving
        )
    except ma.ValidationError as exc:
        errors["custom_fields"] = exc.messages


def _release_if_inactive(ci: ConfigurationItem | None, data: dict, *, creating: bool) -> None:
    """A CI in an inactive status (retired, disposed) is held by no one: moving there releases its
    holder (``_update`` then closes the assignment); assigning one is 409."""
    status = data.get("status", "planned" if creating else ci.status)
    if lifecycle.is_active(status):
        return
    if data.get("assigned_to_id") is not None:
        raise Conflict(
            f"A {status} CI is held by no one: leave assigned_to_id empty, or move the CI to in_stock first.",
            status_now=status,
        )
    if not creating and ci.assigned_to_id is not None:
        data["assigned_to_id"] = None


def _check_references(data: dict, errors: dict) -> None:
    for key, model, label in (
        ("owner_team_id", Team, "team"),
        ("assigned_to_id", User, "user"),
        ("location_id", Location, "location"),
    ):
        value = data.get(key)
        if value is not None and db.session.get(model, value) is None:
            errors[key] = [f"No {label} with id {value}."]


def _check_unique(ci: ConfigurationItem) -> None:
    state = inspect(ci)
    if state.persistent and not any(
        state.attrs[k].history.has_changes() for k in ("asset_tag", "vendor", "serial_number")
    ):
        return  # unchanged keys of a stored CI: nothing new can clash (the unique constraints still guard)
    if ci.asset_tag:
        clash = db.session.scalar(
            select(ConfigurationItem.id).where(
                ConfigurationItem.asset_tag == ci.asset_tag, ConfigurationItem.id != (ci.id or 0)
            )
        )
        if clash is not None:
            raise Conflict(f"Asset tag {ci.asset_tag} is already used by CI {clash}.", conflicting_id=clash)
    if ci.serial_number:
        clash = db.session.scalar(
            select(ConfigurationItem.id).where(
                ConfigurationItem.vendor == (ci.vendor or ""),
                ConfigurationItem.serial_number == ci.serial_number,
                ConfigurationItem.id != (ci.id or 0),
            )
        )
        if clash is not None:
            raise Conflict(
                f"Serial number {ci.serial_number} of vendor {ci.vendor or '(none)'} is already CI {clash}.",
                conflicting_id=clash,
            )


def _open_assignment(ci: ConfigurationItem, user_id: int) -> None:
    db.session.add(CIAssignment(ci_id=ci.id, user_id=user_id, assigned_from=utcnow()))


def _close_assignment(ci: ConfigurationItem, note: str = "") -> None:
    current = db.session.scalar(
        select(CIAssignment).where(and_(CIAssignment.ci_id == ci.id, CIAssignment.assigned_until.is_(None)))
    )
    if current is not None:
        current.assigned_until = utcnow()
        if note:
            current.note = (f"{current.note}; {note}" if current.note else note)[:1000]


# ---------------------------------------------------------------------------------------------
# Locations


def search_locations(filters: dict[str, Any]) -> Select:
    """A select of the locations matching GET /locations' filters (kind, parent, name contains)."""
    stmt = select(Location).order_by(Location.kind, Location.name, Location.id)
    if filters.get("kind"):
        stmt = stmt.where(Location.kind == filters["kind"])
    if filters.get("parent_id"):
        stmt = stmt.where(Location.parent_id == filters["parent_id"])
    if filters.get("q"):
        stmt = stmt.where(func.lower(Location.name).contains(filters["q"].lower(), autoescape=True))
    return stmt


def create_location(data: dict[str, Any]) -> Location:
    """Create a location; its parent must be the level above (a site has none)."""
    location = Location(**data)
    _check_location(location)
    db.session.add(location)
    db.session.flush()
    return location


def update_location(location: Location, data: dict[str, Any]) -> Location:
    for key, value in data.items():
        setattr(location, key, value)
    _check_location(location)
    db.session.flush()
    return location


def _check_location(location: Location) -> None:
    level = LOCATION_KINDS.index(location.kind)
    if location.parent_id is None:
        if level != 0:
            raise Invalid("Only a site stands alone.", errors={"parent_id": [f"A {location.kind} needs a parent."]})
    else:
        parent = db.session.get(Location, location.parent_id)
        if parent is None:
            raise Invalid("Unknown parent.", errors={"parent_id": [f"No location with id {location.parent_id}."]})
        if LOCATION_KINDS.index(parent.kind) != level - 1:
            raise Invalid(
                "Wrong parent level.",
                errors={
                    "parent_id": [
                        f"A {location.kind} belongs in a {LOCATION_KINDS[level - 1] if level else 'nothing'}."
                    ]
                },
            )
    clash = db.session.scalar(
        select(Location.id).where(
            Location.name == location.name,
            Location.parent_id.is_(None) if location.parent_id is None else Location.parent_id == location.parent_id,
            Location.id != (location.id or 0),
        )
    )
    if clash is not None:
        raise Conflict(f"A location named {location.name!r} exists there already.", conflicting_id=clash)


# ---------------------------------------------------------------------------------------------
# Bulk writes (POST /cis/bulk, CSV import, discovery): the page's lookups in a few queries, one
# flush for the whole page, and per-item savepoints only when that flush hits a database error.


@dataclass
class BulkOutcome:
    """What happened to one item of a bulk write."""

    index: int
    status: str  # created | updated | unchanged | error
    ci: ConfigurationItem | None = None  # None for CIs the fast path inserted (ci_id says which)
    errors: dict | None = None
    detail: str | None = None
    ci_id: int | None = None

    @property
    def id(self) -> int | None:
        return self.ci.id if self.ci is not None else self.ci_id


@dataclass
class BulkItem:
    """One validated CI body; ``key`` is ``(source, external_id)`` to upsert by, or None to create."""

    index: int
    data: dict[str, Any]
    key: tuple[str, str] | None = None
    ci: ConfigurationItem | None = None  # an already identified CI to update (discovery)


def bulk_upsert_cis(items: list[BulkItem], *, dry_run: bool = False) -> list[BulkOutcome]:
    """Create or update many CIs at once with the rules of ``create_ci``/``upsert_ci``; one bad item
    fails alone. Items with a ``key`` are upserted by that external id, items with a ``ci`` update
    it, the others are created. ``dry_run`` answers the same but writes nothing (created items then
    have no id). Outcomes come back in the order of ``items``."""
    if not items:
        return []
    outer = db.session.begin_nested() if dry_run else None
    try:
        outcomes = _bulk_fast(items)
    except SQLAlchemyError:
        outcomes = None
    if outcomes is None:
        outcomes = [_bulk_one(item) for item in items]
    if outer is not None:
        outer.rollback()
        for outcome in outcomes:
            if outcome.status == "created":
                outcome.ci, outcome.ci_id = None, None
    return outcomes


def _lock_external_ids(keys: list[tuple[str, str]]) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # The driver prepares statements it sees often; a generic plan made while the tables were
        # small (seq scans) would then stay for the connection's life and slow every page as they
        # grow. Plan this transaction's lookups for their actual parameters.
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if keys and db.session.get_bind().dialect.name == "postgresql":
        # The same lock keys as upsert_ci, taken in one sorted pass so two bulk writers can't deadlock.
        db.session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
                " FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
            ),
            {"keys": sorted({f"ci-external-id:{s}:{e}" for s, e in keys})},
        )


def _bulk_fast(items: list[BulkItem]) -> list[BulkOutcome] | None:
    """The fast path in a savepoint; None (savepoint rolled back) when the flush failed in the
    database, so the caller replays item by item."""
    keys = [item.key for item in items if item.key is not None]
    _lock_external_ids(keys)
    known = cis_by_external_ids(keys)
    refs = _prefetch_references([item.data for item in items])
    tags, serials = _prefetch_unique_keys(items)
    outcomes: dict[int, BulkOutcome] = {}
    seen_keys: set[tuple[str, str]] = set()
    later: list[BulkItem] = []
    created: list[tuple[BulkItem, dict]] = []
    updated: list[tuple[BulkItem, ConfigurationItem, bool]] = []
    now = utcnow()
    savepoint = db.session.begin_nested()
    try:
        with db.session.no_autoflush:
            for item in items:
                if item.data.get("external_ids") or (item.key is not None and item.key in seen_keys):
                    later.append(item)  # rare shapes: replayed exactly, after the page
                    continue
                if item.key is not None:
                    seen_keys.add(item.key)
                target = item.ci if item.ci is not None else known.get(item.key) if item.key else None
                try:
                    if target is None:
                        created.append((item, _bulk_new_row(item, refs, tags, serials, now)))
                    else:
                        updated.append((item, target, _bulk_update_ci(target, item.data, tags, serials)))
                except DomainError as exc:
                    if target is not None:
                        db.session.expire(target)
                    outcomes[item.index] = BulkOutcome(item.index, "error", errors=_errors_of(exc), detail=exc.detail)
        # the updates: set-based (cmdb.bulk_updates), with their change-log rows
        flush_updates([ci for _, ci, changed in updated if changed])
        db.session.flush()
        _insert_cis(created, now)
    except SQLAlchemyError:
        savepoint.rollback()
        return None
    savepoint.commit()
    for item, row in created:
        outcomes[item.index] = BulkOutcome(item.index, "created", ci_id=row["id"])
    for item, ci, changed in updated:
        outcomes[item.index] = BulkOutcome(item.index, "updated" if changed else "unchanged", ci)
    for item in later:
        outcomes[item.index] = _bulk_one(item)
    return [outcomes[item.index] for item in items]


_CI_DEFAULTS = {
    "status": "planned", "criticality": "medium", "asset_tag": None, "vendor": "", "serial_number": None,
    "model": None, "description": "", "owner_team_id": None, "assigned_to_id": None, "location_id": None,
    "purchase_date": None, "purchase_cost": None, "currency": None, "warranty_expires": None, "attributes": {},
    "custom_fields": {},
}  # fmt: skip


def _insert_cis(created: list[tuple[BulkItem, dict]], now) -> None:
    """Insert new CIs and their external ids with Core executemany (no ORM objects: a page of a
    thousand CIs is several times faster so), each with its change-log row as the hook would write."""
    if not created:
        return
    connection = db.session.connection()
    rows = [row for _, row in created]
    _insert_with_ids(connection, ConfigurationItem.__table__, rows)
    external = [
        {"ci_id": row["id"], "source": item.key[0], "external_id": item.key[1], "created_at": now, "updated_at": now}
        for item, row in created
        if item.key is not None
    ]
    _insert_with_ids(connection, CIExternalId.__table__, external)
    log = [
        ("ci", row["id"], "create", _created_diff(row), f"{row['ci_class']} {row['name']} created", set())
        for row in rows
    ]
    log += [
        (
            "ci_external_id",
            row["id"],
            "create",
            _created_diff(row),
            f"external id {row['source']}:{row['external_id']} created",
            {row["ci_id"]},
        )
        for row in external
    ]
    record_rows(db.session, log)
    holders = [row for row in rows if row["assigned_to_id"] is not None]
    for row in holders:
        db.session.add(CIAssignment(ci_id=row["id"], user_id=row["assigned_to_id"], assigned_from=now))
    if holders:
        db.session.flush()


def _insert_with_ids(connection, table, rows: list[dict]) -> None:
    """Insert ``rows`` and set each one's ``id``: from the sequence on PostgreSQL (then COPY, or a
    pipelined executemany), by INSERT .. RETURNING elsewhere."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        for row, new_id in zip(rows, reserve_ids(connection, table.name, len(rows)), strict=True):
            row["id"] = new_id
        if not _copy_rows(connection, table, rows):
            connection.execute(insert(table), rows)
    else:
        ids = connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id


def _copy_rows(connection, table, rows: list[dict]) -> bool:
    """COPY ``rows`` into ``table`` (PostgreSQL), each value through its column type's bind processor
    as an INSERT would send it: no statement per row for the driver to build and the server to
    parse, bind and execute (a page of CIs spent more in those than in the rows themselves). False,
    having written nothing, when the rows differ in their keys or leave out a column that has a
    default on the Python side (an INSERT would fill it in): the caller inserts them instead."""
    keys = rows[0].keys()
    if any(c.name not in keys and c.default is not None for c in table.c) or any(r.keys() != keys for r in rows):
        return False
    dialect = connection.dialect
    processors = [(name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in keys]
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(name) for name in keys)
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {quote.format_table(table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = []
                for name, process in processors:
                    value = row[name]
                    values.append(value if process is None else process(value))
                copy.write_row(values)
    finally:
        cursor.close()
    return True


_NOT_IN_DIFF = frozenset(("created_at", "updated_at", "version"))
_JSON_SCALARS = frozenset((str, int, float, bool))


def _created_diff(row: dict) -> dict:
    return {
        key: [None, value if type(value) in _JSON_SCALARS else jsonable(value)]
        for key, value in row.items()
        if value is not None and key not in _NOT_IN_DIFF
    }


def _bulk_new_row(item: BulkItem, refs: dict[str, set[int]], tags: dict, serials: dict, now) -> dict:
    """Check a new CI's body with the page's prefetched lookups; its row, ready to insert."""
    data = dict(item.data)
    if item.key is not None:
        missing = {key: ["Needed to create the CI."] for key in ("name", "ci_class") if not data.get(key)}
        if missing:
            raise Invalid(f"No CI is known as {item.key[0]}:{item.key[1]}; creating one needs more.", errors=missing)
    attributes = data.pop("attributes", None) or {}
    data.pop("external_ids", None)
    errors: dict[str, list[str]] = {}
    for key, label in (("owner_team_id", "team"), ("assigned_to_id", "user"), ("location_id", "location")):
        if data.get(key) is not None and data[key] not in refs[key]:
            errors[key] = [f"No {label} with id {data[key]}."]
    try:
        data["attributes"] = classes.validate_attributes(data["ci_class"], attributes)
    except ma.ValidationError as exc:
        errors["attributes"] = exc.messages
    try:
        data["custom_fields"] = checked_values(
            "ci", data["ci_class"], data.pop("custom_fields", None), None, fill_defaults=True
        )
    except ma.ValidationError as exc:
        errors["custom_fields"] = exc.messages
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    _release_if_inactive(None, data, creating=True)
    data["vendor"] = (data.get("vendor") or "").strip()
    # A placeholder key for a CI without an id yet: unique per item, never equal to a real id.
    _claim_unique(-1 - item.index, data.get("asset_tag"), data["vendor"], data.get("serial_number"), tags, serials)
    return {**_CI_DEFAULTS, **data, "version": 1, "created_at": now, "updated_at": now}


def _bulk_one(item: BulkItem) -> BulkOutcome:
    """One item in its own savepoint, through the exact single-object services."""
    try:
        with db.session.begin_nested():
            if item.ci is not None:
                ci = db.session.get(ConfigurationItem, item.ci.id)
                status = "updated" if _update(ci, item.data) else "unchanged"
                db.session.flush()
            elif item.key is not None:
                ci, status = upsert_ci(item.key[0], item.key[1], item.data)
            else:
                ci, status = create_ci(item.data), "created"
        return BulkOutcome(item.index, status, ci)
    except DomainError as exc:
        return BulkOutcome(item.index, "error", errors=_errors_of(exc), detail=exc.detail)
    except SQLAlchemyError as exc:
        detail = "The item conflicts with existing data (a duplicate or a missing reference)."
        return BulkOutcome(item.index, "error", errors={"_item": [detail]}, detail=f"{detail} ({type(exc).__name__})")


def _errors_of(exc: DomainError) -> dict:
    if exc.errors:
        return exc.errors
    return {"_item": [exc.detail]}


def cis_by_external_ids(keys: list[tuple[str, str]]) -> dict[tuple[str, str], ConfigurationItem]:
    """The CIs that sources know by these ``(source, external_id)`` keys, in a few queries."""
    by_source: dict[str, list[str]] = {}
    for source, external_id in dict.fromkeys(keys):
        by_source.setdefault(source, []).append(external_id)
    found: dict[tuple[str, str], ConfigurationItem] = {}
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    for source, external_ids in by_source.items():
        for start in range(0, len(external_ids), 1000):
            part = external_ids[start : start + 1000]
            if postgresql:
                rows = _external_id_probes(source, part)
            else:
                # source = ? AND external_id IN (...): the unique index answers it.
                rows = db.session.execute(
                    select(CIExternalId.external_id, ConfigurationItem)
                    .join(ConfigurationItem, ConfigurationItem.id == CIExternalId.ci_id)
                    .where(CIExternalId.source == source, CIExternalId.external_id.in_(part))
                ).tuples()
            for external_id, ci in rows:
                found[(source, external_id)] = ci
    return found


# PostgreSQL: the bulk lookups probe the unique indexes once per key, whatever the planner believes
# of the tables. An IN list leaves the plan to the statistics, and without fresh ones (autovacuum
# off, or behind a load that is growing the table) it read every external id of the source, or the
# whole ci table for the serials, on each page: a load that slowed down as it grew. A scalar
# subquery per key, or a LATERAL one behind OFFSET 0 (never merged into a join), is always a probe.
_EXTERNAL_ID_PROBES = text(
    "SELECT k.external_id, (SELECT e.ci_id FROM ci_external_id e WHERE e.source = :source"
    " AND e.external_id = k.external_id) FROM unnest(CAST(:external_ids AS text[])) AS k(external_id)"
)
_SERIAL_PROBES = text(
    "SELECT c.vendor, c.serial_number, c.id FROM unnest(CAST(:serials AS text[])) AS k(serial)"
    " CROSS JOIN LATERAL (SELECT vendor, serial_number, id FROM ci WHERE serial_number = k.serial OFFSET 0) AS c"
)
_TAG_PROBES = text(
    "SELECT c.asset_tag, c.id FROM unnest(CAST(:tags AS text[])) AS k(tag)"
    " CROSS JOIN LATERAL (SELECT asset_tag, id FROM ci WHERE asset_tag = k.tag OFFSET 0) AS c"
)


def _external_id_probes(source: str, external_ids: list[str]) -> list[tuple[str, ConfigurationItem]]:
    pairs = [
        (external_id, ci_id)
        for external_id, ci_id in db.session.execute(
            _EXTERNAL_ID_PROBES, {"source": source, "external_ids": external_ids}
        ).tuples()
        if ci_id is not None
    ]
    if not pairs:
        return []
    cis = {
        ci.id: ci
        for ci in db.session.scalars(
            select(ConfigurationItem).where(id_in(ConfigurationItem.id, [i for _, i in pairs]))
        )
    }
    return [(external_id, cis[ci_id]) for external_id, ci_id in pairs if ci_id in cis]


def _prefetch_references(bodies: list[dict]) -> dict[str, set[int]]:
    """The referenced teams, users and locations that exist (loaded into the session as well, so
    the single-object checks find them without a query)."""
    existing: dict[str, set[int]] = {}
    for key, model in (("owner_team_id", Team), ("assigned_to_id", User), ("location_id", Location)):
        wanted = {b[key] for b in bodies if b.get(key) is not None}
        existing[key] = (
            {obj.id for obj in db.session.scalars(select(model).where(model.id.in_(wanted)))} if wanted else set()
        )
    return existing


def _prefetch_unique_keys(items: list[BulkItem]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Who holds the page's asset tags and (vendor, serial) pairs now: tag -> CI id, pair -> CI id."""
    tags = {item.data["asset_tag"] for item in items if item.data.get("asset_tag")}
    serials = {item.data["serial_number"] for item in items if item.data.get("serial_number")}
    by_tag: dict[str, int] = {}
    by_serial: dict[tuple[str, str], int] = {}
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    if tags:
        if postgresql:
            rows = db.session.execute(_TAG_PROBES, {"tags": sorted(tags)})
        else:
            rows = db.session.execute(
                select(ConfigurationItem.asset_tag, ConfigurationItem.id).where(ConfigurationItem.asset_tag.in_(tags))
            )
        by_tag = dict(rows.tuples().all())
    if serials:
        if postgresql:
            rows = db.session.execute(_SERIAL_PROBES, {"serials": sorted(serials)})
        else:
            rows = db.session.execute(
                select(ConfigurationItem.vendor, ConfigurationItem.serial_number, ConfigurationItem.id).where(
                    ConfigurationItem.serial_number.in_(serials)
                )
            )
        by_serial = {(vendor or "", serial): ci_id for vendor, serial, ci_id in rows.tuples()}
    return by_tag, by_serial


def _claim_unique(ci_key, tag, vendor, serial, tags, serials) -> None:
    """Check an asset tag and serial against the page's prefetched holders and claim them."""
    if tag:
        holder = tags.get(tag)
        if holder is not None and holder != ci_key:
            raise Conflict(f"Asset tag {tag} is already used by CI {holder}.", conflicting_id=holder)
    if serial:
        holder = serials.get((vendor or "", serial))
        if holder is not None and holder != ci_key:
            raise Conflict(
                f"Serial number {serial} of vendor {vendor or '(none)'} is already CI {holder}.", conflicting_id=holder
            )
    if tag:
        tags[tag] = ci_key
    if serial:
        serials[(vendor or "", serial)] = ci_key


def _bulk_differs(ci: ConfigurationItem, data: dict) -> bool:
    """Whether applying ``data`` would change ``ci`` (checked without touching it)."""
    for key, value in data.items():
        if key == "attributes":
            if value is None:
                continue
            merged = dict(ci.attributes or {})
            for name, new in value.items():
                if new is None:
                    merged.pop(name, None)
                else:
                    merged[name] = new
            try:
                if classes.validate_attributes(data.get("ci_class", ci.ci_class), merged) != (ci.attributes or {}):
                    return True
            except ma.ValidationError:
                return True
        elif key == "custom_fields":
            if value is None:
                continue
            merged = dict(ci.custom_fields or {})
            for name, new in value.items():
                if new is None:
                    merged.pop(name, None)
                else:
                    merged[name] = new
            if merged != (ci.custom_fields or {}):
                return True
        elif key == "vendor":
            if (value or "").strip() != (ci.vendor or ""):
                return True
        elif key not in CI_FIELDS or getattr(ci, key) != value:
            return True
    return False


def _bulk_update_ci(ci: ConfigurationItem, data: dict, tags: dict, serials: dict) -> bool:
    if not _bulk_differs(ci, data):
        return False
    data = dict(data)
    vendor = (data["vendor"] or "").strip() if "vendor" in data else ci.vendor
    serial = data.get("serial_number", ci.serial_number)
    tag = data.get("asset_tag", ci.asset_tag)
    if tag != ci.asset_tag or serial != ci.serial_number or vendor != ci.vendor:
        _claim_unique(ci.id, tag, vendor, serial, tags, serials)
    return _update(ci, data)
