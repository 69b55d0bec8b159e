"""Change rules: separation of duties, binding windows, change types (standard from a template,
normal, emergency approved after the fact)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

WINDOW = datetime(2031, 6, 3, 22, tzinfo=UTC)  # a Tuesday night


def approve(client, change, headers, decision="approve"):
    return client.post(
        f"/api/v1/tickets/{change['id']}/approvals", json={"decision": decision, "comment": "ok"}, headers=headers
    )


def test_separation_of_duties(app, client, desk, actor, make):
    ci = make.ci("server")
    requesting, implementing, other = actor("change_manager"), actor("change_manager"), actor("change_manager")
    chg = desk.change([ci.id], WINDOW, WINDOW + timedelta(hours=1), headers=requesting.headers,
                      assignee_id=implementing.id)  # fmt: skip
    assert chg["requester_id"] == requesting.id
    desk.move(chg, "assess")
    desk.move(chg, "authorize")
    r = approve(client, chg, requesting.headers)
    assert r.status_code == 403 and "separation of duties" in r.json["detail"]
    r = approve(client, chg, implementing.headers)
    assert r.status_code == 403 and "implement" in r.json["detail"]
    app.config["CAIRN_CHANGE_SEPARATION_OF_DUTIES"] = "false"
    try:
        assert approve(client, chg, requesting.headers).status_code == 201
    finally:
        app.config.pop("CAIRN_CHANGE_SEPARATION_OF_DUTIES")
    assert approve(client, chg, other.headers).status_code == 201


def test_the_window_binds_implementation(client, desk, manager, make):
    ci = make.ci("server")
    chg = desk.change([ci.id], WINDOW, WINDOW + timedelta(hours=1))
    desk.schedule(chg, manager.headers)
    with time_machine.travel(WINDOW - timedelta(minutes=1)):
        r = desk.move(chg, "implement", expect=409)
        assert "opens at" in r["detail"]
    with time_machine.travel(WINDOW + timedelta(hours=1, minutes=1)):
        r = desk.move(chg, "implement", expect=409)
        assert "closed at" in r["detail"] and r["planned_end"] == (WINDOW + timedelta(hours=1)).isoformat()
        assert desk.get(chg)["state"] == "scheduled"
    with time_machine.travel(WINDOW + timedelta(minutes=59)):
        assert desk.move(chg, "implement")["state"] == "implement"


def test_change_types_default_and_validation(client, desk, agent):
    chg = desk.open("change")
    assert chg["change_type"] == "normal" and chg["template_id"] is None
    assert chg["retrospective_approval_pending"] is False
    assert desk.open()["change_type"] is None
    assert "change_type" in desk.open(change_type="emergency", expect=422)["errors"]
    assert "template_id" in desk.open("change", change_type="standard", expect=422)["errors"]
    assert "template_id" in desk.open("change", template_id=999999, expect=422)["errors"]
    assert "change_type" in desk.open("change", change_type="urgent", expect=422)["errors"]
    assert "title" in client.post("/api/v1/tickets", json={"kind": "change"}, headers=agent.headers).json["errors"]
    url = f"/api/v1/tickets/{chg['id']}"
    r = client.patch(url, json={"change_type": "emergency"}, headers=agent.headers)
    assert (
        r.status_code == 200 and r.json["change_type"] == "emergency" and "implement" in r.json["allowed_transitions"]
    )
    assert client.patch(url, json={"change_type": "standard"}, headers=agent.headers).status_code == 422
    openapi = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    for schema in ("TicketCreate", "TicketUpdate", "Ticket"):
        assert "change_type" in openapi[schema]["properties"], schema
    assert "risk_factors" in openapi["Ticket"]["properties"]
    assert "resolved_linked" in openapi["TransitionAnswer"]["properties"]


def test_type_is_fixed_once_scheduled(client, desk, manager, make):
    ci = make.ci("server")
    chg = desk.change([ci.id], WINDOW, WINDOW + timedelta(hours=1))
    desk.schedule(chg, manager.headers)
    r = client.patch(f"/api/v1/tickets/{chg['id']}", json={"change_type": "emergency"}, headers=desk.headers)
    assert r.status_code == 409


def test_standard_change_from_a_template_skips_the_cab(client, desk, agent, manager, make):
    ci = make.ci("server")
    body = {"name": "Monthly OS patching", "description": "Patch a Linux server", "implementation_plan": "dnf update",
            "backout_plan": "restore the snapshot", "ci_ids": [ci.id]}  # fmt: skip
    assert client.post("/api/v1/change-templates", json=body, headers=agent.headers).status_code == 403
    r = client.post("/api/v1/change-templates", json=body, headers=manager.headers)
    assert r.status_code == 201, r.json
    template = r.json
    assert client.post("/api/v1/change-templates", json=body, headers=manager.headers).status_code == 409
    bad = client.post("/api/v1/change-templates", json={**body, "name": "x", "ci_ids": [999999]},
                      headers=manager.headers)  # fmt: skip
    assert bad.status_code == 422
    assert [t["id"] for t in client.get("/api/v1/change-templates", headers=agent.headers).json] == [template["id"]]
    r = client.post("/api/v1/tickets", json={"kind": "change", "template_id": template["id"],
                    "planned_start": WINDOW.isoformat(), "planned_end": (WINDOW + timedelta(hours=1)).isoformat()},
                    headers=agent.headers)  # fmt: skip
    assert r.status_code == 201, r.json
    chg = r.json
    assert chg["change_type"] == "standard" and chg["template_id"] == template["id"]
    assert chg["title"] == "Monthly OS patching" and chg["ci_ids"] == [ci.id]
    assert chg["implementation_plan"] == "dnf update" and chg["backout_plan"] == "restore the snapshot"
    assert "scheduled" in chg["allowed_transitions"]
    assert approve(client, chg, manager.headers).status_code == 409  # its template is its approval
    chg = desk.move(chg, "scheduled")  # an agent, without approvals
    assert chg["state"] == "scheduled"
    desk.move(chg, "implement", expect=409)  # its window still binds
    with time_machine.travel(WINDOW + timedelta(minutes=5)):
        desk.move(chg, "implement")
    # a retired template opens no more changes
    r = client.patch(f"/api/v1/change-templates/{template['id']}", json={"active": False}, headers=manager.headers)
    assert r.status_code == 200 and r.json["active"] is False
    assert "template_id" in desk.open("change", template_id=template["id"], expect=422)["errors"]
    # a normal change has no shortcut
    normal = desk.change([ci.id], WINDOW, WINDOW + timedelta(hours=1))
    assert "scheduled" not in normal["allowed_transitions"]
    desk.move(normal, "scheduled", expect=409)


def test_emergency_change_is_implemented_at_once_and_approved_after_the_fact(client, desk, agent, actor, make):
    ci = make.ci("server", criticality="high")
    chg = desk.open("change", title="Patch the exploited firewall", change_type="emergency", ci_ids=[ci.id])
    assert "implement" in chg["allowed_transitions"]
    assert {r["rule"] for r in chg["risk_reasons"]} >= {"emergency"}
    implementing = actor("change_manager")
    chg = desk.move(chg, "implement", headers=implementing.headers)  # no window, no approval
    assert chg["state"] == "implement" and chg["actual_start"]
    assert chg["retrospective_approval_pending"] is True
    flagged = client.get("/api/v1/tickets?kind=change&change_type=emergency", headers=agent.headers).json
    assert [(t["id"], t["retrospective_approval_pending"]) for t in flagged] == [(chg["id"], True)]
    assert client.get("/api/v1/tickets?change_type=standard", headers=agent.headers).json == []
    chg = desk.move(chg, "review", outcome="successful")
    r = desk.move(chg, "closed", expect=409)
    assert r["approvals"] == 0 and "after the fact" in r["detail"]
    # whoever implemented it can't approve it
    assert approve(client, chg, implementing.headers).status_code == 403
    assert approve(client, chg, actor("change_manager").headers).status_code == 201
    chg = desk.get(chg)
    assert chg["retrospective_approval_pending"] is False
    assert desk.move(chg, "closed")["state"] == "closed"
