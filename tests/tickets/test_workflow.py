"""States and moves per kind, required fields, roles, milestones, comments, links, problems, changes."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tickets.workflow import WORKFLOWS

FUTURE = datetime(2031, 6, 3, 22, tzinfo=UTC)  # a Tuesday night


def test_every_move_targets_a_state_of_its_kind():
    for kind, flow in WORKFLOWS.items():
        for state, moves in flow.items():
            for move in moves:
                assert move.to in flow, (kind, state, move.to)


def test_states_per_kind_are_api_md():
    assert tuple(WORKFLOWS["incident"]) == ("new", "in_progress", "on_hold", "resolved", "closed", "canceled")
    assert tuple(WORKFLOWS["request"]) == tuple(WORKFLOWS["incident"])
    assert tuple(WORKFLOWS["problem"]) == (
        "new", "assessed", "root_cause_analysis", "known_error", "resolved", "closed", "canceled",
    )  # fmt: skip
    assert tuple(WORKFLOWS["change"]) == (
        "new", "assess", "authorize", "scheduled", "implement", "review", "closed", "canceled",
    )  # fmt: skip


def test_illegal_move_is_409_naming_the_allowed_ones(desk):
    t = desk.open()
    r = desk.move(t, "closed", expect=409)
    assert set(r["allowed"]) == {"in_progress", "on_hold", "resolved", "canceled"}
    assert "in_progress" in r["detail"]
    # a state of another kind is 422
    assert "to" in desk.move(t, "assess", expect=422)["errors"]


def test_incident_lifecycle_with_milestones(desk):
    t = desk.open()
    t = desk.move(t, "in_progress")
    assert t["acknowledged_at"] is not None
    assert "note" in desk.move(t, "on_hold", expect=422)["errors"]
    t = desk.move(t, "on_hold", note="waiting for the caller")
    assert t["hold_reason"] == "waiting for the caller" and t["sla"]["paused"] is True
    t = desk.move(t, "in_progress")
    assert t["sla"]["paused"] is False
    errors = desk.move(t, "resolved", expect=422)["errors"]
    assert {"note", "resolution_code"} <= set(errors)
    t = desk.move(t, "resolved", note="replaced the disk", resolution_code="fixed")
    assert t["resolved_at"] and t["resolution_code"] == "fixed" and t["resolution_note"] == "replaced the disk"
    t = desk.move(t, "in_progress")  # reopened
    assert t["resolved_at"] is None and t["resolution_code"] is None
    t = desk.move(t, "resolved", note="really fixed", resolution_code="fixed")
    t = desk.move(t, "closed")
    assert t["closed_at"] and t["allowed_transitions"] == []
    assert desk.move(t, "in_progress", expect=409)["allowed"] == []


def test_cancel_needs_a_reason(desk):
    t = desk.open("request")
    assert "note" in desk.move(t, "canceled", expect=422)["errors"]
    t = desk.move(t, "canceled", note="not needed any more")
    assert t["canceled_at"] and t["cancel_reason"] == "not needed any more"


def test_requester_moves_are_limited(desk, requester):
    t = desk.open(headers=requester.headers)
    assert desk.move(t, "in_progress", headers=requester.headers, expect=403)["status"] == 403
    desk.move(t, "resolved", note="done", resolution_code="fixed")
    t = desk.move(t, "in_progress", headers=requester.headers)  # reopen: "it is not fixed"
    desk.move(t, "resolved", note="done now", resolution_code="fixed")
    assert desk.move(t, "closed", headers=requester.headers)["state"] == "closed"


def test_allowed_transitions_are_the_callers_own(client, desk, requester, actor):
    t = desk.open(headers=requester.headers)
    assert t["allowed_transitions"] == ["canceled"]
    assert set(desk.get(t)["allowed_transitions"]) == {"in_progress", "on_hold", "resolved", "canceled"}
    assert desk.get(t, headers=requester.headers)["allowed_transitions"] == ["canceled"]
    assert desk.get(t, headers=actor("auditor").headers)["allowed_transitions"] == []
    # every move listed is one the caller may make
    for to in desk.get(t, headers=requester.headers)["allowed_transitions"]:
        assert desk.move(t, to, headers=requester.headers, note="not needed")["state"] == to
    # the 409 of an illegal move names the caller's moves only
    t = desk.open(headers=requester.headers)
    assert desk.move(t, "closed", headers=requester.headers, expect=409)["allowed"] == ["canceled"]
    # a change in authorize: only change managers schedule it
    chg = desk.change([], FUTURE, FUTURE + timedelta(hours=1))
    desk.move(chg, "assess")
    chg = desk.move(chg, "authorize")
    assert "scheduled" not in chg["allowed_transitions"]
    assert "scheduled" in desk.get(chg, headers=actor("change_manager").headers)["allowed_transitions"]


def test_comments_public_internal_and_closed(client, desk, requester):
    t = desk.open(headers=requester.headers)
    url = f"/api/v1/tickets/{t['id']}/comments"
    assert client.post(url, json={"body": "any news?"}, headers=requester.headers).status_code == 201
    assert client.post(url, json={"body": "note to self", "internal": True}, headers=desk.headers).status_code == 201
    r = client.post(url, json={"body": "sneaky", "internal": True}, headers=requester.headers)
    assert r.status_code == 403
    staff_view = client.get(url, headers=desk.headers).json
    assert [c["internal"] for c in staff_view] == [False, True]
    requester_view = client.get(url, headers=requester.headers).json
    assert [c["body"] for c in requester_view] == ["any news?"]
    assert client.post(url, json={"body": ""}, headers=desk.headers).status_code == 422
    blank = client.post(url, json={"body": " \n\t "}, headers=desk.headers)
    assert blank.status_code == 422 and "only white space" in blank.json["errors"]["body"][0]
    assert [c["body"] for c in client.get(url, headers=desk.headers).json] == ["any news?", "note to self"]
    desk.move(t, "canceled", note="duplicate")
    r = client.post(url, json={"body": "too late"}, headers=desk.headers)
    assert r.status_code == 409


def test_assignment_to_team_and_user(client, desk, agent, make):
    team = make.team(members=[agent.user])
    t = desk.open()
    r = client.patch(f"/api/v1/tickets/{t['id']}", json={"team_id": team.id, "assignee_id": agent.id},
                     headers=agent.headers)  # fmt: skip
    assert r.status_code == 200 and r.json["team_id"] == team.id and r.json["assignee_id"] == agent.id
    outsider = make.user("agent")
    r = client.patch(f"/api/v1/tickets/{t['id']}", json={"assignee_id": outsider.id}, headers=agent.headers)
    assert r.status_code == 422 and "assignee_id" in r.json["errors"]
    auditor = make.user("auditor")
    r = client.patch(f"/api/v1/tickets/{t['id']}", json={"team_id": None, "assignee_id": auditor.id},
                     headers=agent.headers)  # fmt: skip
    assert r.status_code == 422
    assigned = client.get(f"/api/v1/tickets?assignee_id={agent.id}&team_id={team.id}", headers=agent.headers).json
    assert [x["id"] for x in assigned] == [t["id"]]


def test_watchers(client, desk, agent, make):
    t = desk.open()
    watcher = make.user("agent")
    url = f"/api/v1/tickets/{t['id']}/watchers"
    assert client.post(url, json={"user_id": watcher.id}, headers=agent.headers).status_code == 201
    assert client.post(url, json={"user_id": watcher.id}, headers=agent.headers).status_code == 409
    assert client.post(url, json={"user_id": 999999}, headers=agent.headers).status_code == 422
    assert [w["user_id"] for w in client.get(url, headers=agent.headers).json] == [watcher.id]
    assert client.delete(f"{url}/{watcher.id}", headers=agent.headers).status_code == 204
    assert client.get(url, headers=agent.headers).json == []
    assert client.delete(f"{url}/{watcher.id}", headers=agent.headers).status_code == 404


def test_links_and_their_rules(client, desk, agent):
    inc, inc2 = desk.open(), desk.open()
    prb = desk.open("problem")
    chg = desk.open("change")

    def link(source, target, type_):
        return client.post(f"/api/v1/tickets/{source['id']}/links", json={"ticket_id": target["id"], "type": type_},
                           headers=agent.headers)  # fmt: skip

    r = link(inc, prb, "caused_by")
    assert r.status_code == 201 and r.json["target"]["number"] == prb["number"]
    assert link(inc, prb, "caused_by").status_code == 409
    assert link(chg, prb, "fixes").status_code == 201
    assert link(inc, prb, "fixes").status_code == 422  # only changes fix
    assert link(inc2, inc, "duplicate_of").status_code == 201
    assert link(inc2, prb, "duplicate_of").status_code == 422
    assert link(inc, inc, "related").status_code == 422
    assert link(inc, {"id": 999999}, "related").status_code == 422
    links = client.get(f"/api/v1/tickets/{prb['id']}/links", headers=agent.headers).json
    assert {(x["source_id"], x["type"]) for x in links} == {(inc["id"], "caused_by"), (chg["id"], "fixes")}
    link_id = links[0]["id"]
    assert client.delete(f"/api/v1/tickets/{prb['id']}/links/{link_id}", headers=agent.headers).status_code == 204
    assert len(client.get(f"/api/v1/tickets/{prb['id']}/links", headers=agent.headers).json) == 1


def test_problem_known_error_and_resolving_linked_incidents(client, desk, agent):
    prb = desk.open("problem", title="Disk firmware bug")
    incidents = [desk.open(title=f"slow {i}") for i in range(3)]
    for inc in incidents[:2]:
        r = client.post(f"/api/v1/tickets/{inc['id']}/links", json={"ticket_id": prb["id"], "type": "caused_by"},
                        headers=agent.headers)  # fmt: skip
        assert r.status_code == 201
    desk.move(incidents[1], "on_hold", note="waiting for the fix")
    desk.move(prb, "assessed")
    desk.move(prb, "root_cause_analysis")
    assert "workaround" in desk.move(prb, "known_error", expect=422)["errors"]
    prb = desk.move(prb, "known_error", workaround="Restart the array controller nightly")
    assert prb["known_error"] is True and prb["workaround"].startswith("Restart")
    known = client.get("/api/v1/tickets?kind=problem&known_error=true", headers=agent.headers).json
    assert prb["id"] in [x["id"] for x in known]
    answer = desk.move(prb, "resolved", note="firmware 2.1 deployed", resolution_code="fixed",
                       resolve_linked_incidents=True)  # fmt: skip
    assert answer["resolved_linked"] == [incidents[0]["id"], incidents[1]["id"]]
    states = [desk.get(i)["state"] for i in incidents]
    assert states == ["resolved", "resolved", "new"]
    resolved = desk.get(incidents[0])
    assert resolved["resolution_code"] == "problem_resolved" and prb["number"] in resolved["resolution_note"]


def test_resolving_a_major_incident_resolves_its_duplicates_and_children(client, desk, agent, requester):
    major = desk.open(title="Mail down for everyone", impact=1, urgency=1)
    dupes = [desk.open(title=f"my mail is down {i}", headers=requester.headers) for i in range(2)]
    child = desk.open(title="Shared calendar not syncing")
    done = desk.open(title="already fixed")
    related = desk.open(title="slow VPN")

    def link(source, type_):
        r = client.post(f"/api/v1/tickets/{source['id']}/links", json={"ticket_id": major["id"], "type": type_},
                        headers=agent.headers)  # fmt: skip
        assert r.status_code == 201, r.json

    for dupe in dupes:
        link(dupe, "duplicate_of")
    link(child, "caused_by")
    link(done, "duplicate_of")
    link(related, "related")
    desk.move(dupes[1], "on_hold", note="waiting for the caller")
    desk.move(done, "canceled", note="opened twice")
    answer = desk.move(major, "resolved", note="Mail relay restarted", resolution_code="fixed", resolve_linked=True)
    assert answer["state"] == "resolved"
    assert answer["resolved_linked"] == [dupes[0]["id"], dupes[1]["id"], child["id"]]
    for dupe in dupes:
        got = desk.get(dupe)
        assert got["state"] == "resolved" and got["resolution_code"] == "duplicate"
        assert major["number"] in got["resolution_note"] and "Mail relay restarted" in got["resolution_note"]
    got = desk.get(child)
    assert got["state"] == "resolved" and got["resolution_code"] == "fixed"
    assert "Mail relay restarted" in got["resolution_note"]
    assert desk.get(done)["state"] == "canceled" and desk.get(related)["state"] == "new"
    history = client.get(f"/api/v1/tickets/{child['id']}/history", headers=agent.headers).json
    assert history[0]["action"] == "transition" and history[0]["changes"]["state"] == ["new", "resolved"]
    assert history[0]["actor"] == agent.user.email
    # without asking, nothing else moves
    other = desk.open(title="Printer down")
    dupe = desk.open(title="printer down too")
    link_body = {"ticket_id": other["id"], "type": "duplicate_of"}
    client.post(f"/api/v1/tickets/{dupe['id']}/links", json=link_body, headers=agent.headers)
    answer = desk.move(other, "resolved", note="toner", resolution_code="fixed")
    assert answer["resolved_linked"] is None and desk.get(dupe)["state"] == "new"


def test_problem_resolution_without_opt_in_leaves_incidents(client, desk, agent):
    prb = desk.open("problem")
    inc = desk.open()
    client.post(f"/api/v1/tickets/{inc['id']}/links", json={"ticket_id": prb["id"], "type": "caused_by"},
                headers=agent.headers)  # fmt: skip
    for state in ("assessed", "root_cause_analysis"):
        desk.move(prb, state)
    desk.move(prb, "resolved", note="fixed", resolution_code="fixed")
    assert desk.get(inc)["state"] == "new"


# --- changes ---------------------------------------------------------------------------------


def test_change_needs_window_approval_and_right_role(client, desk, manager, make):
    ci = make.ci("server")
    chg = desk.open("change", ci_ids=[ci.id])
    desk.move(chg, "assess")
    errors = desk.move(chg, "authorize", expect=422)["errors"]
    assert {"planned_start", "planned_end"} <= set(errors)
    r = client.patch(f"/api/v1/tickets/{chg['id']}", json={"planned_start": FUTURE.isoformat(),
                     "planned_end": (FUTURE - timedelta(hours=1)).isoformat()}, headers=desk.headers)  # fmt: skip
    assert r.status_code == 422 and "planned_end" in r.json["errors"]
    r = client.patch(f"/api/v1/tickets/{chg['id']}", json={"planned_start": FUTURE.isoformat(),
                     "planned_end": (FUTURE + timedelta(hours=2)).isoformat(),
                     "implementation_plan": "upgrade", "backout_plan": "restore snapshot"},
                     headers=desk.headers)  # fmt: skip
    assert r.status_code == 200, r.json
    desk.move(chg, "authorize")
    # agents can't schedule, and nobody can without the approvals
    assert desk.move(chg, "scheduled", expect=403)["status"] == 403
    r = desk.move(chg, "scheduled", headers=manager.headers, expect=409)
    assert r["approvals"] == 0 and r["required"] == 1
    # approvals are the change managers'
    url = f"/api/v1/tickets/{chg['id']}/approvals"
    assert client.post(url, json={"decision": "approve"}, headers=desk.headers).status_code == 403
    assert client.post(url, json={"decision": "approve", "comment": "fine"}, headers=manager.headers).status_code == 201
    assert client.post(url, json={"decision": "approve"}, headers=manager.headers).status_code == 409
    chg = desk.move(chg, "scheduled", headers=manager.headers)
    assert chg["state"] == "scheduled"
    # the window is frozen once scheduled
    r = client.patch(f"/api/v1/tickets/{chg['id']}", json={"planned_end": (FUTURE + timedelta(hours=3)).isoformat()},
                     headers=desk.headers)  # fmt: skip
    assert r.status_code == 409
    # the window binds: not before it opens
    early = desk.move(chg, "implement", expect=409)
    assert "opens" in early["detail"] and early["planned_start"] == FUTURE.isoformat()
    with time_machine.travel(FUTURE + timedelta(minutes=10)):
        chg = desk.move(chg, "implement")
        assert chg["actual_start"]
        assert "outcome" in desk.move(chg, "review", expect=422)["errors"]
        chg = desk.move(chg, "review", outcome="backed_out")
    assert chg["outcome"] == "backed_out" and chg["actual_end"]
    assert desk.move(chg, "canceled", note="x", expect=409)["allowed"] == ["closed"]
    assert desk.move(chg, "closed")["closed_at"]


def test_rejection_sends_change_back_to_assess_and_starts_a_new_round(client, desk, manager, actor, make):
    ci = make.ci("server")
    chg = desk.change([ci.id], FUTURE, FUTURE + timedelta(hours=1))
    desk.move(chg, "assess")
    desk.move(chg, "authorize")
    url = f"/api/v1/tickets/{chg['id']}/approvals"
    r = client.post(url, json={"decision": "reject", "comment": "no backout plan"}, headers=manager.headers)
    assert r.status_code == 201
    chg = desk.get(chg)
    assert chg["state"] == "assess" and chg["approval_round"] == 2
    # approvals are only taken in authorize
    assert client.post(url, json={"decision": "approve"}, headers=manager.headers).status_code == 409
    desk.move(chg, "authorize")
    assert client.post(url, json={"decision": "approve"}, headers=manager.headers).status_code == 201
    assert desk.move(chg, "scheduled", headers=manager.headers)["state"] == "scheduled"
    rounds = [(a["round"], a["decision"]) for a in client.get(url, headers=manager.headers).json]
    assert rounds == [(1, "reject"), (2, "approve")]


def test_two_approvals_when_configured(app, client, desk, manager, actor, make):
    ci = make.ci("server")
    chg = desk.change([ci.id], FUTURE, FUTURE + timedelta(hours=1))
    desk.move(chg, "assess")
    desk.move(chg, "authorize")
    app.config["CAIRN_CHANGE_APPROVALS_REQUIRED"] = 2
    try:
        url = f"/api/v1/tickets/{chg['id']}/approvals"
        client.post(url, json={"decision": "approve"}, headers=manager.headers)
        assert desk.move(chg, "scheduled", headers=manager.headers, expect=409)["required"] == 2
        client.post(url, json={"decision": "approve"}, headers=actor("change_manager").headers)
        assert desk.move(chg, "scheduled", headers=manager.headers)["state"] == "scheduled"
    finally:
        app.config.pop("CAIRN_CHANGE_APPROVALS_REQUIRED")


def test_blackout_windows_block_scheduling(app, client, desk, manager, make):
    ci = make.ci("server")
    r = client.post("/api/v1/blackout-windows", json={"name": "Year end freeze",
                    "starts_at": FUTURE.isoformat(), "ends_at": (FUTURE + timedelta(days=1)).isoformat()},
                    headers=manager.headers)  # fmt: skip
    assert r.status_code == 201
    blackout_id = r.json["id"]
    bad = client.post("/api/v1/blackout-windows", json={"name": "x", "starts_at": FUTURE.isoformat(),
                      "ends_at": FUTURE.isoformat()}, headers=manager.headers)  # fmt: skip
    assert bad.status_code == 422
    assert client.post("/api/v1/blackout-windows", json={"name": "x", "starts_at": FUTURE.isoformat(),
                       "ends_at": FUTURE.isoformat()}, headers=desk.headers).status_code == 403  # fmt: skip
    chg = desk.change([ci.id], FUTURE + timedelta(hours=2), FUTURE + timedelta(hours=3))
    desk.move(chg, "assess")
    desk.move(chg, "authorize")
    client.post(f"/api/v1/tickets/{chg['id']}/approvals", json={"decision": "approve"}, headers=manager.headers)
    r = desk.move(chg, "scheduled", headers=manager.headers, expect=409)
    assert "Year end freeze" in r["detail"] and r["blackouts"][0]["id"] == blackout_id
    assert client.delete(f"/api/v1/blackout-windows/{blackout_id}", headers=manager.headers).status_code == 204
    # a blackout from the configuration blocks it just the same
    # as the environment would give it: JSON text
    app.config["CAIRN_CHANGE_BLACKOUTS"] = json.dumps(
        [{"name": "Config freeze", "start": FUTURE.isoformat(), "end": (FUTURE + timedelta(days=1)).isoformat()}]
    )
    try:
        assert "Config freeze" in desk.move(chg, "scheduled", headers=manager.headers, expect=409)["detail"]
    finally:
        app.config.pop("CAIRN_CHANGE_BLACKOUTS")
    assert desk.move(chg, "scheduled", headers=manager.headers)["state"] == "scheduled"


@pytest.mark.parametrize("kind", ["incident", "problem", "change"])
def test_canceled_is_final(desk, kind):
    t = desk.open(kind)
    t = desk.move(t, "canceled", note="opened by mistake")
    assert t["allowed_transitions"] == []
