"""Bulk edit of CIs (PATCH /cis): the same fields to set on CIs named by id or matched by the list's
filter, through the bulk write path (bulk_upsert_cis: the rules of PATCH /cis/{id}, one change-log
row per CI, one bad CI failing alone)."""

from __future__ import annotations

import copy

import marshmallow as ma

from cairn.api import MAX_BULK_EDIT
from cairn.auth.models import User
from cairn.db import db, id_in
from cairn.errors import Invalid
from cmdb.models import ConfigurationItem
from cmdb.schemas import CIQuerySchema
from cmdb.services import BulkItem, bulk_upsert_cis, search_cis, visible_cis

NOT_FILTERS = ("format", "sort")


def list_filter(raw: dict, query_schema: type[ma.Schema]) -> dict:
    """A list's filter given as its query parameters, loaded by the list's own query schema (what
    the list would refuse is Invalid, naming ``filter.<parameter>``)."""
    refused = sorted(key for key in raw if key in NOT_FILTERS)
    if refused:
        raise Invalid("Not a filter.", errors={f"filter.{key}": ["Not a filter of a bulk edit."] for key in refused})
    try:
        return query_schema().load(raw)
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise Invalid("The filter is invalid.", errors={f"filter.{k}": v for k, v in messages.items()}) from None


def matched(stmt, id_column, noun: str) -> list:
    """The objects ``stmt`` selects, by id, at most MAX_BULK_EDIT (Invalid when it matches more)."""
    rows = list(db.session.scalars(stmt.order_by(None).order_by(id_column).limit(MAX_BULK_EDIT + 1)))
    if len(rows) > MAX_BULK_EDIT:
        raise Invalid(
            f"The filter matches more than {MAX_BULK_EDIT:,} {noun}: narrow it (a bulk edit takes at most "
            f"{MAX_BULK_EDIT:,} a call).",
            errors={"filter": [f"Matches more than {MAX_BULK_EDIT:,} {noun}."]},
        )
    return rows


def bulk_edit_cis(data: dict, user: User) -> list[dict]:
    """Apply ``data["set_"]`` to the CIs of ``data["ids"]`` or ``data["filter"]``; per-CI results
    in the order of ``ids`` (an id that names no CI the caller sees is an error result)."""
    changes, dry_run = data["set_"], data["dry_run"]
    results: dict[int, dict] = {}
    if "ids" in data:
        ids = data["ids"]
        found = {
            ci.id: ci
            for ci in db.session.scalars(visible_cis(user).where(id_in(ConfigurationItem.id, ids)).order_by(None))
        }
        cis = []
        for index, ci_id in enumerate(ids):
            if ci_id in found:
                cis.append((index, found[ci_id]))
            else:
                results[index] = missing_result(index, ci_id)
    else:
        stmt = search_cis(list_filter(data["filter"], CIQuerySchema), user)
        cis = list(enumerate(matched(stmt, ConfigurationItem.id, "CIs")))
    items = [BulkItem(index, copy.deepcopy(changes), ci=ci) for index, ci in cis]
    ids_of = {index: ci.id for index, ci in cis}
    for outcome in bulk_upsert_cis(items, dry_run=dry_run):
        results[outcome.index] = {
            "index": outcome.index,
            "id": ids_of[outcome.index],
            "status": outcome.status,
            "errors": outcome.errors,
            "detail": outcome.detail if outcome.status == "error" else None,
        }
    return [results[i] for i in sorted(results)]


def missing_result(index: int, object_id: int) -> dict:
    return {
        "index": index,
        "id": object_id,
        "status": "error",
        "errors": {"id": [f"No object with id {object_id} that you may see."]},
        "detail": "Not found.",
    }
