"""The asset manager's views: what expires soon, licence compliance with its drill-down to the devices,
vendors, contracts and licences, the retirement queue (approve, wipe, dispose), the asset register and
every report of /api/v1/reports as a page with its chart and downloads, and the CI page's costs section.

Pages call the services the API's asset and report routes call (cmdb.assets.services,
integrations.reports); nothing here decides a rule of its own."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.db import MAX_ID, db
from cairn.errors import Conflict, DomainError, Invalid, NotFound
from cairn.pagination import count_of
from cmdb import lifecycle
from cmdb.assets import services
from cmdb.assets.models import (
    CONTRACT_TYPES,
    DISPOSAL_METHODS,
    LICENCE_MODELS,
    WIPE_METHODS,
    Contract,
    Vendor,
)
from cmdb.assets.schemas import (
    ContractQuerySchema,
    DisposalWriteSchema,
    LicenceQuerySchema,
    RetirementDecisionSchema,
    RetirementRequestWriteSchema,
    VendorQuerySchema,
    WipeWriteSchema,
)
from cmdb.models import ConfigurationItem
from cmdb.services import get_ci
from integrations.reports import registry, render
from integrations.reports.licences import open_installs
from web.blueprint import bp
from web.forms import field_errors, form_int, keep_errors, load, present

# Who opens the asset pages: the API's asset readers who can sign in (not integrations).
READERS = tuple(r for r in roles.ASSET_READERS if r != roles.INTEGRATION)
# Who may approve retirements and dispose (the API's approvers), record wipes and ask for a
# retirement (its field workers), minus integrations, which have no session.
APPROVERS = tuple(r for r in roles.ASSET_APPROVERS if r in READERS)
FIELD_WORKERS = tuple(r for r in roles.ASSET_FIELD_WORKERS if r in READERS)

PAGE_SIZE = 50
SHOWN = 200  # rows of a report or a related list shown on a page (downloads have them all)
WINDOWS = (30, 60, 90)
COMPLIANCE_PROBLEMS_SHOWN = 8

STATUS_LABELS = {
    "compliant": _l("Compliant"),
    "over_licensed": _l("Over-licensed"),
    "under_licensed": _l("Under-licensed"),
}
KIND_LABELS = {"warranty": _l("Warranty"), "contract": _l("Contract"), "licence": _l("Licence")}
CONTRACT_TYPE_LABELS = {
    "support": _l("Support"),
    "maintenance": _l("Maintenance"),
    "lease": _l("Lease"),
    "warranty_extension": _l("Warranty extension"),
    "subscription": _l("Subscription"),
    "saas": _l("SaaS"),
}
MODEL_LABELS = {
    "per_device": _l("Per device"),
    "per_user": _l("Per user"),
    "per_core": _l("Per core"),
    "site": _l("Site"),
    "subscription": _l("Subscription"),
    None: _l("No licence"),
}
WIPE_LABELS = {
    "overwrite": _l("Overwrite"),
    "crypto_erase": _l("Cryptographic erase"),
    "degauss": _l("Degauss"),
    "physical_destruction": _l("Physical destruction"),
    "factory_reset": _l("Factory reset"),
    "other": _l("Other"),
}
DISPOSAL_LABELS = {
    "recycle": _l("Recycle"),
    "resell": _l("Resell"),
    "donate": _l("Donate"),
    "destroy": _l("Destroy"),
}
REASON_LABELS = {"retired": _l("device retired"), "disposed": _l("device disposed"), "not_seen": _l("not seen")}
PERIOD_LABELS = {"monthly": _l("monthly"), "quarterly": _l("quarterly"), "yearly": _l("yearly")}


def _labels() -> dict:
    from web.cis import STATUS_LABELS as CI_STATUS_LABELS
    from web.cis import class_label

    return {
        "compliance_labels": STATUS_LABELS,
        "kind_labels": KIND_LABELS,
        "contract_type_labels": CONTRACT_TYPE_LABELS,
        "model_labels": MODEL_LABELS,
        "ci_status_labels": CI_STATUS_LABELS,
        "class_label": class_label,
        "wipe_labels": WIPE_LABELS,
        "disposal_labels": DISPOSAL_LABELS,
        "reason_labels": REASON_LABELS,
        "period_labels": PERIOD_LABELS,
        "can_approve": g.user.role in APPROVERS,
        "can_work": g.user.role in FIELD_WORKERS,
        "errors": field_errors(),
    }


def _crumbs(*trail) -> list:
    return [(_("Assets"), url_for("web.assets")), *trail]


def _page_number() -> int:
    number = form_int(request.args.get("page"))
    return max(1, number or 1)


def _paged(stmt, size: int = PAGE_SIZE) -> dict:
    """One page of a select of objects, with the total and the page count."""
    total = count_of(stmt)
    pages = max(1, -(-total // size))
    number = min(_page_number(), pages)
    rows = list(db.session.scalars(stmt.offset((number - 1) * size).limit(size)))
    return {"rows": rows, "total": total, "page_number": number, "pages": pages}


def _args(*names: str) -> dict:
    """The named query-string values as typed (trimmed, bounded), blanks left out."""
    values = {name: (request.args.get(name) or "").strip()[:200] for name in names}
    return {key: value for key, value in values.items() if value}


def _filters(schema, raw: dict) -> tuple[dict, int]:
    """Query filters through the API's schema; invalid ones are shown and dropped (422)."""
    try:
        return load(schema, raw), 200
    except Invalid as error:
        keep_errors(error)
        return {}, error.status


# ---------------------------------------------------------------------------------------------
# The asset manager's home


def _expiring(days: int) -> list[dict]:
    return registry.run("expiring", {"days": days}).rows


def _compliance(**params) -> list[dict]:
    return registry.run("licence-compliance", params).rows


def _queue_counts() -> dict:
    return {
        "requested": count_of(services.search_retirement_requests({"state": "requested"})),
        "to_wipe": count_of(services.awaiting_wipe()),
        "to_dispose": count_of(services.awaiting_disposal()),
    }


@bp.get("/assets")
@page(*READERS)
def assets():
    """What needs the asset manager: what expires in 30/60/90 days, licence compliance problems and
    the retirement queue."""
    rows = _expiring(max(WINDOWS))
    windows = [(days, sum(1 for r in rows if r["days_left"] <= days)) for days in WINDOWS]
    compliance = _compliance()
    problems = [r for r in compliance if r["status"] == "under_licensed"]
    true_up = {}
    for row in problems:
        if row["true_up_cost"] is not None:
            currency = row["currency"] or ""
            true_up[currency] = true_up.get(currency, Decimal("0")) + row["true_up_cost"]
    return render_template(
        "assets/home.html",
        windows=windows,
        soonest=rows[:8],
        problems=problems[:COMPLIANCE_PROBLEMS_SHOWN],
        problem_count=len(problems),
        over_count=sum(1 for r in compliance if r["status"] == "over_licensed"),
        true_up=sorted(true_up.items()),
        queue=_queue_counts(),
        breadcrumbs=[(_("Assets"), None)],
        **_labels(),
    )


@bp.get("/assets/expiring")
@page(*READERS)
def assets_expiring():
    """Warranties, contracts and licences ending within 30, 60 or 90 days (the ``expiring`` report)."""
    raw = (request.args.get("days") or "").strip()
    days = form_int(raw) if raw else WINDOWS[0]
    status = 200
    if days not in WINDOWS:
        flash(_("Choose 30, 60 or 90 days."), "error")
        days, status = 30, 422
    rows = _expiring(days)
    return (
        render_template(
            "assets/expiring.html",
            rows=rows,
            days=days,
            windows=WINDOWS,
            breadcrumbs=_crumbs((_("Expiring"), None)),
            **_labels(),
        ),
        status,
    )


# ---------------------------------------------------------------------------------------------
# Licence compliance


@bp.get("/assets/compliance")
@page(*READERS)
def assets_compliance():
    """Per product and licence model: entitled against consumed, shortfall and true-up cost, surplus
    and what it wastes, and how many installations could be reclaimed."""
    wanted = (request.args.get("status") or "").strip()
    status = 200
    params = {}
    if wanted in STATUS_LABELS:
        params["status"] = wanted
    elif wanted:
        flash(_("Not a compliance status."), "error")
        wanted, status = "", 422
    rows = _compliance(**params)
    reclaimable: dict[int, int] = {}
    for row in registry.run("licence-reclaim", {}).rows:
        reclaimable[row["software_id"]] = reclaimable.get(row["software_id"], 0) + 1
    return (
        render_template(
            "assets/compliance.html",
            rows=rows,
            wanted=wanted,
            reclaimable=reclaimable,
            breadcrumbs=_crumbs((_("Licence compliance"), None)),
            **_labels(),
        ),
        status,
    )


def _software(software_id: int) -> ConfigurationItem:
    product = get_ci(software_id, g.user)
    if product.ci_class != "software":
        raise NotFound(_("CI %(id)d is not a software product.", id=product.id))
    return product


@bp.get("/assets/compliance/<int:software_id>")
@page(*READERS)
def assets_product(software_id: int):
    """One product: its compliance rows, its licences, and the devices it is installed on (those
    whose seat could be reclaimed marked)."""
    product = _software(software_id)
    rows = _compliance(software_id=product.id)
    licences = list(db.session.scalars(services.search_licences({"software_id": product.id}).limit(SHOWN)))
    installs = open_installs()
    installs = installs.where(installs.selected_columns.software_id == product.id).subquery()
    devices = select(ConfigurationItem).join(installs, installs.c.device_id == ConfigurationItem.id)
    listed = _paged(devices.order_by(ConfigurationItem.name, ConfigurationItem.id))
    reclaim = {r["device_id"]: r for r in registry.run("licence-reclaim", {}).rows if r["software_id"] == product.id}
    return render_template(
        "assets/product.html",
        product=product,
        rows=rows,
        licences=licences,
        devices=listed,
        reclaim=reclaim,
        breadcrumbs=_crumbs((_("Licence compliance"), url_for("web.assets_compliance")), (product.name, None)),
        **_labels(),
    )


# ---------------------------------------------------------------------------------------------
# Vendors, contracts, licences


@bp.get("/assets/vendors")
@page(*READERS)
def assets_vendors():
    form = _args("q")
    filters, status = _filters(VendorQuerySchema(), form)
    listed = _paged(services.search_vendors(filters))
    return (
        render_template(
            "assets/vendors.html", form=form, listed=listed, breadcrumbs=_crumbs((_("Vendors"), None)), **_labels()
        ),
        status,
    )


@bp.get("/assets/vendors/<int:vendor_id>")
@page(*READERS)
def assets_vendor(vendor_id: int):
    vendor = services.get_vendor(vendor_id)
    contracts = list(db.session.scalars(services.search_contracts({"vendor_id": vendor.id}).limit(SHOWN)))
    ci_ids = sorted({ci_id for c in contracts for ci_id in c.ci_ids})
    cis = _cis(ci_ids[:SHOWN])
    return render_template(
        "assets/vendor.html",
        vendor=vendor,
        contracts=contracts,
        cis=cis,
        cis_more=max(0, len(ci_ids) - SHOWN),
        deadline=services.notice_deadline,
        breadcrumbs=_crumbs((_("Vendors"), url_for("web.assets_vendors")), (vendor.name, None)),
        **_labels(),
    )


def _cis(ids: list[int]) -> list[ConfigurationItem]:
    if not ids:
        return []
    stmt = select(ConfigurationItem).where(ConfigurationItem.id.in_(ids))
    return list(db.session.scalars(stmt.order_by(ConfigurationItem.name, ConfigurationItem.id)))


def _vendors() -> list[tuple[int, str]]:
    return list(db.session.execute(select(Vendor.id, Vendor.name).order_by(Vendor.name).limit(1000)).tuples())


@bp.get("/assets/contracts")
@page(*READERS)
def assets_contracts():
    """Contracts by vendor and type, or ending before a day; with their renewal and notice dates."""
    form = _args("vendor_id", "type", "ends_before")
    filters, status = _filters(ContractQuerySchema(), form)
    listed = _paged(services.search_contracts(filters))
    return (
        render_template(
            "assets/contracts.html",
            form=form,
            listed=listed,
            vendors=_vendors(),
            types=CONTRACT_TYPES,
            deadline=services.notice_deadline,
            breadcrumbs=_crumbs((_("Contracts"), None)),
            **_labels(),
        ),
        status,
    )


@bp.get("/assets/contracts/<int:contract_id>")
@page(*READERS)
def assets_contract(contract_id: int):
    contract = services.get_contract(contract_id)
    ids = contract.ci_ids
    licences = list(db.session.scalars(services.search_licences({"contract_id": contract.id}).limit(SHOWN)))
    return render_template(
        "assets/contract.html",
        contract=contract,
        cis=_cis(ids[:SHOWN]),
        cis_more=max(0, len(ids) - SHOWN),
        licences=licences,
        products=_names([licence.software_id for licence in licences]),
        notice=services.notice_deadline(contract),
        breadcrumbs=_crumbs((_("Contracts"), url_for("web.assets_contracts")), (_contract_name(contract), None)),
        **_labels(),
    )


def _contract_name(contract: Contract) -> str:
    return contract.name or contract.reference or _("Contract %(id)d", id=contract.id)


def _names(ids) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    stmt = select(ConfigurationItem.id, ConfigurationItem.name).where(ConfigurationItem.id.in_(ids))
    return dict(db.session.execute(stmt).tuples().all())


@bp.get("/assets/licences")
@page(*READERS)
def assets_licences():
    form = _args("software_id", "model", "active_on")
    filters, status = _filters(LicenceQuerySchema(), form)
    listed = _paged(services.search_licences(filters))
    return (
        render_template(
            "assets/licences.html",
            form=form,
            listed=listed,
            products=_names([licence.software_id for licence in listed["rows"]]),
            models=LICENCE_MODELS,
            breadcrumbs=_crumbs((_("Licences"), None)),
            **_labels(),
        ),
        status,
    )


@bp.get("/assets/licences/<int:licence_id>")
@page(*READERS)
def assets_licence(licence_id: int):
    licence = services.get_licence(licence_id)
    product = db.session.get(ConfigurationItem, licence.software_id)
    contract = db.session.get(Contract, licence.contract_id) if licence.contract_id else None
    name = product.name if product else _("Licence %(id)d", id=licence.id)
    return render_template(
        "assets/licence.html",
        licence=licence,
        product=product,
        contract=contract,
        contract_name=_contract_name(contract) if contract else None,
        rows=_compliance(software_id=licence.software_id),
        breadcrumbs=_crumbs((_("Licences"), url_for("web.assets_licences")), (name, None)),
        **_labels(),
    )


# ---------------------------------------------------------------------------------------------
# The retirement queue


def _queue(status: int = 200, failed: tuple[str, int] | None = None):
    requests_ = list(db.session.scalars(services.search_retirement_requests({"state": "requested"}).limit(SHOWN)))
    return (
        render_template(
            "assets/retirement.html",
            requests=requests_,
            request_cis={c.id: c for c in _cis([r.ci_id for r in requests_])},
            requesters=_people([r.requested_by_id for r in requests_]),
            to_wipe=list(db.session.scalars(services.awaiting_wipe().limit(SHOWN))),
            to_dispose=list(db.session.scalars(services.awaiting_disposal().limit(SHOWN))),
            tally=_queue_counts(),
            failed=failed,
            form=request.form if request.method == "POST" else {},
            wipe_methods=WIPE_METHODS,
            disposal_methods=DISPOSAL_METHODS,
            breadcrumbs=_crumbs((_("Retirement queue"), None)),
            **_labels(),
        ),
        status,
    )


def _people(ids) -> dict[int, str]:
    from sqlalchemy import func

    from cairn.auth.models import User

    ids = sorted({i for i in ids if i})
    if not ids:
        return {}
    label = func.coalesce(func.nullif(User.name, ""), User.email)
    return dict(db.session.execute(select(User.id, label).where(User.id.in_(ids))).tuples().all())


@bp.get("/assets/retirement")
@page(*READERS)
def assets_retirement():
    """Retirement requests to approve, wipes to record, disposals to complete."""
    return _queue()


@bp.get("/assets/retirement/new")
@page(*FIELD_WORKERS)
def assets_retirement_new():
    """The form asking for a CI's retirement (linked from the CI page and the compliance drill-down)."""
    ci_id = form_int(request.args.get("ci_id"))
    if ci_id is None:
        raise NotFound(_("Which CI? Open this form from the CI's page."))
    found = get_ci(ci_id, g.user)
    return _request_form(found)


def _request_form(found: ConfigurationItem, status: int = 200):
    pending = db.session.scalar(services.search_retirement_requests({"state": "requested", "ci_id": found.id}).limit(1))
    return (
        render_template(
            "assets/retirement_new.html",
            ci=found,
            pending=pending,
            form=request.form if request.method == "POST" else {},
            breadcrumbs=_crumbs((_("Retirement queue"), url_for("web.assets_retirement")), (found.name, None)),
            **_labels(),
        ),
        status,
    )


@bp.post("/assets/cis/<int:ci_id>/retirement")
@page(*FIELD_WORKERS)
def assets_request_retirement(ci_id: int):
    """Ask for a CI's retirement (POST /cis/{id}/retirement): one open request per CI, not for a CI
    already retired."""
    found = get_ci(ci_id, g.user, for_update=True)
    try:
        data = load(RetirementRequestWriteSchema(), present(request.form, "reason"))
        services.request_retirement(found, data["reason"], g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _request_form(get_ci(ci_id, g.user), error.status)
    flash(_("Retirement of %(name)s requested.", name=found.name), "success")
    return redirect(url_for("web.assets_retirement"))


@bp.post("/assets/retirement/<int:request_id>/decision")
@page(*APPROVERS)
def assets_decide_retirement(request_id: int):
    """Approve (the CI is retired) or reject a request, as POST /retirement-requests/{id}/decision;
    a form shown before somebody else changed the request is refused (409)."""
    req = services.get_retirement_request(request_id)
    try:
        data = load(RetirementDecisionSchema(), present(request.form, "decision", "comment"))
        version = (request.form.get("version") or "").strip()
        if version and version != str(req.version):
            raise Conflict(_("Somebody changed this request since you opened it; look again and retry."))
        services.decide_retirement(req, data["decision"], data.get("comment", ""), g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _queue(error.status, ("decision", request_id))
    found = db.session.get(ConfigurationItem, req.ci_id)
    if req.state == "approved":
        flash(_("Approved: %(name)s is retired. Record its data wipe next.", name=found.name), "success")
    else:
        flash(_("Rejected the retirement of %(name)s.", name=found.name), "success")
    return redirect(url_for("web.assets_retirement"))


@bp.post("/assets/cis/<int:ci_id>/wipe")
@page(*FIELD_WORKERS)
def assets_record_wipe(ci_id: int):
    """Record the data wipe of a retired CI (POST /cis/{id}/wipe)."""
    found = get_ci(ci_id, g.user, for_update=True)
    try:
        raw = present(request.form, "method", "performed_by", "performed_at", "certificate", "note")
        data = load(WipeWriteSchema(), raw)
        services.record_wipe(found, data)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _queue(error.status, ("wipe", ci_id))
    flash(_("Data wipe of %(name)s recorded. It can be disposed of now.", name=found.name), "success")
    return redirect(url_for("web.assets_retirement"))


@bp.post("/assets/cis/<int:ci_id>/disposal")
@page(*APPROVERS)
def assets_record_disposal(ci_id: int):
    """Dispose of a retired, wiped CI (POST /cis/{id}/disposal): it becomes disposed, which is final."""
    found = get_ci(ci_id, g.user, for_update=True)
    try:
        raw = present(request.form, "method", "proceeds", "recipient", "certificate", "note")
        data = load(DisposalWriteSchema(), raw)
        services.dispose(found, data)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _queue(error.status, ("disposal", ci_id))
    flash(_("%(name)s is disposed of.", name=found.name), "success")
    return redirect(url_for("web.assets_retirement"))


# ---------------------------------------------------------------------------------------------
# Reports and the register


def _report_params(report) -> list[dict]:
    """The report's parameters as form fields: a choice, a date or a number."""
    fields = []
    for name, field in report.params().fields.items():
        choices = None
        for validator in field.validators:
            if isinstance(validator, ma.validate.OneOf):
                choices = [str(c) for c in validator.choices]
        kind = "choice" if choices else "date" if isinstance(field, ma.fields.Date) else "number"
        if kind == "number" and not isinstance(field, ma.fields.Integer):
            kind = "text"
        default = field.load_default if field.load_default is not ma.missing else None
        fields.append({"name": name, "kind": kind, "choices": choices, "default": default, "required": field.required})
    return fields


def _raw_params(report) -> dict:
    known = report.params().fields
    return {key: value.strip()[:100] for key, value in request.args.items() if key in known and value.strip()}


def _cell(value):
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


@bp.get("/assets/reports")
@page(*READERS)
def assets_reports():
    return render_template(
        "assets/reports.html",
        reports=registry.all_reports(),
        breadcrumbs=_crumbs((_("Reports"), None)),
        **_labels(),
    )


@bp.get("/assets/reports/<string:name>")
@page(*READERS)
def assets_report(name: str):
    """A report as a page: its parameters, its chart, its first rows, and the downloads."""
    report = registry.get_report(name[:100])
    raw = _raw_params(report)
    status, result = 200, None
    try:
        result = registry.run(report.name, raw)
    except Invalid as error:
        keep_errors(error)
        status = error.status
    return (
        render_template(
            "assets/report.html",
            report=report,
            params=_report_params(report),
            raw=raw,
            result=result,
            shown=SHOWN,
            cell=_cell,
            breadcrumbs=_crumbs((_("Reports"), url_for("web.assets_reports")), (report.title, None)),
            **_labels(),
        ),
        status,
    )


# What a chart may do when opened on its own: draw, with its inline styles; nothing else.
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


@bp.get("/assets/reports/<string:name>/chart.svg")
@page(*READERS)
def assets_report_chart(name: str):
    """The report's SVG chart for the page's <img>, from the same code as /reports/{name}.svg,
    opened with the session (never a token in the browser)."""
    report = registry.get_report(name[:100])
    if "svg" not in report.formats:
        raise NotFound(_("This report has no chart."))
    result = registry.run_for_chart(report.name, _raw_params(report))
    response = Response(render.render_chart(result, "svg"), mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


DOWNLOADS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.get("/assets/reports/<string:name>/export.<string:fmt>")
@page(*READERS)
def assets_report_download(name: str, fmt: str):
    """Every row of the report as CSV, or XLSX where the report offers it (as ?format= of the API)."""
    report = registry.get_report(name[:100])
    if fmt not in DOWNLOADS or fmt not in report.formats:
        raise NotFound(_("This report does not come as %(format)s.", format=fmt[:10]))
    result = registry.run(report.name, _raw_params(report))
    body = render.iter_csv(result) if fmt == "csv" else render.to_xlsx(result)
    filename = f"{result.report.name}-{result.as_of.isoformat()}.{fmt}"
    return Response(
        body,
        mimetype=DOWNLOADS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"},
    )


REGISTER_FILTERS = {"": _l("Every CI"), "active": _l("Active"), "retired": _l("Retired"), "disposed": _l("Disposed")}


@bp.get("/assets/register")
@page(*READERS)
def assets_register():
    """The asset register (the ``asset-register`` report): every CI with its cost and book value, the
    active count (not retired or disposed), a page of rows and the downloads."""
    report = registry.get_report("asset-register")
    raw = _raw_params(report)
    shown = (request.args.get("show") or "").strip()
    status = 200
    if shown not in REGISTER_FILTERS:
        flash(_("Not a register filter."), "error")
        shown, status = "", 422
    try:
        rows = registry.run(report.name, raw).rows
    except Invalid as error:
        keep_errors(error)
        raw, status = {}, error.status
        rows = registry.run(report.name, {}).rows
    active = [r for r in rows if r["status"] in lifecycle.ACTIVE_STATUSES]
    counts = {
        "": len(rows),
        "active": len(active),
        "retired": sum(1 for r in rows if r["status"] == "retired"),
        "disposed": sum(1 for r in rows if r["status"] == "disposed"),
    }
    if shown == "active":
        rows = active
    elif shown:
        rows = [r for r in rows if r["status"] == shown]
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    number = min(_page_number(), pages)
    return (
        render_template(
            "assets/register.html",
            report=report,
            raw=raw,
            rows=rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
            tally=counts,
            shown=shown,
            filters=REGISTER_FILTERS,
            page_number=number,
            pages=pages,
            pager_args={**raw, "show": shown} if shown else raw,
            breadcrumbs=_crumbs((_("Asset register"), None)),
            **_labels(),
        ),
        status,
    )


# ---------------------------------------------------------------------------------------------
# The CI page's costs section (web/templates/cis/_costs.html)


@bp.app_template_global()
def asset_costs(ci: ConfigurationItem) -> dict | None:
    """What the CI page's costs section shows (None for a role that may not read asset records):
    purchase, book value, depreciation, maintenance, contract share and TCO (GET /cis/{id}/costs),
    the contracts covering the CI, its licences (a software product) or the licensed products
    installed on it (a device), and where it is in retirement."""
    user = g.get("user")
    if user is None or user.role not in READERS or ci.id is None or not 0 < ci.id <= MAX_ID:
        return None
    contracts = list(db.session.scalars(services.search_contracts({"ci_id": ci.id}).limit(SHOWN)))
    if ci.ci_class == "software":
        licences = list(db.session.scalars(services.search_licences({"software_id": ci.id}).limit(SHOWN)))
        installed = []
    else:
        licences = []
        installs = open_installs().subquery()
        stmt = (
            select(ConfigurationItem.id, ConfigurationItem.name)
            .join(installs, installs.c.software_id == ConfigurationItem.id)
            .where(installs.c.device_id == ci.id)
            .order_by(ConfigurationItem.name)
            .limit(SHOWN)
        )
        installed = list(db.session.execute(stmt).tuples())
    pending = db.session.scalar(services.search_retirement_requests({"state": "requested", "ci_id": ci.id}).limit(1))
    return {
        "figures": services.costs(ci),
        "contracts": contracts,
        "licences": licences,
        "installed": installed,
        "pending": pending,
        "wipes": services.wipes_of(ci),
        "disposal": services.disposal_of(ci),
        "can_request": user.role in FIELD_WORKERS and ci.status not in services.RETIRED_STATUSES and pending is None,
        "contract_name": _contract_name,
        "type_labels": CONTRACT_TYPE_LABELS,
        "model_labels": MODEL_LABELS,
        "wipe_labels": WIPE_LABELS,
        "disposal_labels": DISPOSAL_LABELS,
    }
