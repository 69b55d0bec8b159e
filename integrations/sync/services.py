"""Bulk writes for sync tools: CIs by external id, relationships whose ends are named by id or by
external id. CIs are written through cmdb.services, relationships through relations.services."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cairn.db import MAX_ID, db, id_in
from cairn.errors import Conflict, DomainError
from cmdb import services as cmdb_services
from cmdb.classes import may_take_part
from cmdb.models import ConfigurationItem
from integrations.sync.schemas import NOT_AN_OBJECT
from relations import services as relations_services
from relations.graph import load_types

MAX_ITEMS = 1000


@dataclass
class ItemResult:
    index: int
    status: str
    id: int | None = None
    errors: dict | None = None

    def as_dict(self) -> dict:
        return {"index": self.index, "status": self.status, "id": self.id, "errors": self.errors}


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off while one bulk page is worked: a page makes some 10^5 objects
    that all live until its answer, and each collection they set off walked them (and, every few
    times, the whole heap of the app) again, a fifth of a page's CPU for no garbage. What cycles the
    page leaves are collected by the next collection after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def bulk_cis(raw_items: list, schema: ma.Schema, *, dry_run: bool = False) -> list[ItemResult]:
    """Validate each raw CI body with ``schema`` and upsert the valid ones by their external id."""
    with _collector_paused():
        return _bulk_cis(raw_items, schema, dry_run=dry_run)


def _bulk_cis(raw_items: list, schema: ma.Schema, *, dry_run: bool) -> list[ItemResult]:
    results: dict[int, ItemResult] = {}
    items: list[cmdb_services.BulkItem] = []
    for index, raw in enumerate(raw_items):
        try:
            data = _load(schema, raw)
        except ma.ValidationError as exc:
            results[index] = ItemResult(index, "error", errors=_messages(exc))
            continue
        ext = data.pop("external_id", None)
        key = (ext["source"], ext["external_id"]) if ext else None
        items.append(cmdb_services.BulkItem(index, data, key))
    for outcome in cmdb_services.bulk_upsert_cis(items, dry_run=dry_run):
        results[outcome.index] = ItemResult(outcome.index, outcome.status, outcome.id, outcome.errors)
    return [results[i] for i in range(len(raw_items))]


def _load(schema: ma.Schema, raw) -> dict:
    if not isinstance(raw, dict) or NOT_AN_OBJECT in raw:
        raise ma.ValidationError({"_item": ["Each item must be a JSON object."]})
    return schema.load(raw)


def _messages(exc: ma.ValidationError) -> dict:
    return exc.messages if isinstance(exc.messages, dict) else {"_item": exc.messages}


# ---------------------------------------------------------------------------------------------
# Relationships


def bulk_relationships(raw_items: list, schema: ma.Schema, *, dry_run: bool = False) -> list[ItemResult]:
    """Create relationships; an end is ``source_id``/``target_id`` or ``source``/``target`` as
    ``{source, id}`` external ids. One that exists already is ``unchanged`` (with its id)."""
    with _collector_paused():
        return _bulk_relationships(raw_items, schema, dry_run=dry_run)


def _bulk_relationships(raw_items: list, schema: ma.Schema, *, dry_run: bool) -> list[ItemResult]:
    results: dict[int, ItemResult] = {}
    loaded: list[tuple[int, dict]] = []
    for index, raw in enumerate(raw_items):
        try:
            loaded.append((index, _load(schema, raw)))
        except ma.ValidationError as exc:
            results[index] = ItemResult(index, "error", errors=_messages(exc))
    keys = [
        (ref["source"], ref["external_id"])
        for _, data in loaded
        for end in ("source", "target")
        if (ref := data.get(end))
    ]
    by_external = cmdb_services.cis_by_external_ids(keys)
    ids = {data.get(f"{end}_id") for _, data in loaded for end in ("source", "target")} - {None}
    classes = dict(
        db.session.execute(
            select(ConfigurationItem.id, ConfigurationItem.ci_class).where(
                id_in(ConfigurationItem.id, [i for i in ids if 0 < i <= MAX_ID])
            )
        ).all()
    )
    classes.update({ci.id: ci.ci_class for ci in by_external.values()})
    types = load_types()
    candidates: list[tuple[int, dict]] = []
    for index, data in loaded:
        item, errors = _resolve_ends(data, by_external, classes)
        if not errors:
            errors = _check_item(item, types, classes)
        if errors:
            results[index] = ItemResult(index, "error", errors=errors)
        else:
            candidates.append((index, item))
    outer = db.session.begin_nested() if dry_run else None
    _create(candidates, results, classes)
    if outer is not None:
        outer.rollback()
        for result in results.values():
            if result.status == "created":
                result.id = None  # rolled back: nothing was made
    return [results[i] for i in range(len(raw_items))]


def _resolve_ends(data: dict, by_external: dict, classes: dict) -> tuple[dict, dict]:
    item = {"type": data["type"], "note": data.get("note") or ""}
    errors: dict[str, list[str]] = {}
    for end in ("source", "target"):
        ref, given = data.get(end), data.get(f"{end}_id")
        if (ref is None) == (given is None):
            errors[end] = [f"Name the {end} either by {end}_id or by {end}: {{source, id}}."]
        elif ref is not None:
            ci = by_external.get((ref["source"], ref["external_id"]))
            if ci is None:
                errors[end] = [f"No CI is known as {ref['source']}:{ref['external_id']}."]
            else:
                item[f"{end}_id"] = ci.id
        elif given not in classes:
            errors[f"{end}_id"] = [f"No CI with id {given}."]
        else:
            item[f"{end}_id"] = given
    return item, errors


def _check_item(item: dict, types: dict, classes: dict) -> dict:
    info = types.get(item["type"])
    if info is None:
        return {"type": [f"Unknown relationship type {item['type']!r}; known: {', '.join(sorted(types))}."]}
    if item["source_id"] == item["target_id"]:
        return {"target_id": ["A CI cannot be related to itself."]}
    errors = {}
    if not may_take_part(classes[item["source_id"]], info.name, info.source_classes):
        errors["source_id"] = [f"A {classes[item['source_id']]} cannot be the source of {info.name}."]
    if not may_take_part(classes[item["target_id"]], info.name, info.target_classes):
        errors["target_id"] = [f"A {classes[item['target_id']]} cannot be the target of {info.name}."]
    return errors


def _create(candidates: list[tuple[int, dict]], results: dict[int, ItemResult], classes: dict[int, str]) -> None:
    """All at once through relations' bulk service (a relationship that is open already, or named
    twice in the request, is ``unchanged``); should that fail, one savepoint per item."""
    if not candidates:
        return
    try:
        with db.session.begin_nested():
            outcomes = relations_services.ensure_relationships([item for _, item in candidates], ci_classes=classes)
        for (index, _), (rel_id, created) in zip(candidates, outcomes, strict=True):
            results[index] = ItemResult(index, "created" if created else "unchanged", rel_id)
        return
    except (DomainError, SQLAlchemyError):
        pass
    made: dict[tuple, int] = {}
    for index, item in candidates:
        key = (item["source_id"], item["target_id"], item["type"])
        try:
            with db.session.begin_nested():
                rel = relations_services.create_relationship(item)
            made[key] = rel.id
            results[index] = ItemResult(index, "created", rel.id)
        except Conflict as exc:
            results[index] = ItemResult(index, "unchanged", made.get(key) or exc.extra.get("conflicting_id"))
        except DomainError as exc:
            results[index] = ItemResult(index, "error", errors=exc.errors or {"_item": [exc.detail]})
        except SQLAlchemyError:
            results[index] = ItemResult(index, "error", errors={"_item": ["The item conflicts with existing data."]})


def bulk_body(data: Any) -> list:
    """The items of a bulk request body: a JSON array of at most MAX_ITEMS objects."""
    from cairn.errors import Invalid

    if not isinstance(data, list):
        raise Invalid("Send a JSON array of items.", errors={"_schema": ["Send a JSON array of items."]})
    if not 1 <= len(data) <= MAX_ITEMS:
        raise Invalid(
            f"Send between 1 and {MAX_ITEMS} items.", errors={"_schema": [f"Between 1 and {MAX_ITEMS} items."]}
        )
    return data
