"""Licence compliance and reclaim candidates: entitlements (licences) against consumption counted
from open ``installed_on`` relationships (software CI -> device CI) and the devices' assignees.

Consumption by licence model, over devices not retired or disposed:
- per_device: the devices the product is installed on;
- per_user and subscription: the distinct users those devices are assigned to, plus each unassigned device;
- per_core: the sum of the devices' ``cpu_cores`` attribute (a device without it counts one core);
- site: unlimited, always compliant.
A product whose licences use several models gets one row per model (each measured in its own unit).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import marshmallow as ma
from sqlalchemy import and_, case, distinct, func, or_, select

from cairn.api import QueryId, Schema
from cairn.db import db, utcnow
from cmdb.assets.models import Licence
from cmdb.assets.services import RETIRED_STATUSES
from cmdb.models import ConfigurationItem
from integrations.reports.history import StateAt
from integrations.reports.registry import ChartData, register
from relations.models import Relationship

INSTALLED_ON = "installed_on"
CENT = Decimal("0.01")


class ComplianceParams(Schema):
    as_of = ma.fields.Date(metadata={"description": "licence terms and installations on this day (default today)"})
    status = ma.fields.String(validate=ma.validate.OneOf(["compliant", "over_licensed", "under_licensed"]))
    software_id = QueryId(metadata={"description": "one software product (its CI id)"})


def open_installs(as_of: date | None = None):
    """Select (software_id, device_id) of installations valid at the end of ``as_of`` (default: now)."""
    r = Relationship
    stmt = select(r.source_id.label("software_id"), r.target_id.label("device_id")).where(r.type == INSTALLED_ON)
    if as_of is None or as_of >= utcnow().date():
        return stmt.where(r.valid_to.is_(None))
    moment = datetime.combine(as_of + timedelta(days=1), time.min)
    return stmt.where(r.valid_from < moment, or_(r.valid_to.is_(None), r.valid_to >= moment))


def consumption(as_of: date | None = None, software_id: int | None = None) -> dict[int, dict[str, int]]:
    """software_id -> consumption in every unit, in one grouped query. For a past day, the devices'
    status and holder are those of that day (replayed from the change log), so a device retired since
    still consumed then and one retired then did not; ``cpu_cores`` is the current attribute."""
    installs = open_installs(as_of)
    if software_id is not None:
        installs = installs.where(Relationship.source_id == software_id)
    installs = installs.subquery()
    device = ConfigurationItem
    cores = func.coalesce(device.attributes["cpu_cores"].as_integer(), 1)
    status, holder = device.status, device.assigned_to_id
    past = as_of is not None and as_of < utcnow().date()
    if past:
        state = StateAt(datetime.combine(as_of + timedelta(days=1), time.min), ("status", "assigned_to_id"))
        status, holder = state.value("status"), state.value("assigned_to_id")
    stmt = (
        select(
            installs.c.software_id,
            func.count(distinct(device.id)).label("devices"),
            func.count(distinct(holder)).label("users"),
            func.count(distinct(case((holder.is_(None), device.id)))).label("unassigned"),
            func.sum(cores).label("cores"),
        )
        .join(device, device.id == installs.c.device_id)
        .where(status.not_in(RETIRED_STATUSES))
        .group_by(installs.c.software_id)
    )
    if past:
        stmt = state.join(stmt)
    out = {}
    for row in db.session.execute(stmt):
        users = int(row.users) + int(row.unassigned)
        out[row.software_id] = {
            "per_device": int(row.devices),
            "per_user": users,
            "subscription": users,
            "per_core": int(row.cores or 0),
        }
    return out


def entitlements(as_of: date, software_id: int | None = None) -> dict[tuple[int, str], dict]:
    """(software_id, model) -> quantity, cost and whether a site licence covers it."""
    licence = Licence
    stmt = (
        select(
            licence.software_id,
            licence.model,
            func.sum(licence.quantity).label("quantity"),
            func.sum(licence.cost).label("cost"),
            func.count().label("licences"),
            func.min(licence.currency).label("currency"),
        )
        .where(licence.start_date <= as_of, or_(licence.end_date.is_(None), licence.end_date >= as_of))
        .group_by(licence.software_id, licence.model)
    )
    if software_id is not None:
        stmt = stmt.where(licence.software_id == software_id)
    return {
        (row.software_id, row.model): {
            "quantity": int(row.quantity or 0),
            "cost": Decimal(row.cost or 0),
            "licences": int(row.licences),
            "currency": row.currency,
        }
        for row in db.session.execute(stmt)
    }


def compliance(params: dict) -> list[dict]:
    """Per software product (and licence model): entitled, consumed, status, shortfall, surplus, and
    what it costs: money wasted on the surplus, the cost to true up the shortfall."""
    as_of = params.get("as_of") or utcnow().date()
    used = consumption(as_of, params.get("software_id"))
    entitled = entitlements(as_of, params.get("software_id"))
    product_ids = set(used) | {sid for sid, _ in entitled}
    if not product_ids:
        return []
    products = {
        row.id: row
        for row in db.session.execute(
            select(ConfigurationItem.id, ConfigurationItem.name, ConfigurationItem.attributes).where(
                ConfigurationItem.id.in_(product_ids)
            )
        )
    }
    models_of: dict[int, list[str]] = {}
    for sid, model in entitled:
        models_of.setdefault(sid, []).append(model)
    rows = []
    for sid in product_ids:
        product = products.get(sid)
        if product is None:
            continue
        attrs = product.attributes or {}
        for model in sorted(models_of.get(sid, [None]), key=lambda m: m or ""):
            rows.append(_row(sid, product.name, attrs, model, entitled.get((sid, model)), used.get(sid, {})))
    if params.get("status"):
        rows = [r for r in rows if r["status"] == params["status"]]
    order = {"under_licensed": 0, "over_licensed": 1, "compliant": 2}
    rows.sort(
        key=lambda r: (order[r["status"]], -(r["shortfall"] or 0), -(r["surplus"] or 0), r["name"], r["software_id"])
    )
    return rows


def _row(sid, name, attrs, model, ent, used) -> dict:
    # Unlicensed products and site licences are shown in devices.
    consumed = used.get(model if model in ("per_user", "per_core", "subscription") else "per_device", 0)
    unit_cost = None
    if model == "site":
        entitled, shortfall, surplus, status = None, 0, None, "compliant"
    else:
        entitled = ent["quantity"] if ent else 0
        shortfall = max(consumed - entitled, 0)
        surplus = max(entitled - consumed, 0)
        status = "under_licensed" if shortfall else "over_licensed" if surplus else "compliant"
        if ent and ent["quantity"]:
            unit_cost = (ent["cost"] / ent["quantity"]).quantize(CENT)
    return {
        "software_id": sid,
        "name": name,
        "publisher": attrs.get("publisher"),
        "version": attrs.get("version"),
        "model": model,
        "entitled": entitled,
        "consumed": consumed,
        "status": status,
        "shortfall": shortfall,
        "surplus": surplus,
        "unit_cost": unit_cost,
        "wasted_cost": None if unit_cost is None else (unit_cost * (surplus or 0)).quantize(CENT),
        "true_up_cost": None if unit_cost is None else (unit_cost * shortfall).quantize(CENT),
        "currency": ent["currency"] if ent else None,
    }


def _compliance_chart(rows: list[dict], params: dict) -> ChartData:
    ranked = sorted(
        (r for r in rows if r["entitled"] is not None),
        key=lambda r: (-max(r["shortfall"], r["surplus"] or 0), r["name"]),
    )[:20]
    labels = [f"{r['name']} ({r['model'] or 'unlicensed'})" for r in ranked]
    return ChartData(
        labels=labels,
        series={
            "entitled": [r["entitled"] for r in ranked],
            "consumed": [r["consumed"] for r in ranked],
        },
        value_label="licences / consumption (in the model's unit)",
    )


register(
    "licence-compliance",
    "Licence compliance",
    "Per software product: entitled vs consumed; under-licensed (exposure, cost to true up) and over-licensed "
    "(money wasted). Installations on retired or disposed CIs don't consume.",
    columns=[
        ("software_id", "Software id"),
        ("name", "Product"),
        ("publisher", "Publisher"),
        ("version", "Version"),
        ("model", "Licence model"),
        ("entitled", "Entitled"),
        ("consumed", "Consumed"),
        ("status", "Status"),
        ("shortfall", "Shortfall"),
        ("surplus", "Surplus"),
        ("unit_cost", "Unit cost"),
        ("wasted_cost", "Wasted (surplus)"),
        ("true_up_cost", "True-up cost"),
        ("currency", "Currency"),
    ],
    chart=_compliance_chart,
    params=ComplianceParams,
)(compliance)


class ReclaimParams(Schema):
    unused_days = ma.fields.Integer(
        load_default=90,
        validate=ma.validate.Range(min=1, max=3650),
        metadata={"description": "a device not seen by discovery for this many days counts as unused"},
    )


def reclaim(params: dict) -> list[dict]:
    """Installations whose seats can be taken back: on retired or disposed devices, or on devices
    discovery has not seen (attribute ``last_seen``) for ``unused_days``."""
    cutoff = (utcnow().date() - timedelta(days=params["unused_days"])).isoformat()
    installs = open_installs().subquery()
    device = ConfigurationItem.__table__.alias("device")
    software = ConfigurationItem.__table__.alias("software")
    last_seen = device.c.attributes["last_seen"].as_string()
    stmt = (
        select(
            installs.c.software_id,
            software.c.name.label("software"),
            device.c.id.label("device_id"),
            device.c.name.label("device"),
            device.c.status,
            last_seen.label("last_seen"),
        )
        .join(device, device.c.id == installs.c.device_id)
        .join(software, software.c.id == installs.c.software_id)
        .where(or_(device.c.status.in_(RETIRED_STATUSES), and_(last_seen.is_not(None), last_seen < cutoff)))
        .order_by(software.c.name, device.c.name, device.c.id)
    )
    return [
        {
            "software_id": row.software_id,
            "software": row.software,
            "device_id": row.device_id,
            "device": row.device,
            "device_status": row.status,
            "last_seen": row.last_seen,
            "reason": row.status if row.status in RETIRED_STATUSES else "not_seen",
        }
        for row in db.session.execute(stmt)
    ]


def _reclaim_chart(rows, params):
    from integrations.reports.library import count_by

    return count_by(rows, "software", "reclaimable installations")


register(
    "licence-reclaim",
    "Licence reclaim candidates",
    "Installations on retired or disposed CIs, and on devices discovery has not seen for N days.",
    columns=[
        ("software_id", "Software id"),
        ("software", "Product"),
        ("device_id", "Device id"),
        ("device", "Device"),
        ("device_status", "Device status"),
        ("last_seen", "Last seen"),
        ("reason", "Reason"),
    ],
    chart=_reclaim_chart,
    params=ReclaimParams,
)(reclaim)
