"""Tickets over the dependency graph: a change's blast radius, collisions across the graph, risk with
its reasons, probable causes of an incident storm, open tickets on impact answers."""

from datetime import UTC, datetime, timedelta

import pytest

from tickets import risk

NIGHT = datetime(2031, 6, 3, 22, tzinfo=UTC)  # a Tuesday, 22:00 UTC: outside business hours
DAY = datetime(2031, 6, 4, 10, tzinfo=UTC)  # a Wednesday, 10:00 UTC


@pytest.fixture
def estate(make, db):
    """switch <- host <- app1..app5; payroll (business service) depends on app1 and app6; app6 runs on host2."""
    from relations.services import create_relationship

    def rel(source, type_, target):
        create_relationship({"source_id": source.id, "type": type_, "target_id": target.id})

    e = {"switch": make.ci("network_switch", name="sw-1", criticality="high"),
         "host": make.ci("server", name="host-h"), "host2": make.ci("server", name="host-2"),
         "payroll": make.ci("business_service", name="payroll", criticality="critical"),
         "lonely": make.ci("printer", name="printer", criticality="low")}  # fmt: skip
    for i in range(1, 7):
        e[f"app{i}"] = make.ci("application", name=f"app-{i}")
    rel(e["host"], "depends_on", e["switch"])
    for i in range(1, 6):
        rel(e[f"app{i}"], "runs_on", e["host"])
    rel(e["app6"], "runs_on", e["host2"])
    rel(e["payroll"], "depends_on", e["app1"])
    rel(e["payroll"], "depends_on", e["app6"])
    db.session.commit()
    return {k: v.id for k, v in e.items()}


def test_ticket_impact_is_the_blast_radius_with_open_tickets(client, desk, agent, estate):
    incident = desk.open(ci_ids=[estate["app1"]], impact=1, urgency=1, title="app-1 down")
    change = desk.change([estate["host"]], NIGHT, NIGHT + timedelta(hours=2))
    r = client.get(f"/api/v1/tickets/{change['id']}/impact", headers=agent.headers)
    assert r.status_code == 200, r.json
    impacted = {item["ci"]["id"] for item in r.json["impacted"]}
    assert impacted == {estate[f"app{i}"] for i in range(1, 6)} | {estate["payroll"]}
    assert r.json["business_services"] == [estate["payroll"]]
    assert r.json["roots"] == [estate["host"]]
    assert incident["id"] in [t["id"] for t in r.json["open_tickets"]]
    assert r.json["ticket_id"] == change["id"]
    no_cis = desk.open()
    empty = client.get(f"/api/v1/tickets/{no_cis['id']}/impact", headers=agent.headers).json
    assert empty["count"] == 0 and empty["impacted"] == []


def test_relations_impact_answers_name_open_tickets(desk, estate):
    from relations.services import enrich, impact

    incident = desk.open(ci_ids=[estate["app3"]], title="app-3 slow")
    closed = desk.open(ci_ids=[estate["app4"]])
    desk.move(closed, "resolved", note="ok", resolution_code="fixed")
    extra = enrich(impact([estate["switch"]]))
    listed = {t["id"]: t for t in extra["open_tickets"]}
    assert incident["id"] in listed and closed["id"] not in listed
    assert listed[incident["id"]]["ci_ids"] == [estate["app3"]]


def test_conflicts_across_the_whole_graph(client, desk, agent, manager, estate):
    mine = desk.change([estate["host"]], NIGHT, NIGHT + timedelta(hours=2), title="patch host")
    # different CI, same downstream business service, overlapping window: a collision
    via_service = desk.change([estate["host2"]], NIGHT + timedelta(hours=1), NIGHT + timedelta(hours=3))
    # same CI, overlapping: a collision with the CI named
    same_ci = desk.change([estate["host"]], NIGHT - timedelta(hours=1), NIGHT + timedelta(minutes=30))
    # unrelated CI, overlapping: none
    desk.change([estate["lonely"]], NIGHT, NIGHT + timedelta(hours=2))
    # same CI, later window: none
    desk.change([estate["host"]], NIGHT + timedelta(hours=5), NIGHT + timedelta(hours=6))
    # same CI, overlapping but canceled: none
    canceled = desk.change([estate["host"]], NIGHT, NIGHT + timedelta(hours=1))
    desk.move(canceled, "canceled", note="not needed")
    r = client.get(f"/api/v1/tickets/{mine['id']}/conflicts", headers=agent.headers)
    assert r.status_code == 200, r.json
    found = {c["ticket"]["id"]: c for c in r.json}
    assert set(found) == {via_service["id"], same_ci["id"]}
    assert found[via_service["id"]]["shared_ci_ids"] == [estate["payroll"]]
    assert found[via_service["id"]]["direct_ci_ids"] == []
    assert found[via_service["id"]]["overlap"] == {
        "start": (NIGHT + timedelta(hours=1)).isoformat(), "end": (NIGHT + timedelta(hours=2)).isoformat()
    }  # fmt: skip
    assert estate["host"] in found[same_ci["id"]]["shared_ci_ids"]
    assert found[same_ci["id"]]["direct_ci_ids"] == [estate["host"]]
    incident = desk.open()
    assert client.get(f"/api/v1/tickets/{incident['id']}/conflicts", headers=agent.headers).status_code == 422


def test_risk_reasons_say_their_contribution(client, desk, agent, estate):
    desk.open(ci_ids=[estate["app2"]], impact=1, urgency=1, title="app-2 down")
    desk.change([estate["host2"]], NIGHT, NIGHT + timedelta(hours=2), title="other change")
    change = desk.change([estate["host"]], NIGHT, NIGHT + timedelta(hours=2))
    reasons = {r["rule"]: r for r in change["risk_reasons"]}
    assert reasons["blast_radius"]["value"] == 6 and reasons["blast_radius"]["points"] == 5
    assert reasons["business_services"]["value"] == 1
    assert reasons["criticality"]["reason"].endswith("medium")  # the host itself
    assert reasons["ci_class"]["reason"].endswith("infrastructure (server)")
    assert reasons["impacted_criticality"]["reason"].endswith("critical")  # payroll goes down with it
    assert reasons["open_major_incidents"]["value"] == 1
    assert reasons["conflicts"]["value"] == 1
    assert "business_hours" not in reasons
    assert change["risk_score"] == sum(r["points"] for r in change["risk_reasons"])
    assert change["risk"] == "high"
    # every factor weighed is listed, those without points too
    factors = {f["rule"]: f for f in change["risk_factors"]}
    assert set(factors) == {rule.name for rule in risk.RULES}
    assert factors["business_hours"]["points"] == 0 and factors["blackout"]["max_points"] == 25
    assert change["risk_assessed_at"]
    quiet = desk.change([estate["lonely"]], NIGHT, NIGHT + timedelta(hours=1))
    assert quiet["risk"] == "low" and quiet["risk_reasons"] == []
    busy = desk.change([estate["lonely"]], DAY, DAY + timedelta(hours=1))
    assert [r["rule"] for r in busy["risk_reasons"]] == ["business_hours"]


def test_failed_changes_on_the_same_cis_raise_risk(desk, manager, estate):
    import time_machine

    old = desk.change([estate["lonely"]], NIGHT, NIGHT + timedelta(hours=1))
    desk.schedule(old, manager.headers)
    with time_machine.travel(NIGHT + timedelta(minutes=5)):
        desk.move(old, "implement")
        desk.move(old, "review", outcome="failed")
    again = desk.change([estate["lonely"]], NIGHT + timedelta(days=1), NIGHT + timedelta(days=1, hours=1))
    assert [r["rule"] for r in again["risk_reasons"]] == ["recent_failed_changes"]


def test_risk_rules_are_data():
    result = risk.score({"impacted_cis": 60, "business_services": 3, "criticality": 3})
    assert result["score"] == 25 + 20 + 25 and result["risk"] == "high"
    assert [r["rule"] for r in result["reasons"]] == ["criticality", "blast_radius", "business_services"]
    assert len(result["factors"]) == len(risk.RULES)
    assert risk.score({})["risk"] == "low" and risk.score({})["reasons"] == []
    assert risk.score({"criticality": 2, "class_tier": 2})["risk"] == "medium"


def test_business_hours(app):
    with app.app_context():
        assert risk.in_business_hours(DAY, DAY + timedelta(hours=1))
        assert not risk.in_business_hours(NIGHT, NIGHT + timedelta(hours=2))
        saturday = datetime(2031, 6, 7, 10, tzinfo=UTC)
        assert not risk.in_business_hours(saturday, saturday + timedelta(hours=2))
        assert risk.in_business_hours(NIGHT, NIGHT + timedelta(hours=12))  # runs into Wednesday morning
        app.config["CAIRN_BUSINESS_HOURS"] = {"timezone": "America/New_York"}
        try:  # 22:00 UTC is 18:00 in New York in June: closing time, so outside
            assert not risk.in_business_hours(NIGHT, NIGHT + timedelta(hours=1))
            assert risk.in_business_hours(NIGHT - timedelta(hours=1), NIGHT)
        finally:
            app.config.pop("CAIRN_BUSINESS_HOURS")


def test_probable_causes_find_the_common_host(client, desk, agent, estate):
    storm = [desk.open(ci_ids=[estate[f"app{i}"]], title=f"app-{i} errors") for i in range(1, 6)]
    unrelated = desk.open(ci_ids=[estate["lonely"]], title="printer jam")
    r = client.get(f"/api/v1/tickets/{storm[0]['id']}/probable-causes", headers=agent.headers)
    assert r.status_code == 200, r.json
    causes = r.json["causes"]
    assert causes[0]["ci"]["id"] == estate["host"] and causes[0]["incident_count"] == 5
    assert {i["id"] for i in causes[0]["incidents"]} == {t["id"] for t in storm}
    assert causes[1]["ci"]["id"] == estate["switch"] and causes[1]["incident_count"] == 5
    assert causes[0]["mean_distance"] < causes[1]["mean_distance"]
    assert unrelated["id"] not in {i["id"] for c in causes for i in c["incidents"]}
    assert r.json["open_incidents"] == 6
    change = desk.open("change")
    assert client.get(f"/api/v1/tickets/{change['id']}/probable-causes", headers=agent.headers).status_code == 422


def test_probable_causes_only_look_at_recent_open_incidents(client, desk, agent, estate):
    import time_machine

    with time_machine.travel(datetime.now(UTC) - timedelta(days=3), tick=False):
        desk.open(ci_ids=[estate["app2"]], title="long ago")
    fresh = desk.open(ci_ids=[estate["app1"]])
    r = client.get(f"/api/v1/tickets/{fresh['id']}/probable-causes?hours=24", headers=agent.headers).json
    assert all(c["incident_count"] == 1 for c in r["causes"])


def test_impact_over_http_carries_the_open_tickets(client, desk, agent, estate):
    incident = desk.open(ci_ids=[estate["app5"]], impact=1, urgency=1)
    r = client.get(f"/api/v1/cis/{estate['host']}/impact", headers=agent.headers)
    assert r.status_code == 200, r.json
    assert [t["id"] for t in r.json["open_tickets"]] == [incident["id"]]


def test_an_open_changes_risk_is_current_when_read(client, desk, agent, estate):
    """Risk used to be computed on write only: a colliding change and a P1 incident on its CIs showed
    on the next transition, not on the GET right after they appeared."""
    change = desk.change([estate["host"]], NIGHT, NIGHT + timedelta(hours=2), title="patch host")
    before = desk.get(change)
    assert {r["rule"] for r in before["risk_reasons"]}.isdisjoint({"open_major_incidents", "conflicts"})
    desk.open(ci_ids=[estate["app3"]], impact=1, urgency=1, title="app-3 down")
    desk.change([estate["host"]], NIGHT + timedelta(hours=1), NIGHT + timedelta(hours=3), title="colliding")
    now = desk.get(change)
    reasons = {r["rule"]: r for r in now["risk_reasons"]}
    assert reasons["open_major_incidents"]["value"] == 1 and reasons["conflicts"]["value"] == 1
    assert now["risk_score"] == before["risk_score"] + 30, (before["risk_reasons"], now["risk_reasons"])
    listed = client.get("/api/v1/tickets?kind=change&sort=id", headers=agent.headers).json
    assert next(t for t in listed if t["id"] == change["id"])["risk_score"] == now["risk_score"]
    # a finished change keeps the risk it had when the work was done
    canceled = desk.move(change, "canceled", note="not needed")
    assert canceled["risk_score"] == now["risk_score"]
    desk.open(ci_ids=[estate["app4"]], impact=1, urgency=1, title="app-4 down")
    assert desk.get(change)["risk_score"] == now["risk_score"]


def test_risk_spreads_with_what_the_change_touches(desk, estate):
    """A printer's firmware is not a core switch: the same quiet night window, three levels."""

    def level(ci):
        return desk.change([estate[ci]], NIGHT, NIGHT + timedelta(hours=1), title=f"change {ci}")

    printer, app, switch = level("lonely"), level("app6"), level("switch")
    assert (printer["risk"], app["risk"], switch["risk"]) == ("low", "medium", "high"), (
        printer["risk_score"], app["risk_score"], switch["risk_score"],
    )  # fmt: skip
    assert printer["risk_score"] < app["risk_score"] < switch["risk_score"]
    app_reasons = {r["rule"] for r in app["risk_reasons"]}
    assert {"business_services", "impacted_criticality"} <= app_reasons
    switch_reasons = {r["rule"]: r for r in switch["risk_reasons"]}
    assert switch_reasons["ci_class"]["reason"].endswith("core infrastructure (network_switch)")


def test_redundancy_weighs_less_than_a_single_point_of_failure(make, db, desk):
    """A member of a cluster that keeps enough members only degrades what runs on it."""
    from relations.services import create_relationship

    cluster = make.ci("cluster", name="web", attributes={"min_members_up": 1})
    nodes = [make.ci("virtual_machine", name=f"web-{i}") for i in (1, 2)]
    single = make.ci("virtual_machine", name="single")
    shop = make.ci("business_service", name="shop", criticality="critical")
    other = make.ci("business_service", name="other", criticality="critical")
    for node in nodes:
        create_relationship({"source_id": node.id, "type": "member_of", "target_id": cluster.id})
    create_relationship({"source_id": shop.id, "type": "depends_on", "target_id": cluster.id})
    create_relationship({"source_id": other.id, "type": "depends_on", "target_id": single.id})
    db.session.commit()
    redundant = desk.change([nodes[0].id], NIGHT, NIGHT + timedelta(hours=1))
    alone = desk.change([single.id], NIGHT + timedelta(days=1), NIGHT + timedelta(days=1, hours=1))
    assert {r["rule"] for r in redundant["risk_reasons"]} >= {"business_services_degraded"}
    assert "business_services" not in {r["rule"] for r in redundant["risk_reasons"]}
    assert redundant["risk_score"] < alone["risk_score"]
