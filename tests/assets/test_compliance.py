"""Licence compliance against hand-built estates; retiring a CI releases its seats."""

from datetime import date
from decimal import Decimal

from tests.assets.conftest import parse_csv


def _by_product(client, headers, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/api/v1/reports/licence-compliance?page_size=1000&{query}", headers=headers)
    assert response.status_code == 200, response.json
    return {(row["name"], row["model"]): row for row in response.json}


def test_hand_built_estate(client, manager, assets, make):
    alice, bob = make.user("requester"), make.user("requester")
    laptops = [assets.device("laptop") for _ in range(5)]
    # Office: 3 per-device seats at 300 in total, installed on 5 laptops, one of them retired -> 4 consumed,
    # short by 1, true-up 100.
    office = assets.software("Office", publisher="Microsoft")
    assets.licence(office, "per_device", 3, cost=Decimal("300"))
    for laptop in laptops:
        assets.install(office, laptop)
    from cmdb.services import update_ci

    update_ci(laptops[4], {"status": "retired"})
    # Figma: 10 named users at 1,000; on 3 laptops held by alice, alice and bob -> 2 users; over by 8.
    figma = assets.software("Figma")
    assets.licence(figma, "per_user", 10, cost=Decimal("1000"))
    update_ci(laptops[0], {"assigned_to_id": alice.id})
    update_ci(laptops[1], {"assigned_to_id": alice.id})
    update_ci(laptops[2], {"assigned_to_id": bob.id})
    for laptop in laptops[:3]:
        assets.install(figma, laptop)
    # Oracle per core: 2 servers of 16 and 8 cores and one without the attribute (1) -> 25 against 24.
    oracle = assets.software("Oracle DB")
    assets.licence(oracle, "per_core", 16)
    assets.licence(oracle, "per_core", 8, end_date=date(2099, 1, 1))
    assets.licence(oracle, "per_core", 100, end_date=date(2001, 1, 1))  # expired: does not count
    for cores in (16, 8, None):
        server = assets.device("server", attributes={"cpu_cores": cores} if cores else {})
        assets.install(oracle, server)
    # 7-Zip: a site licence -> compliant whatever is installed.
    zip7 = assets.software("7-Zip")
    assets.licence(zip7, "site", None)
    for laptop in laptops:
        assets.install(zip7, laptop)
    # Slack: installed, never licensed.
    slack = assets.software("Slack")
    assets.install(slack, laptops[0])
    make.db.session.commit()

    rows = _by_product(client, manager)
    office_row = rows[("Office", "per_device")]
    assert (office_row["entitled"], office_row["consumed"], office_row["status"]) == (3, 4, "under_licensed")
    assert (office_row["shortfall"], office_row["surplus"]) == (1, 0)
    assert office_row["unit_cost"] == "100.00" and office_row["true_up_cost"] == "100.00"
    assert office_row["publisher"] == "Microsoft"
    figma_row = rows[("Figma", "per_user")]
    assert (figma_row["consumed"], figma_row["status"], figma_row["surplus"]) == (2, "over_licensed", 8)
    assert figma_row["wasted_cost"] == "800.00"
    oracle_row = rows[("Oracle DB", "per_core")]
    assert (oracle_row["entitled"], oracle_row["consumed"], oracle_row["shortfall"]) == (24, 25, 1)
    site = rows[("7-Zip", "site")]
    assert site["status"] == "compliant" and site["entitled"] is None and site["consumed"] == 4
    slack_row = rows[("Slack", None)]
    assert (slack_row["entitled"], slack_row["consumed"], slack_row["status"]) == (0, 1, "under_licensed")
    # The API.md fields are all there.
    assert {"software_id", "name", "entitled", "consumed", "status", "shortfall", "surplus"} <= set(office_row)
    # Under-licensed first.
    ordered = [r["status"] for r in _by_product(client, manager).values()]
    assert ordered == sorted(ordered, key=["under_licensed", "over_licensed", "compliant"].index)
    # Filter by status.
    assert set(_by_product(client, manager, status="over_licensed")) == {("Figma", "per_user")}
    # CSV parses back to the same figures.
    csv_rows = parse_csv(client.get("/api/v1/reports/licence-compliance?format=csv", headers=manager).text)
    office_csv = next(r for r in csv_rows if r["name"] == "Office")
    assert (office_csv["entitled"], office_csv["consumed"], office_csv["true_up_cost"]) == ("3", "4", "100.00")
    assert next(r for r in csv_rows if r["name"] == "7-Zip")["entitled"] == ""

    # Retiring through the workflow releases a seat: Office becomes compliant.
    req = client.post(f"/api/v1/cis/{laptops[3].id}/retirement", headers=manager, json={"reason": "lost"}).json
    client.post(f"/api/v1/retirement-requests/{req['id']}/decision", headers=manager, json={"decision": "approve"})
    office_row = _by_product(client, manager)[("Office", "per_device")]
    assert (office_row["consumed"], office_row["status"]) == (3, "compliant")

    # Reclaim candidates: the installations on the two retired laptops.
    reclaim = client.get("/api/v1/reports/licence-reclaim?page_size=1000", headers=manager).json
    retired = {laptops[3].id, laptops[4].id}
    assert {r["device_id"] for r in reclaim} == retired
    assert {r["software"] for r in reclaim if r["device_id"] == laptops[3].id} == {"Office", "7-Zip"}
    assert all(r["reason"] == "retired" for r in reclaim)


def test_as_of_uses_licence_terms_and_past_installs(client, manager, assets):
    product = assets.software("Visio")
    assets.licence(product, "per_device", 2, start_date=date(2020, 1, 1), end_date=date(2020, 12, 31))
    device = assets.device("desktop")
    assets.install(product, device)
    # The licence ran out at the end of 2020: today there is no entitlement in force.
    today_rows = _by_product(client, manager)
    assert ("Visio", None) in today_rows and today_rows[("Visio", None)]["status"] == "under_licensed"
    # In 2020 the licence was in force but the installation (made today) did not exist yet.
    then = _by_product(client, manager, as_of="2020-06-01")[("Visio", "per_device")]
    assert (then["entitled"], then["consumed"], then["status"]) == (2, 0, "over_licensed")


def test_unused_installs_are_reclaim_candidates(client, manager, assets):
    product = assets.software("Acrobat")
    stale = assets.device("laptop", attributes={"last_seen": "2020-01-01"})
    fresh = assets.device("laptop", attributes={"last_seen": date.today().isoformat()})
    assets.install(product, stale)
    assets.install(product, fresh)
    rows = client.get("/api/v1/reports/licence-reclaim?unused_days=30", headers=manager).json
    assert [(r["device_id"], r["reason"]) for r in rows] == [(stale.id, "not_seen")]
    assert client.get("/api/v1/reports/licence-reclaim?unused_days=0", headers=manager).status_code == 422


def test_as_of_uses_the_device_status_of_that_day(client, manager, assets):
    import time_machine

    from cmdb.services import update_ci

    with time_machine.travel("2021-03-01 09:00:00Z", tick=False):
        product = assets.software("Photoshop")
        assets.licence(product, "per_device", 1, start_date=date(2021, 1, 1))
        kept, retired = assets.device("laptop"), assets.device("laptop")
        assets.install(product, kept)
        assets.install(product, retired)
    with time_machine.travel("2022-03-01 09:00:00Z", tick=False):
        update_ci(retired, {"status": "retired"})
        assets.db.session.commit()
    # In 2021 both laptops were deployed and consumed a seat; since 2022 the retired one does not.
    then = _by_product(client, manager, as_of="2021-06-01")[("Photoshop", "per_device")]
    assert (then["consumed"], then["status"], then["shortfall"]) == (2, "under_licensed", 1)
    now = _by_product(client, manager)[("Photoshop", "per_device")]
    assert (now["consumed"], now["status"]) == (1, "compliant")


def test_one_product_by_software_id(client, manager, assets):
    laptops = [assets.device("laptop") for _ in range(3)]
    office, slack = assets.software("Office"), assets.software("Slack")
    assets.licence(office, "per_device", 2)
    for laptop in laptops:
        assets.install(office, laptop)
        assets.install(slack, laptop)
    rows = _by_product(client, manager, software_id=office.id)
    assert list(rows) == [("Office", "per_device")]
    assert (rows[("Office", "per_device")]["consumed"], rows[("Office", "per_device")]["shortfall"]) == (3, 1)
    assert list(_by_product(client, manager, software_id=slack.id)) == [("Slack", None)]
    assert _by_product(client, manager, software_id=999_999) == {}
    bad = client.get("/api/v1/reports/licence-compliance?software_id=abc", headers=manager)
    assert bad.status_code == 422 and "software_id" in bad.json["errors"]
    chart = client.get(f"/api/v1/reports/licence-compliance.svg?software_id={office.id}", headers=manager)
    assert chart.status_code == 200 and b"Office" in chart.data and b"Slack" not in chart.data
