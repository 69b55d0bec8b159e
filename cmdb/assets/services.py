"""Asset management operations: every write to vendors, contracts, licences, maintenance, retirement,
wipe, disposal, audits and class policies goes through here (routes, jobs, CLI alike)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from cairn.auth.models import Team, User
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Invalid, NotFound
from cmdb import classes, lifecycle
from cmdb.assets import depreciation
from cmdb.assets.depreciation import Policy
from cmdb.assets.models import (
    AssetClassPolicy,
    Contract,
    ContractCI,
    DisposalRecord,
    Licence,
    MaintenanceRecord,
    PhysicalAudit,
    RetirementRequest,
    Vendor,
    WipeRecord,
)
from cmdb.models import ConfigurationItem, Location
from cmdb.services import get_ci, update_ci

RETIRED_STATUSES = lifecycle.INACTIVE_STATUSES  # out of the estate: no licence seats, no reminders
# Classes a person can walk up to and scan; virtual and logical CIs are never physically audited.
NOT_PHYSICAL = {"virtual_machine", "cluster"}
PHYSICAL_CATEGORIES = ("hardware", "mobile", "network")


def physical_classes() -> tuple[str, ...]:
    """The classes physically audited, read through the class registry (so per unit of work, as
    every other registry lookup): a built-in class of a physical category, and a custom class whose
    built-in ancestor is one (an ``infusion_pump`` under ``desktop`` counts; one under
    ``virtual_machine`` does not, whatever category it was given)."""
    names = []
    for name in classes.REGISTRY:
        root = classes.REGISTRY.get((classes.lineage(name) or [name])[-1])
        if root is not None and root.category in PHYSICAL_CATEGORIES and root.name not in NOT_PHYSICAL:
            names.append(name)
    return tuple(names)


def _default_policy(ci_class: str) -> Policy:
    """The default policy of a class: a custom class takes its built-in ancestor's defaults."""
    root = (classes.lineage(ci_class) or [ci_class])[-1]
    return dataclasses.replace(depreciation.default_policy(root), ci_class=ci_class)


SEAT_HOLDING_STATUSES = ("planned", "ordered", "in_stock", "deployed", "in_maintenance")


def _get(model, object_id: int, label: str):
    obj = db.session.get(model, object_id) if 0 < object_id <= MAX_ID else None
    if obj is None:
        raise NotFound(f"No {label} with id {object_id}.")
    return obj


def _exists(model, object_id: int | None) -> bool:
    return object_id is None or (0 < object_id <= MAX_ID and db.session.get(model, object_id) is not None)


def _today() -> date:
    return utcnow().date()


# ---------------------------------------------------------------------------------------------
# Vendors


def get_vendor(vendor_id: int) -> Vendor:
    return _get(Vendor, vendor_id, "vendor")


def search_vendors(filters: dict[str, Any]) -> Select:
    stmt = select(Vendor)
    if filters.get("q"):
        stmt = stmt.where(func.lower(Vendor.name).contains(filters["q"].lower(), autoescape=True))
    return stmt.order_by(Vendor.name, Vendor.id)


def create_vendor(data: dict[str, Any]) -> Vendor:
    """Create a vendor; the name is unique (409)."""
    vendor = Vendor(**data)
    _check_vendor_name(vendor)
    db.session.add(vendor)
    db.session.flush()
    return vendor


def update_vendor(vendor: Vendor, data: dict[str, Any]) -> Vendor:
    for key, value in data.items():
        setattr(vendor, key, value)
    _check_vendor_name(vendor)
    db.session.flush()
    return vendor


def _check_vendor_name(vendor: Vendor) -> None:
    clash = db.session.scalar(select(Vendor.id).where(Vendor.name == vendor.name, Vendor.id != (vendor.id or 0)))
    if clash is not None:
        raise Conflict(f"A vendor named {vendor.name!r} exists already.", conflicting_id=clash)


# ---------------------------------------------------------------------------------------------
# Contracts


def get_contract(contract_id: int) -> Contract:
    return _get(Contract, contract_id, "contract")


def search_contracts(filters: dict[str, Any]) -> Select:
    stmt = select(Contract)
    if filters.get("vendor_id") is not None:
        stmt = stmt.where(Contract.vendor_id == filters["vendor_id"])
    if filters.get("type"):
        stmt = stmt.where(Contract.type == filters["type"])
    if filters.get("ci_id") is not None:
        stmt = stmt.where(Contract.id.in_(select(ContractCI.contract_id).where(ContractCI.ci_id == filters["ci_id"])))
    if filters.get("ends_before") is not None:
        stmt = stmt.where(Contract.end_date < filters["ends_before"])
    if filters.get("active_on") is not None:
        day = filters["active_on"]
        stmt = stmt.where(Contract.start_date <= day, or_(Contract.end_date.is_(None), Contract.end_date >= day))
    return stmt.order_by(Contract.start_date.desc(), Contract.id.desc())


def notice_deadline(contract: Contract) -> date | None:
    """The last day to give notice (cancel or renegotiate) before the contract ends or renews."""
    if contract.end_date is None:
        return None
    return contract.end_date - timedelta(days=contract.notice_days or 0)


def create_contract(data: dict[str, Any]) -> Contract:
    """Create a contract covering ``ci_ids``; unknown vendor, team or CIs are 422."""
    data = dict(data)
    ci_ids = data.pop("ci_ids", None) or []
    contract = Contract(cost=Decimal("0"), recurring_cost=Decimal("0"), auto_renew=False, notice_days=0)
    _apply_contract(contract, data, ci_ids)
    db.session.add(contract)
    db.session.flush()
    return contract


def update_contract(contract: Contract, data: dict[str, Any]) -> Contract:
    """Change a contract; ``ci_ids``, when sent, replaces the covered CIs."""
    data = dict(data)
    ci_ids = data.pop("ci_ids", None)
    _apply_contract(contract, data, ci_ids)
    db.session.flush()
    return contract


def _apply_contract(contract: Contract, data: dict, ci_ids: list[int] | None) -> None:
    errors: dict[str, list[str]] = {}
    if "vendor_id" in data and not _exists(Vendor, data["vendor_id"]):
        errors["vendor_id"] = [f"No vendor with id {data['vendor_id']}."]
    if data.get("owner_team_id") is not None and not _exists(Team, data["owner_team_id"]):
        errors["owner_team_id"] = [f"No team with id {data['owner_team_id']}."]
    start = data.get("start_date", contract.start_date)
    end = data.get("end_date", contract.end_date)
    if start is not None and end is not None and end < start:
        errors["end_date"] = ["end_date must not be before start_date."]
    recurring = data.get("recurring_cost", contract.recurring_cost) or Decimal("0")
    period = data.get("recurring_period", contract.recurring_period)
    if recurring > 0 and period is None:
        errors["recurring_period"] = ["A recurring cost needs a recurring_period (monthly, quarterly, yearly)."]
    if ci_ids is not None:
        wanted = sorted(set(ci_ids))
        found = set(db.session.scalars(select(ConfigurationItem.id).where(ConfigurationItem.id.in_(wanted))))
        missing = [i for i in wanted if i not in found]
        if missing:
            errors["ci_ids"] = [f"No CI with id {', '.join(map(str, missing[:20]))}."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    for key, value in data.items():
        setattr(contract, key, value)
    if ci_ids is not None:
        wanted_set = set(ci_ids)
        for link in list(contract.covered):
            if link.ci_id not in wanted_set:
                contract.covered.remove(link)
        have = {link.ci_id for link in contract.covered}
        for ci_id in sorted(wanted_set - have):
            contract.covered.append(ContractCI(ci_id=ci_id))


# ---------------------------------------------------------------------------------------------
# Licences


def get_licence(licence_id: int) -> Licence:
    return _get(Licence, licence_id, "licence")


def search_licences(filters: dict[str, Any]) -> Select:
    stmt = select(Licence)
    for key in ("software_id", "contract_id"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(Licence, key) == filters[key])
    if filters.get("model"):
        stmt = stmt.where(Licence.model == filters["model"])
    if filters.get("active_on") is not None:
        stmt = stmt.where(active_licence(filters["active_on"]))
    return stmt.order_by(Licence.software_id, Licence.start_date, Licence.id)


def active_licence(day: date):
    """SQL condition: the licence's term covers ``day``."""
    return and_(Licence.start_date <= day, or_(Licence.end_date.is_(None), Licence.end_date >= day))


def create_licence(data: dict[str, Any]) -> Licence:
    """Create an entitlement for a software product (a CI of class ``software``)."""
    licence = Licence(cost=Decimal("0"))
    _apply_licence(licence, dict(data))
    db.session.add(licence)
    db.session.flush()
    return licence


def update_licence(licence: Licence, data: dict[str, Any]) -> Licence:
    _apply_licence(licence, dict(data))
    db.session.flush()
    return licence


def _apply_licence(licence: Licence, data: dict) -> None:
    errors: dict[str, list[str]] = {}
    if "software_id" in data:
        software = db.session.get(ConfigurationItem, data["software_id"])
        if software is None:
            errors["software_id"] = [f"No CI with id {data['software_id']}."]
        elif software.ci_class != "software":
            errors["software_id"] = [f"CI {software.id} is a {software.ci_class}, not a software product."]
    if data.get("contract_id") is not None and not _exists(Contract, data["contract_id"]):
        errors["contract_id"] = [f"No contract with id {data['contract_id']}."]
    model = data.get("model", licence.model)
    quantity = data.get("quantity", licence.quantity)
    if model == "site":
        data["quantity"] = None
    elif quantity is None:
        errors["quantity"] = [f"A {model} licence needs a quantity."]
    start = data.get("start_date", licence.start_date)
    end = data.get("end_date", licence.end_date)
    if start is not None and end is not None and end < start:
        errors["end_date"] = ["end_date must not be before start_date."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    for key, value in data.items():
        setattr(licence, key, value)


# ---------------------------------------------------------------------------------------------
# Depreciation policies


def policy_for(ci_class: str) -> Policy:
    row = db.session.scalar(select(AssetClassPolicy).where(AssetClassPolicy.ci_class == ci_class))
    return _policy(row) if row is not None else _default_policy(ci_class)


def _policy(row: AssetClassPolicy) -> Policy:
    return Policy(
        ci_class=row.ci_class,
        depreciation_method=row.depreciation_method,
        useful_life_years=row.useful_life_years,
        salvage_percent=Decimal(row.salvage_percent),
        declining_factor=Decimal(row.declining_factor),
        audit_interval_days=row.audit_interval_days,
        configured=True,
    )


def all_policies() -> dict[str, Policy]:
    """Every class of the registry with its policy (configured or default)."""
    rows = {row.ci_class: row for row in db.session.scalars(select(AssetClassPolicy))}
    return {name: _policy(rows[name]) if name in rows else _default_policy(name) for name in classes.REGISTRY}


def set_policy(ci_class: str, data: dict[str, Any]) -> Policy:
    """Create or change the policy of a class (fields not sent keep their current value)."""
    if ci_class not in classes.REGISTRY:
        raise NotFound(f"No CI class {ci_class!r}.")
    row = db.session.scalar(select(AssetClassPolicy).where(AssetClassPolicy.ci_class == ci_class).with_for_update())
    if row is None:
        default = _default_policy(ci_class)
        row = AssetClassPolicy(
            ci_class=ci_class,
            depreciation_method=default.depreciation_method,
            useful_life_years=default.useful_life_years,
            salvage_percent=default.salvage_percent,
            declining_factor=default.declining_factor,
            audit_interval_days=default.audit_interval_days,
        )
        db.session.add(row)
    for key, value in data.items():
        setattr(row, key, value)
    db.session.flush()
    return _policy(row)


# ---------------------------------------------------------------------------------------------
# Maintenance and costs


def maintenance_of(ci: ConfigurationItem) -> Select:
    return (
        select(MaintenanceRecord)
        .where(MaintenanceRecord.ci_id == ci.id)
        .order_by(MaintenanceRecord.performed_at.desc(), MaintenanceRecord.id.desc())
    )


def add_maintenance(ci: ConfigurationItem, data: dict[str, Any]) -> MaintenanceRecord:
    """Record a repair, upgrade or patch on a CI; unknown vendor or ticket ids are 422."""
    errors: dict[str, list[str]] = {}
    if not _exists(Vendor, data.get("vendor_id")):
        errors["vendor_id"] = [f"No vendor with id {data['vendor_id']}."]
    if data.get("ticket_id") is not None and not _ticket_exists(data["ticket_id"]):
        errors["ticket_id"] = [f"No ticket with id {data['ticket_id']}."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    record = MaintenanceRecord(**{"cost": Decimal("0"), "currency": ci.currency, **data})
    record.ci_id = ci.id
    db.session.add(record)
    db.session.flush()
    return record


def _ticket_exists(ticket_id: int) -> bool:
    # The tickets package sits above cmdb; its table is looked up by name, never imported.
    table = db.metadata.tables.get("ticket")
    if table is None:
        return False
    return db.session.execute(select(table.c.id).where(table.c.id == ticket_id)).first() is not None


def contract_shares(ci_ids: list[int], at: date) -> dict[int, Decimal]:
    """Each CI's share of the cost of the contracts covering it, accrued by ``at`` (equal split)."""
    if not ci_ids:
        return {}
    covering = select(ContractCI.contract_id).where(ContractCI.ci_id.in_(ci_ids))
    sizes = dict(
        db.session.execute(
            select(ContractCI.contract_id, func.count())
            .where(ContractCI.contract_id.in_(covering))
            .group_by(ContractCI.contract_id)
        ).all()
    )
    contracts = {c.id: c for c in db.session.scalars(select(Contract).where(Contract.id.in_(list(sizes))))}
    shares: dict[int, Decimal] = {}
    links = db.session.execute(select(ContractCI.ci_id, ContractCI.contract_id).where(ContractCI.ci_id.in_(ci_ids)))
    for ci_id, contract_id in links:
        contract = contracts[contract_id]
        share = depreciation.contract_cost_to(contract, at) / sizes[contract_id]
        shares[ci_id] = shares.get(ci_id, Decimal("0")) + share
    return {k: v.quantize(depreciation.CENT) for k, v in shares.items()}


def costs(ci: ConfigurationItem, as_of: date | None = None) -> dict[str, Any]:
    """Purchase, book value, depreciation, maintenance and contract cost, and TCO of a CI on ``as_of``."""
    at = as_of or _today()
    policy = policy_for(ci.ci_class)
    bought = ci.purchase_date is None or ci.purchase_date <= at
    purchase = Decimal(ci.purchase_cost) if ci.purchase_cost is not None and bought else None
    book = depreciation.book_value(purchase, ci.purchase_date, policy, at) if purchase is not None else None
    maintenance = db.session.scalar(
        select(func.coalesce(func.sum(MaintenanceRecord.cost), 0)).where(
            MaintenanceRecord.ci_id == ci.id, MaintenanceRecord.performed_at <= at
        )
    )
    maintenance = Decimal(maintenance or 0).quantize(depreciation.CENT)
    contract = contract_shares([ci.id], at).get(ci.id, Decimal("0.00"))
    return {
        "ci_id": ci.id,
        "as_of": at,
        "currency": ci.currency,
        "purchase_cost": purchase,
        "purchase_date": ci.purchase_date,
        "depreciation_method": policy.depreciation_method,
        "useful_life_years": policy.useful_life_years,
        "end_of_life": depreciation.end_of_life(ci.purchase_date, policy),
        "book_value": book,
        "depreciation_to_date": None if book is None else (purchase - book).quantize(depreciation.CENT),
        "maintenance_cost": maintenance,
        "contract_cost": contract,
        "tco": ((purchase or Decimal("0")) + maintenance + contract).quantize(depreciation.CENT),
    }


# ---------------------------------------------------------------------------------------------
# Retirement: request, approval, wipe, disposal


def get_retirement_request(request_id: int) -> RetirementRequest:
    return _get(RetirementRequest, request_id, "retirement request")


def search_retirement_requests(filters: dict[str, Any]) -> Select:
    stmt = select(RetirementRequest)
    if filters.get("state"):
        stmt = stmt.where(RetirementRequest.state == filters["state"])
    if filters.get("ci_id") is not None:
        stmt = stmt.where(RetirementRequest.ci_id == filters["ci_id"])
    return stmt.order_by(RetirementRequest.id.desc())


def request_retirement(ci: ConfigurationItem, reason: str, requester: User | None) -> RetirementRequest:
    """Ask for a CI to be retired; one open request per CI, and not for a CI already retired (409)."""
    if ci.status in RETIRED_STATUSES:
        raise Conflict(f"CI {ci.id} is already {ci.status}.")
    pending = db.session.scalar(
        select(RetirementRequest.id).where(RetirementRequest.ci_id == ci.id, RetirementRequest.state == "requested")
    )
    if pending is not None:
        raise Conflict(f"Retirement of CI {ci.id} is already requested (request {pending}).", conflicting_id=pending)
    req = RetirementRequest(
        ci_id=ci.id, reason=reason, state="requested", requested_by_id=requester.id if requester else None
    )
    db.session.add(req)
    db.session.flush()
    return req


def decide_retirement(req: RetirementRequest, decision: str, comment: str, decider: User | None) -> RetirementRequest:
    """Approve (the CI moves to ``retired``, which releases its licence seats) or reject a request."""
    if req.state != "requested":
        raise Conflict(f"Retirement request {req.id} was already {req.state}.")
    req.state = "approved" if decision == "approve" else "rejected"
    req.comment = comment or ""
    req.decided_at = utcnow()
    req.decided_by_id = decider.id if decider else None
    if req.state == "approved":
        ci = get_ci(req.ci_id, for_update=True)
        if ci.status not in RETIRED_STATUSES:
            update_ci(ci, {"status": "retired"})
    db.session.flush()
    return req


def awaiting_wipe() -> Select:
    """Retired CIs with no data-wipe record yet: the retirement queue's "wipes to record", oldest
    change first."""
    ci = ConfigurationItem
    wiped = select(WipeRecord.id).where(WipeRecord.ci_id == ci.id).exists()
    return select(ci).where(ci.status == "retired", ~wiped).order_by(ci.updated_at, ci.id)


def awaiting_disposal() -> Select:
    """Retired CIs whose data wipe is recorded: the retirement queue's "disposals to complete" (a
    disposal needs the wipe record, see :func:`require_wipe_record`), oldest change first."""
    ci = ConfigurationItem
    wiped = select(WipeRecord.id).where(WipeRecord.ci_id == ci.id).exists()
    return select(ci).where(ci.status == "retired", wiped).order_by(ci.updated_at, ci.id)


def wipes_of(ci: ConfigurationItem) -> list[WipeRecord]:
    return list(
        db.session.scalars(select(WipeRecord).where(WipeRecord.ci_id == ci.id).order_by(WipeRecord.performed_at.desc()))
    )


def record_wipe(ci: ConfigurationItem, data: dict[str, Any]) -> WipeRecord:
    """Record the data wipe of a retired CI (a CI in any other status is 409)."""
    if ci.status != "retired":
        raise Conflict(f"CI {ci.id} is {ci.status}: only a retired CI is wiped.", status_now=ci.status)
    data = dict(data)
    data.setdefault("performed_at", utcnow())
    if data["performed_at"] > utcnow() + timedelta(minutes=5):
        raise Invalid("A wipe cannot be recorded ahead of time.", errors={"performed_at": ["Is in the future."]})
    wipe = WipeRecord(ci_id=ci.id, **data)
    db.session.add(wipe)
    db.session.flush()
    return wipe


def require_wipe_record(ci: ConfigurationItem) -> None:
    """The rule behind every move to ``disposed`` (PATCH /cis/{id} too): a wipe record must exist."""
    if ci.id is None or db.session.scalar(select(WipeRecord.id).where(WipeRecord.ci_id == ci.id).limit(1)) is None:
        raise Conflict(
            f"CI {ci.id} has no data-wipe record: POST /api/v1/cis/{ci.id}/wipe before disposing of it.",
            missing="wipe",
        )


def disposal_of(ci: ConfigurationItem) -> DisposalRecord | None:
    return db.session.scalar(select(DisposalRecord).where(DisposalRecord.ci_id == ci.id))


def dispose(ci: ConfigurationItem, data: dict[str, Any]) -> DisposalRecord:
    """Dispose of a retired, wiped CI: records how, and moves it to ``disposed`` (final)."""
    if ci.status != "retired":
        raise Conflict(f"CI {ci.id} is {ci.status}: only a retired CI is disposed of.", status_now=ci.status)
    require_wipe_record(ci)
    record = DisposalRecord(**{"proceeds": Decimal("0"), "currency": ci.currency, "disposed_at": _today(), **data})
    record.ci_id = ci.id
    db.session.add(record)
    update_ci(ci, {"status": "disposed"})
    db.session.flush()
    return record


# ---------------------------------------------------------------------------------------------
# Physical audits


def search_audits(filters: dict[str, Any]) -> Select:
    stmt = select(PhysicalAudit)
    for key in ("ci_id", "location_id", "mismatch"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(PhysicalAudit, key) == filters[key])
    return stmt.order_by(PhysicalAudit.audited_at.desc(), PhysicalAudit.id.desc())


def record_audit(data: dict[str, Any], auditor: User | None) -> PhysicalAudit:
    """A CI seen at a location, found by its asset tag: unknown tag or location is 422. Seen anywhere
    but its recorded location is a mismatch; ``relocate`` also moves the CI there."""
    data = dict(data)
    tag = data["asset_tag"].strip()
    errors: dict[str, list[str]] = {}
    ci = db.session.scalar(select(ConfigurationItem).where(ConfigurationItem.asset_tag == tag))
    if ci is None:
        errors["asset_tag"] = [f"No CI has asset tag {tag!r}."]
    if not _exists(Location, data["location_id"]):
        errors["location_id"] = [f"No location with id {data['location_id']}."]
    at = data.get("audited_at") or utcnow()
    if at > utcnow() + timedelta(minutes=5):
        errors["audited_at"] = ["Is in the future."]
    if errors:
        raise Invalid("Some fields are invalid.", errors=errors)
    policy = policy_for(ci.ci_class)
    expected = ci.location_id
    audit = PhysicalAudit(
        ci_id=ci.id,
        asset_tag=tag,
        location_id=data["location_id"],
        expected_location_id=expected,
        mismatch=expected != data["location_id"],
        audited_at=at,
        audited_by_id=auditor.id if auditor else None,
        next_audit_due=at.date() + timedelta(days=policy.audit_interval_days),
        note=data.get("note") or "",
    )
    db.session.add(audit)
    if audit.mismatch and data.get("relocate"):
        update_ci(get_ci(ci.id, for_update=True), {"location_id": data["location_id"]})
    db.session.flush()
    return audit


def overdue_audits_select(today: date | None = None) -> Select:
    """Physical CIs in the estate whose next audit is past due: the last audit's due date, or for a CI
    never audited, its creation plus its class's audit interval.

    Columns: ci id, name, class, asset tag, location id, last audited at, due date (None when never audited
    and the due date follows from the creation time)."""
    today = today or _today()
    ci = ConfigurationItem
    latest = (
        select(PhysicalAudit.ci_id, func.max(PhysicalAudit.audited_at).label("at"))
        .group_by(PhysicalAudit.ci_id)
        .subquery()
    )
    # The due date the latest audit set (an interval changed since then applies from the next audit).
    last = (
        select(
            PhysicalAudit.ci_id.label("ci_id"),
            func.max(PhysicalAudit.audited_at).label("last_audited_at"),
            func.max(PhysicalAudit.next_audit_due).label("next_due"),
        )
        .join(latest, and_(latest.c.ci_id == PhysicalAudit.ci_id, latest.c.at == PhysicalAudit.audited_at))
        .group_by(PhysicalAudit.ci_id)
        .subquery()
    )
    policies = all_policies()
    never_audited_overdue = []
    by_interval: dict[int, list[str]] = {}
    physical = physical_classes()
    for name in physical:
        by_interval.setdefault(policies[name].audit_interval_days, []).append(name)
    for days, names in by_interval.items():
        cutoff = datetime.combine(today - timedelta(days=days), datetime.min.time())
        never_audited_overdue.append(and_(ci.ci_class.in_(names), ci.created_at < cutoff))
    return (
        select(
            ci.id,
            ci.name,
            ci.ci_class,
            ci.asset_tag,
            ci.location_id,
            ci.status,
            last.c.last_audited_at,
            last.c.next_due,
        )
        .outerjoin(last, last.c.ci_id == ci.id)
        .where(
            ci.ci_class.in_(physical),
            ci.status.in_(("in_stock", "deployed", "in_maintenance", "retired")),
            or_(
                last.c.next_due < today,
                and_(last.c.ci_id.is_(None), or_(*never_audited_overdue)),
            ),
        )
        .order_by(last.c.next_due.is_(None).desc(), last.c.next_due, ci.id)
    )
