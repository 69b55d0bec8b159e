"""The asset reports other than licences: each a SQL aggregate or a filtered select, registered by
name with its columns and chart."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import marshmallow as ma
from sqlalchemy import and_, case, exists, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from cairn.api import Schema
from cairn.audit.models import ChangeLog
from cairn.auth.models import Team, User
from cairn.db import db, utcnow
from cmdb import classes
from cmdb.assets import depreciation
from cmdb.assets.models import Contract, ContractCI, Licence, MaintenanceRecord, PhysicalAudit
from cmdb.assets.services import RETIRED_STATUSES, all_policies, overdue_audits_select, physical_classes
from cmdb.models import ConfigurationItem, Location
from integrations.reports.history import StateAt
from integrations.reports.registry import ChartData, register
from tickets.models import Ticket, TicketCI

CI = ConfigurationItem
END_USER_CLASSES = ("laptop", "desktop", "mobile_phone", "tablet")
ACTIVE = ("in_stock", "deployed", "in_maintenance")
TOP = 20


def _today() -> date:
    return utcnow().date()


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min)


def _category(ci_class: str) -> str:
    cls = classes.REGISTRY.get(ci_class)
    return cls.category if cls else "unknown"


def count_by(rows: list[dict], key: str, value_label: str = "count", top: int = TOP) -> ChartData:
    """A chart of how many rows share each value of ``key`` (the ``top`` largest, the rest as 'other')."""
    counts = Counter(str(r.get(key) if r.get(key) is not None else "(none)") for r in rows)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > top:
        ranked = [*ranked[: top - 1], ("other", sum(v for _, v in ranked[top - 1 :]))]
    return ChartData(
        labels=[k for k, _ in ranked], series={value_label: [v for _, v in ranked]}, value_label=value_label
    )


def values_of(rows, label_key, series: dict[str, str], value_label: str, top: int = TOP, stacked=False) -> ChartData:
    """A chart of numeric columns of the first ``top`` rows, labelled by ``label_key``."""
    rows = rows[:top]
    return ChartData(
        labels=[str(r.get(label_key) or "(none)") for r in rows],
        series={label: [float(r.get(key) or 0) for r in rows] for key, label in series.items()},
        value_label=value_label,
        stacked=stacked,
    )


def _has_status_change():
    """SQL: the change-log row's diff touches ``status`` (JSONB key test on PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return type_coerce(ChangeLog.changes, JSONB).has_key("status")  # noqa: W601 - the JSONB ? operator
    return func.json_extract(ChangeLog.changes, "$.status").is_not(None)


# ---------------------------------------------------------------------------------------------
# Physical audits


class AsOfParams(Schema):
    as_of = ma.fields.Date(metadata={"description": "the day to answer for (default today)"})


@register(
    "audits-overdue",
    "Physical audits overdue",
    "Physical CIs whose next audit (per class interval) is past due, never-audited ones first.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("asset_tag", "Asset tag"),
        ("location_id", "Location id"),
        ("status", "Status"),
        ("last_audited_at", "Last audited"),
        ("next_due", "Next audit due"),
        ("days_overdue", "Days overdue"),
    ],
    chart=lambda rows, params: count_by(rows, "ci_class", "overdue CIs"),
    params=AsOfParams,
)
def audits_overdue(params):
    today = params.get("as_of") or _today()
    policies = all_policies()
    rows = []
    for row in db.session.execute(overdue_audits_select(today)):
        due = row.next_due
        rows.append(
            {
                "ci_id": row.id,
                "name": row.name,
                "ci_class": row.ci_class,
                "asset_tag": row.asset_tag,
                "location_id": row.location_id,
                "status": row.status,
                "last_audited_at": row.last_audited_at,
                "next_due": due,
                "days_overdue": (today - due).days if due else None,
                "audit_interval_days": policies[row.ci_class].audit_interval_days,
            }
        )
    return rows


class MismatchParams(Schema):
    days = ma.fields.Integer(load_default=90, validate=ma.validate.Range(min=1, max=3650))


@register(
    "audit-mismatches",
    "Audit mismatches",
    "CIs seen by a physical audit somewhere other than their recorded location (last N days).",
    columns=[
        ("audit_id", "Audit id"),
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("asset_tag", "Asset tag"),
        ("seen_at", "Seen at"),
        ("recorded_at", "Recorded location"),
        ("current_location", "Location now"),
        ("audited_at", "Audited at"),
    ],
    chart=lambda rows, params: count_by(rows, "seen_at", "mismatches by where seen"),
    params=MismatchParams,
)
def audit_mismatches(params):
    since = utcnow() - timedelta(days=params["days"])
    seen = Location.__table__.alias("seen")
    recorded = Location.__table__.alias("recorded")
    current = Location.__table__.alias("current")
    audit = PhysicalAudit
    stmt = (
        select(
            audit.id,
            audit.ci_id,
            CI.name,
            audit.asset_tag,
            seen.c.name.label("seen_at"),
            recorded.c.name.label("recorded_at"),
            current.c.name.label("current_location"),
            audit.audited_at,
        )  # fmt: skip
        .join(CI, CI.id == audit.ci_id)
        .join(seen, seen.c.id == audit.location_id)
        .outerjoin(recorded, recorded.c.id == audit.expected_location_id)
        .outerjoin(current, current.c.id == CI.location_id)
        .where(audit.mismatch.is_(True), audit.audited_at >= since)
        .order_by(audit.audited_at.desc(), audit.id.desc())
    )
    return [
        {
            "audit_id": r.id,
            "ci_id": r.ci_id,
            "name": r.name,
            "asset_tag": r.asset_tag,
            "seen_at": r.seen_at,
            "recorded_at": r.recorded_at,
            "current_location": r.current_location,
            "audited_at": r.audited_at,
        }
        for r in db.session.execute(stmt)
    ]


# ---------------------------------------------------------------------------------------------
# Optimisation


class UnusedParams(Schema):
    in_stock_days = ma.fields.Integer(load_default=90, validate=ma.validate.Range(min=0, max=3650))


@register(
    "unused-assets",
    "Unused assets",
    "CIs in stock for more than N days, and deployed end-user devices with no assignee.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("status", "Status"),
        ("reason", "Reason"),
        ("since", "Since"),
        ("days", "Days"),
    ],
    chart=lambda rows, params: count_by(rows, "reason_class", "unused CIs"),
    params=UnusedParams,
)
def unused_assets(params):
    now = utcnow()
    cutoff = now - timedelta(days=params["in_stock_days"])
    status_changed = (
        select(ChangeLog.object_id.label("ci_id"), func.max(ChangeLog.at).label("since"))
        .where(ChangeLog.object_type == "ci", _has_status_change())
        .where(ChangeLog.object_id.in_(select(CI.id).where(CI.status == "in_stock")))
        .group_by(ChangeLog.object_id)
        .subquery()
    )
    since = func.coalesce(status_changed.c.since, CI.created_at)
    in_stock = (
        select(CI.id, CI.name, CI.ci_class, CI.status, since.label("since"))
        .outerjoin(status_changed, status_changed.c.ci_id == CI.id)
        .where(CI.status == "in_stock", since < cutoff)
        .order_by(since, CI.id)
    )
    rows = []
    for r in db.session.execute(in_stock):
        rows.append(_unused_row(r, "in_stock", r.since, now))
    unassigned = (
        select(CI.id, CI.name, CI.ci_class, CI.status, CI.updated_at.label("since"))
        .where(CI.status == "deployed", CI.assigned_to_id.is_(None), CI.ci_class.in_(END_USER_CLASSES))
        .order_by(CI.name, CI.id)
    )
    for r in db.session.execute(unassigned):
        rows.append(_unused_row(r, "no_assignee", None, now))
    return rows


def _unused_row(r, reason, since, now):
    return {
        "ci_id": r.id,
        "name": r.name,
        "ci_class": r.ci_class,
        "status": r.status,
        "reason": reason,
        "reason_class": f"{reason}: {r.ci_class}",
        "since": since,
        "days": (now - since).days if since else None,
    }


@register(
    "ageing-assets",
    "Ageing assets",
    "CIs past their class's useful life, and deployed CIs whose warranty has expired.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("status", "Status"),
        ("reason", "Reason"),
        ("purchase_date", "Purchased"),
        ("end_of_life", "End of useful life"),
        ("warranty_expires", "Warranty expires"),
    ],
    chart=lambda rows, params: count_by(rows, "reason_class", "ageing CIs"),
    params=AsOfParams,
)
def ageing_assets(params):
    today = params.get("as_of") or _today()
    policies = all_policies()
    by_life: dict[int, list[str]] = {}
    for name, policy in policies.items():
        by_life.setdefault(policy.useful_life_years, []).append(name)
    past_life = []
    for years, names in by_life.items():
        try:
            cutoff = today.replace(year=today.year - years)
        except ValueError:
            cutoff = today.replace(year=today.year - years, day=28)
        past_life.append(and_(CI.ci_class.in_(names), CI.purchase_date <= cutoff))
    warranty_gone = and_(CI.status == "deployed", CI.warranty_expires < today)
    stmt = (
        select(CI.id, CI.name, CI.ci_class, CI.status, CI.purchase_date, CI.warranty_expires)
        .where(CI.status.not_in(RETIRED_STATUSES), or_(warranty_gone, *past_life))
        .order_by(CI.purchase_date, CI.id)
    )
    rows = []
    for r in db.session.execute(stmt):
        policy = policies[r.ci_class]
        eol = depreciation.end_of_life(r.purchase_date, policy)
        reasons = []
        if eol is not None and eol <= today:
            reasons.append("past_useful_life")
        if r.status == "deployed" and r.warranty_expires is not None and r.warranty_expires < today:
            reasons.append("warranty_expired")
        for reason in reasons:
            rows.append(
                {
                    "ci_id": r.id,
                    "name": r.name,
                    "ci_class": r.ci_class,
                    "status": r.status,
                    "reason": reason,
                    "reason_class": f"{reason}: {r.ci_class}",
                    "purchase_date": r.purchase_date,
                    "end_of_life": eol,
                    "warranty_expires": r.warranty_expires,
                }
            )
    return rows


@register(
    "duplicate-assignments",
    "Duplicate assignments",
    "Users holding more than one end-user device of the same class (several laptops, several phones).",
    columns=[
        ("user_id", "User id"),
        ("email", "User"),
        ("ci_class", "Class"),
        ("count", "Devices"),
        ("ci_ids", "CI ids"),
    ],
    chart=lambda rows, params: values_of(
        [{**r, "label": f"{r['email']} ({r['ci_class']})"} for r in rows], "label", {"count": "devices"}, "devices"
    ),
)
def duplicate_assignments(params):
    held = (
        select(CI.assigned_to_id, CI.ci_class, func.count().label("n"))
        .where(CI.assigned_to_id.is_not(None), CI.ci_class.in_(END_USER_CLASSES), CI.status.in_(ACTIVE))
        .group_by(CI.assigned_to_id, CI.ci_class)
        .having(func.count() > 1)
        .subquery()
    )
    stmt = (
        select(held.c.assigned_to_id, User.email, held.c.ci_class, held.c.n)
        .join(User, User.id == held.c.assigned_to_id)
        .order_by(held.c.n.desc(), User.email, held.c.ci_class)
    )
    groups = db.session.execute(stmt).all()
    if not groups:
        return []
    ids: dict[tuple[int, str], list[int]] = {}
    members = select(CI.assigned_to_id, CI.ci_class, CI.id).where(
        CI.assigned_to_id.in_([g.assigned_to_id for g in groups]),
        CI.ci_class.in_(END_USER_CLASSES),
        CI.status.in_(ACTIVE),
    )
    for user_id, ci_class, ci_id in db.session.execute(members.order_by(CI.id)):
        ids.setdefault((user_id, ci_class), []).append(ci_id)
    return [
        {
            "user_id": g.assigned_to_id,
            "email": g.email,
            "ci_class": g.ci_class,
            "count": int(g.n),
            "ci_ids": ids.get((g.assigned_to_id, g.ci_class), []),
        }
        for g in groups
    ]


# ---------------------------------------------------------------------------------------------
# Security


@register(
    "eol-software",
    "End-of-life software still deployed",
    "Software products (operating systems included, when modelled as software CIs) past their eol_date "
    "that are still installed on devices in the estate.",
    columns=[
        ("software_id", "Software id"),
        ("name", "Product"),
        ("publisher", "Publisher"),
        ("version", "Version"),
        ("eol_date", "End of life"),
        ("installations", "Installations"),
    ],
    chart=lambda rows, params: values_of(rows, "label", {"installations": "installations"}, "installations"),
    params=AsOfParams,
)
def eol_software(params):
    from integrations.reports.licences import open_installs

    today = params.get("as_of") or _today()
    eol = CI.attributes["eol_date"].as_string()
    installs = open_installs().subquery()
    device = CI.__table__.alias("device")
    counted = (
        select(installs.c.software_id, func.count().label("n"))
        .join(device, device.c.id == installs.c.device_id)
        .where(device.c.status.not_in(RETIRED_STATUSES))
        .group_by(installs.c.software_id)
        .subquery()
    )
    stmt = (
        select(CI.id, CI.name, CI.attributes, eol.label("eol_date"), counted.c.n)
        .join(counted, counted.c.software_id == CI.id)
        .where(CI.ci_class == "software", eol.is_not(None), eol < today.isoformat())
        .order_by(counted.c.n.desc(), CI.name, CI.id)
    )
    rows = []
    for r in db.session.execute(stmt):
        attrs = r.attributes or {}
        rows.append(
            {
                "software_id": r.id,
                "name": r.name,
                "publisher": attrs.get("publisher"),
                "version": attrs.get("version"),
                "eol_date": r.eol_date,
                "installations": int(r.n),
                "label": f"{r.name} {attrs.get('version') or ''}".strip(),
            }
        )
    return rows


@register(
    "unencrypted-laptops",
    "Unencrypted laptops",
    "Laptops in the estate whose disk encryption is off or unknown.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("status", "Status"),
        ("encrypted", "Encrypted"),
        ("assigned_to", "Assigned to"),
        ("owner_team", "Owner team"),
    ],
    chart=lambda rows, params: count_by(rows, "encrypted_status", "laptops"),
)
def unencrypted_laptops(params):
    encrypted = CI.attributes["encrypted"].as_boolean()
    stmt = (
        select(CI.id, CI.name, CI.status, encrypted.label("encrypted"), User.email, Team.name.label("team"))
        .outerjoin(User, User.id == CI.assigned_to_id)
        .outerjoin(Team, Team.id == CI.owner_team_id)
        .where(CI.ci_class == "laptop", CI.status.in_(ACTIVE), or_(encrypted.is_(None), encrypted.is_(False)))
        .order_by(CI.name, CI.id)
    )
    return [
        {
            "ci_id": r.id,
            "name": r.name,
            "status": r.status,
            "encrypted": False if r.encrypted is False or r.encrypted == 0 else None,
            "encrypted_status": f"{r.status}: {'not encrypted' if r.encrypted is not None else 'unknown'}",
            "assigned_to": r.email,
            "owner_team": r.team,
        }
        for r in db.session.execute(stmt)
    ]


@register(
    "unowned-devices",
    "Devices seen by discovery without an owner",
    "Physical CIs that discovery reported (a last_seen attribute, or created by an integration account) "
    "with neither an owner team nor an assignee.",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("status", "Status"),
        ("last_seen", "Last seen"),
        ("created_at", "Created"),
    ],
    chart=lambda rows, params: count_by(rows, "ci_class", "devices without owner"),
)
def unowned_devices(params):
    last_seen = CI.attributes["last_seen"].as_string()
    created_by_integration = exists(
        select(ChangeLog.id)
        .join(User, User.id == ChangeLog.actor_id)
        .where(
            ChangeLog.object_type == "ci",
            ChangeLog.object_id == CI.id,
            ChangeLog.action == "create",
            User.role == "integration",
        )
    )
    stmt = (
        select(CI.id, CI.name, CI.ci_class, CI.status, last_seen.label("last_seen"), CI.created_at)
        .where(
            CI.ci_class.in_(physical_classes()),
            CI.status.not_in(RETIRED_STATUSES),
            CI.owner_team_id.is_(None),
            CI.assigned_to_id.is_(None),
            or_(last_seen.is_not(None), created_by_integration),
        )
        .order_by(CI.name, CI.id)
    )
    return [
        {
            "ci_id": r.id,
            "name": r.name,
            "ci_class": r.ci_class,
            "status": r.status,
            "last_seen": r.last_seen,
            "created_at": r.created_at,
        }
        for r in db.session.execute(stmt)
    ]


# ---------------------------------------------------------------------------------------------
# Expiry


class ExpiringParams(Schema):
    days = ma.fields.Integer(
        load_default=90,
        validate=ma.validate.OneOf([30, 60, 90, 180, 365]),
        metadata={"description": "look ahead 30, 60, 90, 180 or 365 days"},
    )


def _bucket(days_left: int) -> str:
    for edge in (30, 60, 90, 180, 365):
        if days_left <= edge:
            return f"≤{edge} days"
    return ">365 days"


@register(
    "expiring",
    "Warranties, contracts and licences expiring",
    "Warranties of CIs in the estate, contracts and licences that end in the next 30/60/90 days.",
    columns=[
        ("kind", "Kind"),
        ("id", "Id"),
        ("name", "Name"),
        ("expires", "Expires"),
        ("days_left", "Days left"),
        ("bucket", "Within"),
        ("auto_renew", "Auto-renews"),
    ],
    chart=lambda rows, params: _expiring_chart(rows),
    params=ExpiringParams,
)
def expiring(params):
    today = _today()
    horizon = today + timedelta(days=params["days"])
    rows = []
    warranties = select(CI.id, CI.name, CI.warranty_expires).where(
        CI.warranty_expires >= today, CI.warranty_expires <= horizon, CI.status.not_in(RETIRED_STATUSES)
    )
    for r in db.session.execute(warranties):
        rows.append(_expiry("warranty", r.id, r.name, r.warranty_expires, today, None))
    contracts = select(
        Contract.id, Contract.name, Contract.reference, Contract.type, Contract.end_date, Contract.auto_renew
    )
    for r in db.session.execute(contracts.where(Contract.end_date >= today, Contract.end_date <= horizon)):
        name = r.name or r.reference or f"{r.type} contract {r.id}"
        rows.append(_expiry("contract", r.id, name, r.end_date, today, r.auto_renew))
    licences = (
        select(Licence.id, Licence.model, Licence.end_date, CI.name)
        .join(CI, CI.id == Licence.software_id)
        .where(Licence.end_date >= today, Licence.end_date <= horizon)
    )
    for r in db.session.execute(licences):
        rows.append(_expiry("licence", r.id, f"{r.name} ({r.model})", r.end_date, today, None))
    rows.sort(key=lambda r: (r["expires"], r["kind"], r["id"]))
    return rows


def _expiry(kind, object_id, name, expires, today, auto_renew):
    days_left = (expires - today).days
    return {
        "kind": kind,
        "id": object_id,
        "name": name,
        "expires": expires,
        "days_left": days_left,
        "bucket": _bucket(days_left),
        "auto_renew": auto_renew,
    }


def _expiring_chart(rows):
    buckets = sorted({r["bucket"] for r in rows}, key=lambda b: int("".join(c for c in b if c.isdigit()) or 0))
    kinds = ("warranty", "contract", "licence")
    counts = Counter((r["bucket"], r["kind"]) for r in rows)
    return ChartData(
        labels=buckets,
        series={kind: [counts[(b, kind)] for b in buckets] for kind in kinds},
        value_label="expiring",
        horizontal=False,
        stacked=True,
    )


# ---------------------------------------------------------------------------------------------
# Counts, tickets, costs


class CountParams(Schema):
    by = ma.fields.String(
        load_default="category",
        validate=ma.validate.OneOf(["category", "class", "status", "location", "team"]),
    )


@register(
    "asset-counts",
    "Asset counts",
    "How many CIs by category, class, status, location or owner team (?by=).",
    columns=[("key", "Key"), ("label", "Group"), ("count", "CIs")],
    chart=lambda rows, params: values_of(rows, "label", {"count": "CIs"}, "CIs"),
    params=CountParams,
)
def asset_counts(params):
    by = params["by"]
    if by in ("category", "class"):
        counts: Counter = Counter()
        for ci_class, n in db.session.execute(select(CI.ci_class, func.count()).group_by(CI.ci_class)):
            counts[_category(ci_class) if by == "category" else ci_class] += n
        rows = [{"key": k, "label": k, "count": v} for k, v in counts.items()]
    elif by == "status":
        rows = [
            {"key": k, "label": k, "count": n}
            for k, n in db.session.execute(select(CI.status, func.count()).group_by(CI.status))
        ]
    else:
        model, column = (Location, CI.location_id) if by == "location" else (Team, CI.owner_team_id)
        stmt = (
            select(column, model.name, func.count()).outerjoin(model, model.id == column).group_by(column, model.name)
        )
        rows = [{"key": k, "label": name or "(none)", "count": n} for k, name, n in db.session.execute(stmt)]
    rows.sort(key=lambda r: (-r["count"], str(r["label"])))
    return rows


class TicketVolumeParams(Schema):
    days = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=3650), metadata={"description": "only tickets opened in the last N days"}
    )
    top = ma.fields.Integer(load_default=TOP, validate=ma.validate.Range(min=1, max=1000))


@register(
    "ticket-volume",
    "Ticket volume per CI",
    "The CIs with the most tickets linked to them (top 20 by default).",
    columns=[
        ("ci_id", "CI id"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("tickets", "Tickets"),
        ("open_tickets", "Open tickets"),
    ],
    chart=lambda rows, params: values_of(rows, "name", {"tickets": "tickets", "open_tickets": "open"}, "tickets"),
    params=TicketVolumeParams,
)
def ticket_volume(params):
    closed = ("resolved", "closed", "canceled")
    open_count = func.sum(case((Ticket.state.not_in(closed), 1), else_=0))
    stmt = (
        select(CI.id, CI.name, CI.ci_class, func.count().label("tickets"), open_count.label("open_tickets"))
        .join(TicketCI, TicketCI.ci_id == CI.id)
        .join(Ticket, Ticket.id == TicketCI.ticket_id)
        .where(TicketCI.removed_at.is_(None))
        .group_by(CI.id, CI.name, CI.ci_class)
        .order_by(func.count().desc(), CI.id)
        .limit(params["top"])
    )
    if params.get("days"):
        stmt = stmt.where(Ticket.created_at >= utcnow() - timedelta(days=params["days"]))
    return [
        {
            "ci_id": r.id,
            "name": r.name,
            "ci_class": r.ci_class,
            "tickets": int(r.tickets),
            "open_tickets": int(r.open_tickets or 0),
        }
        for r in db.session.execute(stmt)
    ]


class CostParams(Schema):
    as_of = ma.fields.Date(metadata={"description": "costs accrued by this day (default today)"})
    by = ma.fields.String(load_default="team", validate=ma.validate.OneOf(["team", "location", "category", "class"]))


COST_COLUMNS = [
    ("key", "Key"),
    ("label", "Group"),
    ("cis", "CIs"),
    ("purchase_cost", "Purchase"),
    ("maintenance_cost", "Maintenance"),
    ("contract_cost", "Contracts"),
    ("total", "Total"),
]


def _cost_chart(rows, params):
    return values_of(
        rows,
        "label",
        {"purchase_cost": "purchase", "maintenance_cost": "maintenance", "contract_cost": "contracts"},
        "cost",
        stacked=True,
    )


def costs(params):
    """Purchase + maintenance + share of contracts, accrued by ``as_of``, per team, location, category
    or class; contract costs are split equally between the CIs a contract covers."""
    at = params.get("as_of") or _today()
    by = params.get("by", "team")
    key_col = {"team": CI.owner_team_id, "location": CI.location_id}.get(by, CI.ci_class)

    def fold(key):
        return _category(key) if by == "category" else key

    groups: dict = {}

    def group(key):
        return groups.setdefault(
            fold(key),
            {"cis": 0, "purchase_cost": Decimal("0"), "maintenance_cost": Decimal("0"), "contract_cost": Decimal("0")},
        )

    bought = or_(CI.purchase_date.is_(None), CI.purchase_date <= at)
    purchase = func.coalesce(func.sum(CI.purchase_cost).filter(bought), 0)
    for key, n, cost in db.session.execute(select(key_col, func.count(), purchase).group_by(key_col)):
        g = group(key)
        g["cis"] += n
        g["purchase_cost"] += Decimal(cost or 0)
    maintenance = (
        select(key_col, func.sum(MaintenanceRecord.cost))
        .join(CI, CI.id == MaintenanceRecord.ci_id)
        .where(MaintenanceRecord.performed_at <= at)
        .group_by(key_col)
    )
    for key, cost in db.session.execute(maintenance):
        group(key)["maintenance_cost"] += Decimal(cost or 0)
    sizes = dict(
        db.session.execute(select(ContractCI.contract_id, func.count()).group_by(ContractCI.contract_id)).all()
    )
    if sizes:
        accrued = {
            c.id: depreciation.contract_cost_to(c, at)
            for c in db.session.scalars(select(Contract).where(Contract.start_date <= at))
        }
        per_group = (
            select(ContractCI.contract_id, key_col, func.count())
            .join(CI, CI.id == ContractCI.ci_id)
            .group_by(ContractCI.contract_id, key_col)
        )
        for contract_id, key, n in db.session.execute(per_group):
            if contract_id in accrued:
                group(key)["contract_cost"] += accrued[contract_id] * n / sizes[contract_id]
    labels = _labels(by, [k for k in groups if k is not None])
    rows = []
    for key, g in groups.items():
        cents = {k: (v.quantize(depreciation.CENT) if isinstance(v, Decimal) else v) for k, v in g.items()}
        total = cents["purchase_cost"] + cents["maintenance_cost"] + cents["contract_cost"]
        rows.append(
            {"key": key, "label": labels.get(key, "(none)" if key is None else str(key)), **cents, "total": total}
        )
    rows.sort(key=lambda r: (-r["total"], str(r["label"])))
    return rows


def _labels(by, keys) -> dict:
    if by in ("team", "location") and keys:
        model = Team if by == "team" else Location
        return dict(db.session.execute(select(model.id, model.name).where(model.id.in_(keys))).all())
    return {k: k for k in keys}


register(
    "costs",
    "Cost by team, location, category or class",
    "Purchase, maintenance and contract cost accrued by a date, per group (?by=team|location|category|class).",
    columns=COST_COLUMNS,
    chart=_cost_chart,
    params=CostParams,
)(costs)


class TeamCostParams(Schema):
    as_of = ma.fields.Date()


register(
    "cost-by-team",
    "Cost by team",
    "Purchase, maintenance and contract cost accrued by a date, per owner team.",
    columns=COST_COLUMNS,
    chart=_cost_chart,
    params=TeamCostParams,
)(lambda params: costs({**params, "by": "team"}))


# ---------------------------------------------------------------------------------------------
# The asset register


REGISTER_FIELDS = ("status", "owner_team_id", "assigned_to_id", "location_id")


@register(
    "asset-register",
    "Asset register",
    "Every CI as of a date (status, owner, holder and location replayed from the change log), with cost "
    "and book value: for auditors. Also as XLSX (?format=xlsx).",
    columns=[
        ("ci_id", "CI id"),
        ("asset_tag", "Asset tag"),
        ("name", "Name"),
        ("ci_class", "Class"),
        ("category", "Category"),
        ("status", "Status"),
        ("owner_team", "Owner team"),
        ("assigned_to", "Assigned to"),
        ("location", "Location"),
        ("vendor", "Vendor"),
        ("model", "Model"),
        ("serial_number", "Serial number"),
        ("purchase_date", "Purchased"),
        ("purchase_cost", "Purchase cost"),
        ("currency", "Currency"),
        ("warranty_expires", "Warranty expires"),
        ("book_value", "Book value"),
        ("depreciation_to_date", "Depreciation to date"),
    ],
    chart=lambda rows, params: values_of(
        rows, "ci_class", {"purchase_cost": "purchase cost", "book_value": "book value"}, "value"
    ),
    params=AsOfParams,
    formats=("json", "csv", "xlsx", "svg", "png"),
    chart_source=lambda params: _book_by_class(params),
)
def asset_register(params):
    as_of = params.get("as_of") or _today()
    policies = all_policies()
    categories = {name: _category(name) for name in classes.REGISTRY}
    rows = []
    for r in db.session.execute(_register_select(as_of)):
        bought = r.purchase_date is None or r.purchase_date <= as_of
        cost = r.purchase_cost if bought else None
        book = depreciation.book_value(cost, r.purchase_date, policies[r.ci_class], as_of) if cost is not None else None
        rows.append(
            {
                "ci_id": r.id,
                "asset_tag": r.asset_tag,
                "name": r.name,
                "ci_class": r.ci_class,
                "category": categories.get(r.ci_class, "unknown"),
                "status": r.status,
                "owner_team": r.owner_team,
                "assigned_to": r.assigned_to,
                "location": r.location,
                "vendor": r.vendor or None,
                "model": r.model,
                "serial_number": r.serial_number,
                "purchase_date": r.purchase_date,
                "purchase_cost": cost,
                "currency": r.currency,
                "warranty_expires": r.warranty_expires,
                "book_value": book,
                "depreciation_to_date": None if book is None else Decimal(cost) - book,
            }
        )
    return rows


def _register_select(as_of: date):
    """One statement: every CI that existed at the end of ``as_of``, with its status, owner team, holder
    and location as they were then (replayed from the change log in SQL) and their names joined."""
    moment = _end_of(as_of)
    stmt = select(
        CI.id, CI.asset_tag, CI.name, CI.ci_class, CI.vendor, CI.model, CI.serial_number, CI.purchase_date,
        CI.purchase_cost, CI.currency, CI.warranty_expires,
    )  # fmt: skip
    if as_of < _today():
        state = StateAt(moment, REGISTER_FIELDS)
        stmt = state.join(stmt)
        value = state.value
    else:
        value = lambda field: getattr(CI, field)  # noqa: E731
    holder, place = User.__table__.alias("holder"), Location.__table__.alias("place")
    team = Team.__table__.alias("owner")
    return (
        stmt.add_columns(
            value("status").label("status"),
            team.c.name.label("owner_team"),
            holder.c.email.label("assigned_to"),
            place.c.name.label("location"),
        )
        .outerjoin(team, team.c.id == value("owner_team_id"))
        .outerjoin(holder, holder.c.id == value("assigned_to_id"))
        .outerjoin(place, place.c.id == value("location_id"))
        .where(CI.created_at < moment)
        .order_by(CI.id)
    )


def _book_by_class(params) -> tuple[list[dict], int]:
    """The register's chart: purchase cost and book value per class, from one grouped query (CIs bought
    the same day at the same price depreciate alike, so each group's book value is computed once)."""
    as_of = params.get("as_of") or _today()
    policies = all_policies()
    stmt = (
        select(CI.ci_class, CI.purchase_date, CI.purchase_cost, func.count())
        .where(CI.created_at < _end_of(as_of))
        .group_by(CI.ci_class, CI.purchase_date, CI.purchase_cost)
    )
    sums: dict[str, dict] = {}
    total = 0
    for ci_class, bought_on, cost, n in db.session.execute(stmt):
        total += n
        s = sums.setdefault(ci_class, {"ci_class": ci_class, "purchase_cost": 0.0, "book_value": 0.0})
        if cost is None or (bought_on is not None and bought_on > as_of):
            continue
        book = depreciation.book_value(cost, bought_on, policies[ci_class], as_of)
        s["purchase_cost"] += float(cost) * n
        s["book_value"] += float(book or 0) * n
    return sorted(sums.values(), key=lambda s: (-s["purchase_cost"], s["ci_class"])), total
