"""CMDB operations: every write to CIs and locations goes through here (routes, CLI, jobs, sync)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Select, and_, func, or_, select, text, union
from sqlalchemy.orm import aliased

from cairn.auth.models import Team, User
from cairn.auth.roles import REQUESTER
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Invalid, NotFound
from cmdb import classes, lifecycle
from cmdb.models import LOCATION_KINDS, CIAssignment, CIExternalId, ConfigurationItem, Location

CI_FIELDS = (
    "name", "ci_class", "status", "criticality", "asset_tag", "serial_number", "vendor", "model",
    "description", "owner_team_id", "assigned_to_id", "location_id", "purchase_date", "purchase_cost",
    "currency", "warranty_expires",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Reading


def visible_cis(viewer: User | None) -> Select:
    """Every CI a viewer may see: requesters only the CIs assigned to them."""
    stmt = select(ConfigurationItem)
    if viewer is not None and viewer.role == REQUESTER:
        stmt = stmt.where(ConfigurationItem.assigned_to_id == viewer.id)
    return stmt


def get_ci(ci_id: int, viewer: User | None = None, *, for_update: bool = False) -> ConfigurationItem:
    """The CI, or NotFound when it does not exist or the viewer may not see it.

    ``for_update`` locks the row until commit, so concurrent writers queue instead of losing an
    update or failing on the version check."""
    lock = {"of": ConfigurationItem} if for_update else None
    ci = db.session.get(ConfigurationItem, ci_id, with_for_update=lock) if 0 < ci_id <= MAX_ID else None
    if ci is None or (viewer is not None and viewer.role == REQUESTER and ci.assigned_to_id != viewer.id):
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


def search_cis(filters: dict[str, Any], viewer: User | None = None) -> Select:
    """A select of the CIs matching the filters of GET /cis, sorted as asked."""
    ci = ConfigurationItem
    stmt = visible_cis(viewer)
    if filters.get("ci_class"):
        stmt = stmt.where(ci.ci_class.in_(filters["ci_class"]))
    if filters.get("category"):
        stmt = stmt.where(ci.ci_class.in_(classes.classes_in(filters["category"])))
    if filters.get("status"):
        stmt = stmt.where(ci.status.in_(filters["status"]))
    if filters.get("criticality"):
        stmt = stmt.where(ci.criticality.in_(filters["criticality"]))
    for key in ("owner_team_id", "assigned_to_id", "asset_tag", "serial_number"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(ci, key) == filters[key])
    if filters.get("vendor") is not None:
        stmt = stmt.where(func.lower(ci.vendor) == filters["vendor"].lower())
    if filters.get("location_id") is not None:
        stmt = stmt.where(ci.location_id.in_(location_and_descendants(filters["location_id"])))
    if filters.get("warranty_expires_before") is not None:
        stmt = stmt.where(ci.warranty_expires < filters["warranty_expires_before"])
    if filters.get("q"):
        like = "%" + filters["q"].lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                func.lower(ci.name).like(like, escape="\\"),
                func.lower(ci.asset_tag).like(like, escape="\\"),
                func.lower(ci.serial_number).like(like, escape="\\"),
                func.lower(ci.attributes["hostname"].as_string()).like(like, escape="\\"),
            )
        )
    order = []
    for key in filters.get("sort") or ["name"]:
        column = getattr(ci, key.lstrip("-"))
        order.append(column.desc() if key.startswith("-") else column.asc())
    return stmt.order_by(*order, ci.id)


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
    ci = ConfigurationItem(attributes={}, vendor="", status="planned", criticality="medium")
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
        _close_assignment(ci)
        if ci.assigned_to_id is not None:
            _open_assignment(ci, ci.assigned_to_id)
    return changed


def find_by_external_id(source: str, external_id: str, viewer: User | None = None) -> ConfigurationItem | None:
    """The CI a source knows by ``external_id``, or None."""
    stmt = (
        visible_cis(viewer)
        .join(CIExternalId)
        .where(CIExternalId.source == source, CIExternalId.external_id == external_id)
    )
    return db.session.scalar(stmt)


def upsert_ci(source: str, external_id: str, data: dict[str, Any]) -> tuple[ConfigurationItem, str]:
    """Create or update the CI that ``source`` knows as ``external_id``.

    Returns the CI and ``created``, ``updated`` or ``unchanged`` (then nothing is written, not even a
    change-log row). Concurrent calls for the same id are serialised (an advisory lock on
    PostgreSQL, the write lock on SQLite), so they make one CI, never two."""
    _lock_external_id(source, external_id)
    data = dict(data)
    given = data.pop("external_ids", None) or []
    if any(item["source"] == source and item["external_id"] != external_id for item in given):
        raise Invalid("Conflicting ids.", errors={"external_ids": [f"The path names the {source} id already."]})
    ids = [item for item in given if item["source"] != source]
    ci = find_by_external_id(source, external_id)
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
    """Give ``ci`` these external ids (one per source); True when the set changed."""
    wanted: dict[str, str] = {}
    for item in items:
        if item["source"] in wanted and wanted[item["source"]] != item["external_id"]:
            raise Invalid("One id per source.", errors={"external_ids": [f"Two ids for source {item['source']}."]})
        wanted[item["source"]] = item["external_id"]
    current = {e.source: e for e in ci.external_ids}
    changed = False
    for source, external_id in wanted.items():
        holder = db.session.scalar(
            select(CIExternalId.ci_id).where(CIExternalId.source == source, CIExternalId.external_id == external_id)
        )
        if holder is not None and holder != ci.id:
            raise Conflict(f"{source}:{external_id} already names CI {holder}.", conflicting_id=holder)
        if source in current:
            if current[source].external_id != external_id:
                current[source].external_id = external_id
                changed = True
        else:
            ci.external_ids.append(CIExternalId(source=source, external_id=external_id))
            changed = True
    if replace:
        for source, row in current.items():
            if source not in wanted:
                ci.external_ids.remove(row)
                db.session.delete(row)  # explicit, so the change log sees the delete
                changed = True
    return changed


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
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    for key, value in data.items():
        setattr(ci, key, value)
    _check_unique(ci)


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


def _close_assignment(ci: ConfigurationItem) -> None:
    current = db.session.scalar(
        select(CIAssignment).where(and_(CIAssignment.ci_id == ci.id, CIAssignment.assigned_until.is_(None)))
    )
    if current is not None:
        current.assigned_until = utcnow()


# ---------------------------------------------------------------------------------------------
# Locations


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
