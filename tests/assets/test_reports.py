"""Every report as JSON, CSV and SVG/PNG charts on a small estate; specific figures of each."""

import io
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine

from integrations.reports.registry import all_reports
from tests.assets.conftest import parse_csv, png_size

REPORT_NAMES = [r.name for r in all_reports()]


@pytest.fixture
def estate(client, make, assets):
    """A little of everything, so each report has rows."""
    team, other_team = make.team("Ops"), make.team("Sales")
    alice = make.user("requester", email="alice@example.com")
    room = make.location("HQ")
    with time_machine.travel("2021-02-01 08:00:00Z", tick=False):
        old = assets.device(
            "laptop", name="old-laptop", purchase_cost=Decimal("1500"), purchase_date=date(2019, 1, 1),
            owner_team_id=team.id, assigned_to_id=alice.id, location_id=room.id,
            warranty_expires=date(2020, 1, 1), attributes={"encrypted": False},
        )  # fmt: skip
        stock = assets.device("desktop", name="spare-desktop", status="in_stock", purchase_cost=Decimal("700"))
    new = assets.device(
        "laptop", name="new-laptop", owner_team_id=other_team.id, assigned_to_id=alice.id,
        purchase_cost=Decimal("2000"), purchase_date=date.today() - timedelta(days=30),
        warranty_expires=date.today() + timedelta(days=20), attributes={"encrypted": True},
    )  # fmt: skip
    orphan = assets.device("laptop", name="orphan-laptop", attributes={"last_seen": date.today().isoformat()})
    eol = assets.software("WinXP", version="SP3", eol_date="2014-04-08")
    for device in (old, new):
        assets.install(eol, device)
    assets.licence(eol, "per_device", 1, cost=Decimal("50"))
    assets.contract(cis=[old, new], name="Care", cost=Decimal("400"), end_date=date.today() + timedelta(days=45))
    agent = make.headers("agent")
    for _ in range(3):
        client.post("/api/v1/tickets", headers=agent, json={"kind": "incident", "title": "slow", "impact": 3,
                                                             "urgency": 3, "ci_ids": [old.id]})  # fmt: skip
    repair = {"performed_at": "2021-05-01", "kind": "repair", "cost": "100.00"}
    client.post(f"/api/v1/cis/{old.id}/maintenance", headers=agent, json=repair)
    return {"old": old, "new": new, "stock": stock, "orphan": orphan, "eol": eol, "team": team, "alice": alice}


def test_list_of_reports(client, manager):
    listed = client.get("/api/v1/reports", headers=manager).json
    names = {r["name"] for r in listed}
    assert {
        "licence-compliance", "licence-reclaim", "audits-overdue", "audit-mismatches", "unused-assets",
        "ageing-assets", "duplicate-assignments", "eol-software", "unencrypted-laptops", "unowned-devices",
        "expiring", "asset-counts", "ticket-volume", "costs", "cost-by-team", "asset-register",
    } <= names  # fmt: skip
    compliance = next(r for r in listed if r["name"] == "licence-compliance")
    assert {"svg", "png", "csv", "json"} <= set(compliance["formats"]) and "as_of" in compliance["parameters"]


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_every_report_in_every_format(client, manager, estate, name):
    as_json = client.get(f"/api/v1/reports/{name}?page_size=1000", headers=manager)
    assert as_json.status_code == 200, as_json.json
    assert isinstance(as_json.json, list) and "X-Pagination" in as_json.headers
    as_csv = client.get(f"/api/v1/reports/{name}?format=csv", headers=manager)
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    rows = parse_csv(as_csv.text)
    assert len(rows) == len(as_json.json)
    if rows:
        assert set(rows[0]) == set(as_json.json[0])
    png = client.get(f"/api/v1/reports/{name}.png", headers=manager)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png_size(png.data) == (1000, 600)
    assert 5_000 < len(png.data) < 500_000
    svg = client.get(f"/api/v1/reports/{name}.svg", headers=manager)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    root = ET.fromstring(svg.data)
    assert root.tag.endswith("svg") and root.get("width") == "720pt" and root.get("height") == "432pt"
    assert 2_000 < len(svg.data) < 2_000_000
    title = next(r for r in all_reports() if r.name == name).title
    assert title.split()[0].encode() in svg.data  # text stays text (svg.fonttype none): the title is readable
    # Charts are deterministic.
    assert client.get(f"/api/v1/reports/{name}.svg", headers=manager).data == svg.data


def test_empty_charts_still_render(client, manager):
    png = client.get("/api/v1/reports/duplicate-assignments.png", headers=manager)
    assert png.status_code == 200 and png_size(png.data) == (1000, 600)
    assert b"Nothing to report" in client.get("/api/v1/reports/duplicate-assignments.svg", headers=manager).data


def test_bad_report_requests(client, manager, make):
    assert client.get("/api/v1/reports/nope", headers=manager).status_code == 404
    assert client.get("/api/v1/reports/nope.png", headers=manager).status_code == 404
    bad = client.get("/api/v1/reports/expiring?days=45", headers=manager)
    assert bad.status_code == 422 and "days" in bad.json["errors"]
    assert client.get("/api/v1/reports/costs?by=planet", headers=manager).status_code == 422
    assert client.get("/api/v1/reports/costs?colour=red", headers=manager).status_code == 422
    assert client.get("/api/v1/reports/costs?format=pdf", headers=manager).status_code == 422
    assert client.get("/api/v1/reports/costs?format=xlsx", headers=manager).status_code == 422
    assert client.get("/api/v1/reports/licence-compliance?as_of=soon", headers=manager).status_code == 422
    assert client.get("/api/v1/reports", headers=make.headers("requester")).status_code == 403
    assert client.get("/api/v1/reports/costs.png", headers=make.headers("requester")).status_code == 403
    assert client.get("/api/v1/reports/costs.png").status_code == 401


def test_report_figures(client, manager, estate):
    def rows(name, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return client.get(f"/api/v1/reports/{name}?page_size=1000&{query}", headers=manager).json

    old, new = estate["old"].id, estate["new"].id
    assert [(r["email"], r["ci_class"], r["count"], r["ci_ids"]) for r in rows("duplicate-assignments")] == [
        ("alice@example.com", "laptop", 2, [old, new])
    ]
    unencrypted = {r["ci_id"]: r["encrypted"] for r in rows("unencrypted-laptops")}
    assert unencrypted == {old: False, estate["orphan"].id: None}
    assert [(r["name"], r["installations"]) for r in rows("eol-software")] == [("WinXP", 2)]
    ageing = {(r["ci_id"], r["reason"]) for r in rows("ageing-assets")}
    assert ageing == {(old, "past_useful_life"), (old, "warranty_expired")}
    unused = {(r["ci_id"], r["reason"]) for r in rows("unused-assets", in_stock_days=365)}
    assert (estate["stock"].id, "in_stock") in unused and (estate["orphan"].id, "no_assignee") in unused
    assert estate["stock"].id not in {r["ci_id"] for r in rows("unused-assets", in_stock_days=3650)}
    assert [r["ci_id"] for r in rows("unowned-devices")] == [estate["orphan"].id]
    expiring = {(r["kind"], r["name"]) for r in rows("expiring", days=30)}
    assert expiring == {("warranty", "new-laptop")}
    assert ("contract", "Care") in {(r["kind"], r["name"]) for r in rows("expiring", days=60)}
    volume = rows("ticket-volume")
    assert (volume[0]["ci_id"], volume[0]["tickets"], volume[0]["open_tickets"]) == (old, 3, 3)
    counts = {r["label"]: r["count"] for r in rows("asset-counts", by="category")}
    assert counts == {"hardware": 4, "software": 1}
    assert {r["label"]: r["count"] for r in rows("asset-counts", by="status")}["in_stock"] == 1
    # Cost by team by hand: Ops has the old laptop (1500 + repair 100 + half the 400 contract = 1800).
    by_team = {r["label"]: r for r in rows("cost-by-team")}
    assert by_team["Ops"]["purchase_cost"] == "1500.00" and by_team["Ops"]["maintenance_cost"] == "100.00"
    assert by_team["Ops"]["contract_cost"] == "200.00" and by_team["Ops"]["total"] == "1800.00"
    assert by_team["Sales"]["total"] == "2200.00"
    by_class = {r["label"]: r for r in rows("costs", by="class")}
    assert by_class["laptop"]["total"] == "4000.00" and by_class["desktop"]["purchase_cost"] == "700.00"
    # Before the new laptop was bought, Sales had spent nothing.
    past = {r["label"]: r for r in rows("cost-by-team", as_of="2021-06-01")}
    assert past["Sales"]["purchase_cost"] == "0.00"


def test_asset_register_as_of_and_xlsx(client, manager, make, assets):
    from openpyxl import load_workbook

    team = make.team("Finance")
    with time_machine.travel("2022-03-01 10:00:00Z", tick=False):
        laptop = assets.device("laptop", name="fin-01", status="in_stock", purchase_cost=Decimal("1200"),
                               purchase_date=date(2022, 3, 1))  # fmt: skip
    with time_machine.travel("2023-03-01 10:00:00Z", tick=False):
        client.patch(f"/api/v1/cis/{laptop.id}", headers=manager, json={"status": "deployed", "owner_team_id": team.id})
    with time_machine.travel("2024-01-01 10:00:00Z", tick=False):
        assets.device("laptop", name="later-01")

    def register(as_of):
        data = client.get(f"/api/v1/reports/asset-register?as_of={as_of}&page_size=1000", headers=manager).json
        return {r["name"]: r for r in data}

    then = register("2022-06-30")
    assert set(then) == {"fin-01"}
    assert then["fin-01"]["status"] == "in_stock" and then["fin-01"]["owner_team"] is None
    # 3 years straight line: 1200 - 3 * 33.33.. = 1100.00 after 3 months.
    assert then["fin-01"]["book_value"] == "1100.00"
    later = register("2023-12-31")
    assert later["fin-01"]["status"] == "deployed" and later["fin-01"]["owner_team"] == "Finance"
    assert "later-01" not in later
    xlsx = client.get("/api/v1/reports/asset-register?as_of=2023-12-31&format=xlsx", headers=manager)
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    values = list(sheet.values)
    assert "as of 2023-12-31" in values[0][0]
    header = values[1]
    row = dict(zip(header, values[2], strict=True))
    # 21 whole months of 36 by 2023-12-31: 1200 - 21 * 1200 / 36 = 500.00
    assert row["Name"] == "fin-01" and row["Status"] == "deployed" and Decimal(str(row["Book value"])) == Decimal("500")


def test_csv_guards_against_formula_injection(client, manager, make, assets):
    assets.device("laptop", name='=HYPERLINK("http://evil")', status="in_stock", purchase_cost=Decimal("1"))
    text = client.get("/api/v1/reports/asset-register?format=csv", headers=manager).text
    assert "'=HYPERLINK" in text


def test_cli_report(app, estate, tmp_path):
    runner = app.test_cli_runner()
    target = tmp_path / "compliance.png"
    result = runner.invoke(args=["report", "licence-compliance", "--format", "png", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert png_size(target.read_bytes()) == (1000, 600)
    csv_out = runner.invoke(args=["report", "cost-by-team", "--format", "csv", "-p", "as_of=2030-01-01"])
    assert csv_out.exit_code == 0
    assert {r["label"] for r in parse_csv(csv_out.stdout)} >= {"Ops", "Sales"}
    bad = runner.invoke(args=["report", "expiring", "-p", "days=7"])
    assert bad.exit_code == 2 and "days" in bad.stderr
    listing = runner.invoke(args=["report", "--list"])
    assert "licence-compliance" in listing.output
