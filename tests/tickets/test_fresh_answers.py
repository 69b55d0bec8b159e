"""Every write answers what a GET right after it would: references changed by their id (requester_id,
team_id, owner_team_id, ...) come back with the nested object they now point at, not the one loaded
before the write (the kernel expires those references after each flush)."""

from __future__ import annotations


def _without_volatile(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in {"updated_at"}}


def test_ticket_patch_answers_the_new_requester_team_and_assignee(client, desk, agent, make):
    first, second = make.user("requester"), make.user("requester")
    member = make.user("agent")
    team = make.team(members=[member])
    t = desk.open(requester_id=first.id)
    assert t["requester"]["id"] == first.id and t["team"] is None and t["assignee"] is None
    url = f"/api/v1/tickets/{t['id']}"
    r = client.patch(url, json={"requester_id": second.id}, headers=agent.headers)
    assert r.status_code == 200, r.json
    assert r.json["requester_id"] == second.id
    assert r.json["requester"]["id"] == second.id and r.json["requester"]["email"] == second.email
    r = client.patch(url, json={"team_id": team.id, "assignee_id": member.id}, headers=agent.headers)
    assert r.status_code == 200, r.json
    assert r.json["team"] is not None and r.json["team"]["id"] == team.id
    assert r.json["assignee"] is not None and r.json["assignee"]["id"] == member.id
    fresh = client.get(url, headers=agent.headers)
    assert r.headers["ETag"] == fresh.headers["ETag"]
    assert _without_volatile(r.json) == _without_volatile(fresh.json)
    # and back to nobody: the nested objects go too
    r = client.patch(url, json={"team_id": None, "assignee_id": None}, headers=agent.headers)
    assert r.json["team"] is None and r.json["assignee"] is None


def test_ci_patch_answers_the_new_team_location_and_holder(client, make, admin):
    old_team, new_team = make.team(), make.team()
    old_holder, new_holder = make.user("agent"), make.user("requester")
    old_room, new_room = make.location(), make.location()
    ci = make.ci("laptop", owner_team_id=old_team.id, assigned_to_id=old_holder.id, location_id=old_room.id)
    url = f"/api/v1/cis/{ci.id}"
    before = client.get(url, headers=admin).json
    assert before["owner_team"]["id"] == old_team.id and before["location"]["id"] == old_room.id
    r = client.patch(
        url,
        json={"owner_team_id": new_team.id, "location_id": new_room.id, "assigned_to_id": new_holder.id},
        headers=admin,
    )
    assert r.status_code == 200, r.json
    assert r.json["owner_team"]["id"] == new_team.id
    assert r.json["location"] is not None and r.json["location"]["id"] == new_room.id
    assert r.json["assigned_to"]["id"] == new_holder.id
    fresh = client.get(url, headers=admin)
    assert _without_volatile(r.json) == _without_volatile(fresh.json)
    r = client.patch(url, json={"location_id": None, "owner_team_id": None}, headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["location"] is None and r.json["owner_team"] is None


def test_ci_created_with_references_answers_them(client, make, admin):
    team, room = make.team(), make.location()
    r = client.post(
        "/api/v1/cis",
        json={"name": "fresh-1", "ci_class": "server", "owner_team_id": team.id, "location_id": room.id},
        headers=admin,
    )
    assert r.status_code == 201, r.json
    assert r.json["owner_team"]["id"] == team.id and r.json["location"]["id"] == room.id
