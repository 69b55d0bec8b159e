"""The asset manager's views through Flask's test client as a signed-in browser: what expires in
30/60/90 days, licence compliance (the figures of the report service) with its drill-down to the
devices, vendors, contracts and licences, every report as a page with its chart and downloads, the
asset register's active count, the retirement queue's forms (each refusal changing nothing), the
CI page's costs section, and who may open or write what."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from cairn.db import db as _db
from cairn.db import utcnow
from cmdb.assets.models import DisposalRecord, RetirementRequest, WipeRecord
from cmdb.models import ConfigurationItem
from tests.web.pages import post, sign_in


def _text(response) -> str:
    return response.get_data(as_text=True)


def _row(html: str, name: str) -> str:
    """The table row of ``html`` that names ``name``."""
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        if f">{name}<" in row:
            return row
    raise AssertionError(f"no row for {name}")


@pytest.fixture
def manager(make):
    return make.user("asset_manager", name="Asa Manager")


@pytest.fixture
def as_manager(client, manager):
    sign_in(client, manager)
    return client


@pytest.fixture
def estate(make, db):
    """A product installed on three laptops with two per-device licences (one short, 100.00 to true
    up), a contract ending in 20 days, another product's licence ending in 45 days and a warranty
    ending in 75."""
    from cmdb.assets import services
    from relations.services import create_relationship

    today = utcnow().date()
    product = make.ci("software", "Visio 2024", status="deployed", attributes={"publisher": "Microsoft"})
    other = make.ci("software", "Slack 4", status="deployed")
    laptops = [
        make.ci("laptop", f"LT-{n}", status="deployed", asset_tag=f"LAP-{n}", currency="EUR", purchase_cost="1200.00")
        for n in (1, 2, 3)
    ]
    laptops[2].warranty_expires = today + timedelta(days=75)
    for laptop in laptops:
        create_relationship({"source_id": product.id, "type": "installed_on", "target_id": laptop.id})
    vendor = services.create_vendor({"name": "Contoso Ltd", "contact_name": "Carla"})
    contract = services.create_contract(
        {"name": "Laptop support", "vendor_id": vendor.id, "type": "support", "start_date": today - timedelta(days=300),
         "end_date": today + timedelta(days=20), "notice_days": 10, "auto_renew": True, "cost": Decimal("300.00"),
         "ci_ids": [laptops[0].id]}
    )  # fmt: skip
    licence = services.create_licence(
        {"software_id": product.id, "model": "per_device", "quantity": 2, "start_date": today - timedelta(days=10),
         "cost": Decimal("200.00"), "currency": "EUR", "reference": "VIS-2", "contract_id": contract.id}
    )  # fmt: skip
    ending = services.create_licence(
        {"software_id": other.id, "model": "per_user", "quantity": 50, "start_date": today - timedelta(days=10),
         "end_date": today + timedelta(days=45), "reference": "SLK-50"}
    )  # fmt: skip
    db.session.commit()
    return {
        "product": product,
        "other": other,
        "laptops": laptops,
        "vendor": vendor,
        "contract": contract,
        "licence": licence,
        "ending": ending,
    }


# ---------------------------------------------------------------------------------------------
# Home, expiry, compliance


def test_the_home_counts_what_expires_compliance_problems_and_the_queue(as_manager, estate):
    response = as_manager.get("/assets")
    html = _text(response)
    assert response.status_code == 200
    counts = {days: int(n) for n, days in re.findall(r'<span class="figure[^"]*">(\d+)</span> (\d+) days', html)}
    assert counts == {"30": 1, "60": 2, "90": 3}
    assert "Visio 2024" in html and "under-licensed" in html
    assert "Cost to true up:" in html and "100.00" in html


def test_the_expiry_windows_list_what_ends_within_them(as_manager, estate):
    def listed(days):
        response = as_manager.get(f"/assets/expiring?days={days}")
        assert response.status_code == 200
        return _text(response)

    in_30, in_60, in_90 = listed(30), listed(60), listed(90)
    assert "Laptop support" in in_30 and "Slack 4" not in in_30 and "LT-3" not in in_30
    assert "Slack 4 (per_user)" in in_60 and "LT-3" not in in_60
    assert all(name in in_90 for name in ("Laptop support", "Slack 4", "LT-3"))
    assert f'href="/assets/contracts/{estate["contract"].id}"' in in_30
    for bad in ("45", "abc", "9" * 40, "-30"):
        response = as_manager.get(f"/assets/expiring?days={bad}")
        assert response.status_code == 422, bad
        assert "Choose 30, 60 or 90 days." in _text(response)


def test_compliance_shows_the_report_services_figures(as_manager, estate):
    from integrations.reports.licences import compliance

    expected = next(r for r in compliance({}) if r["software_id"] == estate["product"].id)
    assert (expected["entitled"], expected["consumed"], expected["shortfall"]) == (2, 3, 1)
    html = _text(as_manager.get("/assets/compliance"))
    row = _row(html, "Visio 2024")
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
    assert cells[2] == "Under-licensed"
    assert cells[3:6] == [str(expected["entitled"]), str(expected["consumed"]), str(expected["shortfall"])]
    assert cells[6] == f"{expected['true_up_cost']} EUR" == "100.00 EUR"
    # only the under-licensed ones
    html = _text(as_manager.get("/assets/compliance?status=under_licensed"))
    assert "Visio 2024" in html and "Slack 4" not in html  # Slack is over-licensed (50 seats, no installs)
    assert as_manager.get("/assets/compliance?status=<script>").status_code == 422


def test_the_drill_down_lists_the_devices_and_marks_what_could_be_reclaimed(as_manager, estate, db):
    from cmdb.services import update_ci

    retired = estate["laptops"][1]
    update_ci(retired, {"status": "retired"})
    db.session.commit()
    response = as_manager.get(f"/assets/compliance/{estate['product'].id}")
    html = _text(response)
    assert response.status_code == 200
    assert "Installed on 3 devices" in html
    for laptop in estate["laptops"]:
        assert f'<a href="/cis/{laptop.id}">{laptop.name}</a>' in html
    assert "could be reclaimed: device retired" in _row(html, "LT-2")
    assert "could be reclaimed" not in _row(html, "LT-1")
    # a retire link for the devices still in the estate
    assert f"/assets/retirement/new?ci_id={estate['laptops'][0].id}" in html
    assert f"/assets/retirement/new?ci_id={retired.id}" not in html
    # now 2 consume, 2 entitled: compliant
    assert "Compliant" in _row(html.split("Installed on")[0], "Visio 2024")
    # not a product, unknown, absurd
    assert as_manager.get(f"/assets/compliance/{estate['laptops'][0].id}").status_code == 404
    assert as_manager.get("/assets/compliance/999999").status_code == 404
    assert as_manager.get("/assets/compliance/" + "9" * 30).status_code == 404


# ---------------------------------------------------------------------------------------------
# Vendors, contracts, licences


def test_vendor_contract_and_licence_pages_with_their_cis_and_dates(as_manager, estate):
    contract, vendor, licence = estate["contract"], estate["vendor"], estate["licence"]
    html = _text(as_manager.get("/assets/vendors"))
    assert f'<a href="/assets/vendors/{vendor.id}">Contoso Ltd</a>' in html
    assert "Contoso" not in _text(as_manager.get("/assets/vendors?q=nothing-like-it")).split("<table")[1]

    html = _text(as_manager.get(f"/assets/vendors/{vendor.id}"))
    assert "Laptop support" in html and "LT-1" in html and "Carla" in html

    html = _text(as_manager.get("/assets/contracts"))
    row = _row(html, "Laptop support")
    end, notice = contract.end_date, contract.end_date - timedelta(days=10)
    assert f'datetime="{end.isoformat()}"' in row and f'datetime="{notice.isoformat()}"' in row
    assert "automatically" in row

    html = _text(as_manager.get(f"/assets/contracts/{contract.id}"))
    assert "Covers 1 CI" in html and f'<a href="/cis/{estate["laptops"][0].id}">LT-1</a>' in html
    assert "VIS-2" in html  # the licence bought under it
    assert f'<dd><time datetime="{notice.isoformat()}">' in html

    html = _text(as_manager.get("/assets/licences"))
    assert "VIS-2" in html and "SLK-50" in html
    html = _text(as_manager.get("/assets/licences?model=per_user"))
    assert "SLK-50" in html and "VIS-2" not in html
    html = _text(as_manager.get(f"/assets/licences/{licence.id}"))
    assert "Licence for Visio 2024" in html and "Laptop support" in html and "Under-licensed" in html


@pytest.mark.parametrize(
    "path",
    [
        "/assets/contracts?vendor_id=abc&type=bogus&ends_before=not-a-day",
        "/assets/contracts?vendor_id=" + "9" * 40,
        "/assets/licences?software_id=-1&model=<b>&active_on=2026-13-45",
    ],
)
def test_bad_filters_are_shown_never_a_500(as_manager, estate, path):
    response = as_manager.get(path)
    assert response.status_code == 422
    assert "<b>" not in _text(response).split("<main", 1)[1]


def test_huge_input_is_bounded(as_manager, estate):
    response = as_manager.get("/assets/vendors?q=" + "x" * 5000)
    assert response.status_code == 200 and "No vendor." in _text(response)


def test_unknown_ids_are_404_pages(as_manager):
    for path in ("/assets/vendors/999999", "/assets/contracts/0", "/assets/licences/" + "9" * 25,
                 "/assets/retirement/new?ci_id=abc", "/assets/retirement/new", "/assets/reports/no-such-report",
                 "/assets/reports/" + "x" * 3000, "/assets/reports/expiring/export.pdf"):  # fmt: skip
        response = as_manager.get(path, headers={"Accept": "text/html"})  # as a browser asks
        assert response.status_code == 404, path
        assert "text/html" in response.content_type, path


# ---------------------------------------------------------------------------------------------
# Reports and the register


def test_every_report_is_a_page_with_its_chart_and_downloads(as_manager, estate):
    from integrations.reports import registry

    for report in registry.all_reports():
        response = as_manager.get(f"/assets/reports/{report.name}")
        html = _text(response)
        assert response.status_code == 200, report.name
        assert f"<h1>{report.title}</h1>" in html.replace("&#39;", "'")
        assert f'src="/assets/reports/{report.name}/chart.svg"' in html
        assert (f"/assets/reports/{report.name}/export.xlsx" in html) == ("xlsx" in report.formats)

    chart = as_manager.get("/assets/reports/licence-compliance/chart.svg")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert chart.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in chart.headers["Content-Security-Policy"]
    assert "script" not in chart.headers["Content-Security-Policy"]
    assert b"<svg" in chart.data and b"Visio 2024" in chart.data

    download = as_manager.get("/assets/reports/licence-compliance/export.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment;" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_text(download))))
    visio = next(r for r in rows if r["name"] == "Visio 2024")
    assert (visio["shortfall"], visio["true_up_cost"]) == ("1", "100.00")

    workbook = as_manager.get("/assets/reports/asset-register/export.xlsx")
    assert workbook.status_code == 200 and workbook.mimetype.endswith("spreadsheetml.sheet")
    with zipfile.ZipFile(io.BytesIO(workbook.data)) as archive:
        assert b"LT-1" in archive.read("xl/worksheets/sheet1.xml")
    # a report without an XLSX
    assert as_manager.get("/assets/reports/expiring/export.xlsx").status_code == 404


def test_report_parameters_filter_and_bad_ones_are_shown(as_manager, estate):
    html = _text(as_manager.get("/assets/reports/expiring?days=30"))
    assert "Laptop support" in html and "SLK-50" not in html and "Slack 4" not in html
    assert 'src="/assets/reports/expiring/chart.svg?days=30"' in html
    response = as_manager.get("/assets/reports/expiring?days=7&unknown=1")
    assert response.status_code == 422 and "field-error" in _text(response)
    response = as_manager.get("/assets/reports/licence-compliance?as_of=yesterday")
    assert response.status_code == 422
    assert as_manager.get("/assets/reports/expiring/chart.svg?days=7").status_code == 422
    csv_body = _text(as_manager.get("/assets/reports/expiring/export.csv?days=30"))
    assert "Laptop support" in csv_body and "Slack 4" not in csv_body


def test_charts_and_downloads_need_the_session_not_a_token(client, make, estate):
    for path in ("/assets/reports/expiring/chart.svg", "/assets/reports/expiring/export.csv", "/assets/register"):
        assert client.get(path).status_code == 302
        assert client.get(path, headers=make.headers("admin")).status_code == 302


def test_the_register_counts_the_active_cis(as_manager, estate):
    html = _text(as_manager.get("/assets/register"))
    active = int(re.search(r'id="active-count"><span class="figure">(\d+)</span>', html).group(1))
    in_estate = _db.session.scalar(
        select(func.count())
        .select_from(ConfigurationItem)
        .where(ConfigurationItem.status.not_in(("retired", "disposed")))
    )
    assert active == in_estate == 5
    html = _text(as_manager.get("/assets/register?show=retired"))
    assert "LT-1" not in html.split("<table", 1)[1]
    assert as_manager.get("/assets/register?show=nope").status_code == 422
    assert as_manager.get("/assets/register?as_of=never").status_code == 422
    assert as_manager.get("/assets/register?page=" + "9" * 30).status_code == 200


# ---------------------------------------------------------------------------------------------
# The retirement queue


def _requests(ci_id: int) -> list[RetirementRequest]:
    _db.session.expire_all()
    return list(_db.session.scalars(select(RetirementRequest).where(RetirementRequest.ci_id == ci_id)))


def _status(ci_id: int) -> str:
    _db.session.expire_all()
    return _db.session.get(ConfigurationItem, ci_id).status


def test_a_retirement_from_request_to_disposal(as_manager, estate):
    laptop = estate["laptops"][0]
    register = _text(as_manager.get("/assets/register"))
    active_before = int(re.search(r'id="active-count"><span class="figure">(\d+)</span>', register).group(1))

    form = _text(as_manager.get(f"/assets/retirement/new?ci_id={laptop.id}"))
    assert "Why retire it?" in form
    # refused: no reason, too long a reason; nothing asked
    for reason in ("", "   ", "x" * 2001):
        response = post(as_manager, f"/assets/cis/{laptop.id}/retirement", {"reason": reason})
        assert response.status_code == 422, reason
        assert _requests(laptop.id) == []
    response = post(as_manager, f"/assets/cis/{laptop.id}/retirement", {"reason": "Screen broken"})
    assert response.status_code == 302 and response.headers["Location"] == "/assets/retirement"
    [req] = _requests(laptop.id)
    # asked twice: 409, still one
    response = post(as_manager, f"/assets/cis/{laptop.id}/retirement", {"reason": "again"})
    assert response.status_code == 409 and len(_requests(laptop.id)) == 1

    queue = _text(as_manager.get("/assets/retirement"))
    assert "Screen broken" in queue and f"Approve retirement of {laptop.name}" in queue
    # refused: a bad decision, a stale form
    response = post(as_manager, f"/assets/retirement/{req.id}/decision", {"decision": "maybe"})
    assert response.status_code == 422
    response = post(as_manager, f"/assets/retirement/{req.id}/decision", {"decision": "approve", "version": "0"})
    assert response.status_code == 409 and "changed this request" in _text(response)
    assert _requests(laptop.id)[0].state == "requested" and _status(laptop.id) == "deployed"
    # disposing before the wipe, or wiping before the approval: 409, nothing changed
    assert (
        post(as_manager, f"/assets/cis/{laptop.id}/wipe", {"method": "overwrite", "performed_by": "Asa"}).status_code
        == 409
    )
    response = post(as_manager, f"/assets/retirement/{req.id}/decision", {"decision": "approve", "comment": "ok"})
    assert response.status_code == 302 and _status(laptop.id) == "retired"
    assert _requests(laptop.id)[0].state == "approved"
    assert post(as_manager, f"/assets/retirement/{req.id}/decision", {"decision": "reject"}).status_code == 409

    response = post(as_manager, f"/assets/cis/{laptop.id}/disposal", {"method": "recycle"})
    assert response.status_code == 409 and "wipe" in _text(response)
    assert _status(laptop.id) == "retired"
    queue = _text(as_manager.get("/assets/retirement"))
    assert f"Record the wipe of {laptop.name}" in queue

    # the wipe: bad method and a future time refused; then recorded
    def wipes() -> int:
        return _db.session.scalar(select(func.count()).select_from(WipeRecord).where(WipeRecord.ci_id == laptop.id))

    assert (
        post(as_manager, f"/assets/cis/{laptop.id}/wipe", {"method": "burn", "performed_by": "Asa"}).status_code == 422
    )
    future = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = post(
        as_manager,
        f"/assets/cis/{laptop.id}/wipe",
        {"method": "overwrite", "performed_by": "Asa", "performed_at": future},
    )
    assert response.status_code == 422 and wipes() == 0
    response = post(
        as_manager,
        f"/assets/cis/{laptop.id}/wipe",
        {"method": "overwrite", "performed_by": "Asa", "certificate": "W-1"},
    )
    assert response.status_code == 302 and wipes() == 1
    queue = _text(as_manager.get("/assets/retirement"))
    assert f"Dispose of {laptop.name}" in queue and f"Record the wipe of {laptop.name}" not in queue

    # the disposal: bad proceeds refused, then disposed
    for proceeds in ("abc", "-5", "1e9999", "9" * 40):
        response = post(as_manager, f"/assets/cis/{laptop.id}/disposal", {"method": "resell", "proceeds": proceeds})
        assert response.status_code == 422, proceeds
        assert _status(laptop.id) == "retired"
    response = post(
        as_manager,
        f"/assets/cis/{laptop.id}/disposal",
        {"method": "resell", "proceeds": "150.00", "recipient": "Refurb Co"},
    )
    assert response.status_code == 302 and _status(laptop.id) == "disposed"
    record = _db.session.scalar(select(DisposalRecord).where(DisposalRecord.ci_id == laptop.id))
    assert record.proceeds == Decimal("150.00") and record.recipient == "Refurb Co"

    register = _text(as_manager.get("/assets/register"))
    active_after = int(re.search(r'id="active-count"><span class="figure">(\d+)</span>', register).group(1))
    assert active_after == active_before - 1
    # its seat is free: Visio is compliant now
    assert "Compliant" in _row(_text(as_manager.get("/assets/compliance")), "Visio 2024")


def test_a_rejected_retirement_leaves_the_ci_in_the_estate(as_manager, estate):
    laptop = estate["laptops"][2]
    post(as_manager, f"/assets/cis/{laptop.id}/retirement", {"reason": "Old"})
    [req] = _requests(laptop.id)
    response = post(
        as_manager, f"/assets/retirement/{req.id}/decision", {"decision": "reject", "comment": "Still fine"}
    )
    assert response.status_code == 302
    assert _requests(laptop.id)[0].state == "rejected" and _status(laptop.id) == "deployed"
    assert post(as_manager, "/assets/retirement/999999/decision", {"decision": "approve"}).status_code == 404


def test_roles_read_and_write_as_the_api_allows(client, make, estate):
    laptop = estate["laptops"][0]
    # an auditor reads everything and writes nothing
    sign_in(client, make.user("auditor"))
    for path in ("/assets", "/assets/retirement", "/assets/compliance", "/assets/register", "/assets/reports/costs"):
        assert client.get(path).status_code == 200, path
    assert "Request retirement" not in _text(client.get(f"/cis/{laptop.id}"))
    assert client.get(f"/assets/retirement/new?ci_id={laptop.id}").status_code == 403
    assert post(client, f"/assets/cis/{laptop.id}/retirement", {"reason": "x"}).status_code == 403
    assert _requests(laptop.id) == []
    client.post(
        "/logout",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', _text(client.get("/account"))).group(1)},
    )

    # an agent asks and wipes (a field worker) but neither approves nor disposes
    sign_in(client, make.user("agent"))
    assert post(client, f"/assets/cis/{laptop.id}/retirement", {"reason": "Cracked"}).status_code == 302
    [req] = _requests(laptop.id)
    assert "Approve retirement" not in _text(client.get("/assets/retirement"))
    assert post(client, f"/assets/retirement/{req.id}/decision", {"decision": "approve"}).status_code == 403
    assert _requests(laptop.id)[0].state == "requested" and _status(laptop.id) == "deployed"
    assert post(client, f"/assets/cis/{laptop.id}/disposal", {"method": "recycle"}).status_code == 403


def test_a_requester_opens_no_asset_page(client, make, estate):
    sign_in(client, make.user("requester"))
    for path in ("/assets", "/assets/compliance", "/assets/reports/expiring/chart.svg", "/assets/register"):
        assert client.get(path).status_code == 403, path


def test_writes_need_the_csrf_token(as_manager, estate):
    laptop = estate["laptops"][0]
    response = as_manager.post(f"/assets/cis/{laptop.id}/retirement", data={"reason": "no token"})
    assert response.status_code == 400 and _requests(laptop.id) == []


# ---------------------------------------------------------------------------------------------
# The CI page's costs section


def test_the_ci_page_shows_costs_contracts_licences_and_retirement(signed_in, estate):
    from cmdb.assets.services import costs

    laptop = estate["laptops"][0]
    figures = costs(laptop)
    html = _text(signed_in.get(f"/cis/{laptop.id}"))
    section = html.split('id="costs"', 1)[1].split("</section>", 1)[0]
    assert "Total cost of ownership" in section
    assert f"{figures['tco']:,.2f} EUR" in section and "1,200.00 EUR" in section
    assert "Laptop support" in section and "Visio 2024" in section
    assert f"/assets/retirement/new?ci_id={laptop.id}" in section  # an agent may ask
    product = _text(signed_in.get(f"/cis/{estate['product'].id}")).split('id="costs"', 1)[1]
    assert "VIS-2" in product.split("</section>", 1)[0]
