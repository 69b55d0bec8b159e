"""External ids: the ids other tools (an ITSM, discovery, procurement) know our objects by.

Each domain keeps its own table (``ci_external_id``, ``ticket_external_id``) with ``source`` and
``external_id`` unique together, one id per source per object; this module holds the one way to set them.
"""

from __future__ import annotations

from sqlalchemy import select

from cairn.db import db
from cairn.errors import Conflict, Invalid


def set_external_ids(owner, items: list[dict], *, model, owner_key: str, label: str, replace: bool = False) -> bool:
    """Give ``owner`` these external ids (``[{source, external_id}]``, one per source) in its
    ``external_ids`` collection of ``model`` rows; ``replace`` drops sources not named. True when the
    set changed. An id another object holds is 409; two ids for one source 422."""
    wanted: dict[str, str] = {}
    for item in items:
        if item["source"] in wanted and wanted[item["source"]] != item["external_id"]:
            raise Invalid("One id per source.", errors={"external_ids": [f"Two ids for source {item['source']}."]})
        wanted[item["source"]] = item["external_id"]
    current = {row.source: row for row in owner.external_ids}
    holder_column = getattr(model, owner_key)
    changed = False
    for source, external_id in wanted.items():
        holder = db.session.scalar(
            select(holder_column).where(model.source == source, model.external_id == external_id)
        )
        if holder is not None and holder != owner.id:
            raise Conflict(f"{source}:{external_id} already names {label} {holder}.", conflicting_id=holder)
        if source in current:
            if current[source].external_id != external_id:
                current[source].external_id = external_id
                changed = True
        else:
            owner.external_ids.append(model(source=source, external_id=external_id))
            changed = True
    if replace:
        for source, row in current.items():
            if source not in wanted:
                owner.external_ids.remove(row)
                db.session.delete(row)  # explicit, so the change log sees the delete
                changed = True
    return changed
