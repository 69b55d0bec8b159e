"""The routing admin pages with Flask's test client: add, edit, move and delete rules, a team's
rota, the dry run (agents too), refusals that change nothing, and only admins on the admin pages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.web.pages import post, sign_in
from tickets.routing.models import RoutingRule, TeamAssignment


@pytest.fixture
def as_admin(client, make):
    sign_in(client, make.user("admin", name="Ava Admin"))
    return client


def _text(response) -> str:
    return " ".join(response.get_data(as_text=True).split())


def test_an_admin_adds_edits_moves_and_deletes_rules(as_admin, make, db):
    team = make.team("Service Desk")
    page = as_admin.get("/admin/routing")
    assert page.status_code == 200 and "No routing rules" in _text(page)
    r = post(as_admin, "/admin/routing/rules", {"name": "VPN", "active": "1", "match_title_words": "vpn, remote access",
                                                 "set_team_id": str(team.id), "set_priority": "2"})  # fmt: skip
    assert r.status_code == 302, _text(r)[:2000]
    post(
        as_admin,
        "/admin/routing/rules",
        {"name": "Requests", "active": "1", "match_kind": "request", "set_priority": "4"},
    )
    rules = list(db.session.scalars(select(RoutingRule).order_by(RoutingRule.position)))
    assert [(r.name, r.match_title_words, r.set_team_id) for r in rules] == [
        ("VPN", ["vpn", "remote access"], team.id),
        ("Requests", None, None),
    ]
    text = _text(as_admin.get("/admin/routing"))
    assert "vpn, remote access" in text and "Service Desk" in text
    # move the second one up
    assert post(as_admin, f"/admin/routing/rules/{rules[1].id}/move", {"direction": "up"}).status_code == 302
    db.session.expire_all()
    assert [r.name for r in db.session.scalars(select(RoutingRule).order_by(RoutingRule.position))] == [
        "Requests",
        "VPN",
    ]
    # edit
    edit = as_admin.get(f"/admin/routing/rules/{rules[0].id}")
    assert edit.status_code == 200 and 'value="vpn, remote access"' in edit.get_data(as_text=True)
    r = post(
        as_admin,
        f"/admin/routing/rules/{rules[0].id}",
        {"name": "VPN", "match_title_words": "vpn", "set_priority": "1"},
    )
    assert r.status_code == 302
    db.session.expire_all()
    rule = db.session.get(RoutingRule, rules[0].id)
    assert (rule.match_title_words, rule.set_priority, rule.set_team_id, rule.active) == (["vpn"], 1, None, False)
    # delete
    assert post(as_admin, f"/admin/routing/rules/{rule.id}/delete").status_code == 302
    assert db.session.get(RoutingRule, rule.id) is None


def test_a_bad_rule_is_refused_next_to_its_field_and_stores_nothing(as_admin, db):
    r = post(as_admin, "/admin/routing/rules", {"name": "empty", "match_kind": "incident"})
    assert r.status_code == 422
    assert "A rule sets at least one of" in _text(r)
    r = post(as_admin, "/admin/routing/rules", {"name": "bad class", "match_ci_class": "toaster", "set_priority": "2"})
    assert (
        r.status_code == 422 and "No CI class named" in _text(r) and 'aria-invalid="true"' in r.get_data(as_text=True)
    )
    r = post(as_admin, "/admin/routing/rules", {"name": "bad", "set_team_id": "abc"})
    assert r.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 0
    assert as_admin.get("/admin/routing/rules/424242").status_code == 404


def test_a_team_rota_is_set_on_its_page(as_admin, make, db):
    a, b = make.user("agent", name="Ann"), make.user("agent", name="Bob")
    team = make.team("Network", members=[a, b])
    page = as_admin.get(f"/admin/routing/teams/{team.id}")
    assert page.status_code == 200 and "Ann" in _text(page)
    r = post(as_admin, f"/admin/routing/teams/{team.id}", {"mode": "round_robin", "away_user_ids": str(b.id)})
    assert r.status_code == 302
    settings = db.session.scalar(select(TeamAssignment).where(TeamAssignment.team_id == team.id))
    assert (settings.mode, settings.away_user_ids) == ("round_robin", [b.id])
    r = post(as_admin, f"/admin/routing/teams/{team.id}", {"mode": "whenever"})
    assert r.status_code == 422
    assert as_admin.get("/admin/routing/teams/424242").status_code == 404


def test_agents_may_dry_run_but_not_manage(client, make, db):
    team = make.team("Desk")
    db.session.add(RoutingRule(name="printers", position=10, match_title_words=["printer"], set_team_id=team.id))
    db.session.commit()
    agent = make.user("agent")
    sign_in(client, agent)
    assert client.get("/admin/routing").status_code == 403
    assert post(client, "/admin/routing/rules", {"name": "x", "set_priority": "1"}).status_code == 403
    page = client.get("/admin/routing/dry-run")
    assert page.status_code == 200
    r = post(client, "/admin/routing/dry-run", {"kind": "incident", "title": "Printer on fire"})
    assert r.status_code == 200
    text = _text(r)
    assert "Rule printers (position 10) applies." in text and "Desk" in text
    r = post(client, "/admin/routing/dry-run", {"kind": "incident", "title": "Mouse"})
    assert "No rule applies." in _text(r) and "wanted printer, found Mouse" in _text(r)
    r = post(client, "/admin/routing/dry-run", {"kind": "incident", "requester_id": "999999"})
    assert r.status_code == 422 and "No user with id 999999" in _text(r)
    requester = make.user("requester")
    client.delete_cookie(client.application.config.get("SESSION_COOKIE_NAME", "session"))
    sign_in(client, requester)
    assert client.get("/admin/routing/dry-run").status_code in (302, 403)
