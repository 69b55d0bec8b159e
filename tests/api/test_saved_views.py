"""Saved views: a list's filters, columns and sort under a name; private, or shared with a team of the
owner's; checked by the list's own query schema; only the owner changes one (an admin may delete)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from integrations.views.models import SavedView

VIEWS = "/api/v1/views"


@pytest.fixture
def people(make):
    alice, bob, carol = make.user("agent"), make.user("agent"), make.user("asset_manager")
    team = make.team("Servers", members=[alice, bob])
    return {
        "alice": make.headers(user=alice),
        "bob": make.headers(user=bob),
        "carol": make.headers(user=carol),
        "team": team.id,
        "alice_id": alice.id,
    }


def _save(client, headers, **body):
    body = {"name": "Deployed servers", "resource": "cis", **body}
    return client.post(VIEWS, headers=headers, json=body)


def test_a_view_is_saved_listed_and_its_filters_give_the_list(client, people, make, db):
    make.ci("server", name="srv-a", status="deployed")
    make.ci("server", name="srv-b", status="in_stock")
    make.ci("laptop", name="lt-a", status="deployed")
    logged = db.session.scalar(select(func.count()).select_from(ChangeLog))
    response = _save(
        client, people["alice"], filters={"ci_class": "server", "status": "deployed"}, sort="-name",
        columns=["name", "status", "owner_team"],
    )  # fmt: skip
    assert response.status_code == 201, response.json
    view = response.json
    assert view["filters"] == {"ci_class": "server", "status": "deployed"} and view["sort"] == "-name"
    assert view["owner_id"] == people["alice_id"] and view["shared_with_team_id"] is None
    assert db.session.scalar(select(func.count()).select_from(ChangeLog)) == logged + 1, "in the change log"
    # what a client does with it: the list with the view's filters and sort
    listed = client.get("/api/v1/cis", headers=people["alice"], query_string={**view["filters"], "sort": view["sort"]})
    assert [ci["name"] for ci in listed.json] == ["srv-a"]
    mine = client.get(VIEWS, headers=people["alice"], query_string={"resource": "cis"})
    assert [v["name"] for v in mine.json] == ["Deployed servers"] and mine.headers["X-Pagination"]
    assert client.get(VIEWS, headers=people["alice"], query_string={"resource": "tickets"}).json == []


def test_private_views_are_their_owners_shared_ones_the_teams(client, people):
    private = _save(client, people["alice"], name="Mine").json
    shared = _save(client, people["alice"], name="Ours", shared_with_team_id=people["team"]).json
    assert [v["name"] for v in client.get(VIEWS, headers=people["bob"]).json] == ["Ours"]
    assert client.get(f"{VIEWS}/{shared['id']}", headers=people["bob"]).status_code == 200
    assert client.get(f"{VIEWS}/{private['id']}", headers=people["bob"]).status_code == 404
    assert client.get(VIEWS, headers=people["carol"]).json == []
    assert client.get(f"{VIEWS}/{shared['id']}", headers=people["carol"]).status_code == 404
    by_team = client.get(VIEWS, headers=people["bob"], query_string={"team_id": people["team"]}).json
    assert [v["name"] for v in by_team] == ["Ours"]
    # a team member sees it but may not change or delete it; the owner may
    assert client.patch(f"{VIEWS}/{shared['id']}", headers=people["bob"], json={"name": "x"}).status_code == 403
    assert client.delete(f"{VIEWS}/{shared['id']}", headers=people["bob"]).status_code == 403
    renamed = client.patch(f"{VIEWS}/{shared['id']}", headers=people["alice"], json={"name": "Our servers"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Our servers"
    unshared = client.patch(f"{VIEWS}/{shared['id']}", headers=people["alice"], json={"shared_with_team_id": None})
    assert unshared.json["shared_with_team_id"] is None
    assert client.get(VIEWS, headers=people["bob"]).json == []
    assert client.delete(f"{VIEWS}/{shared['id']}", headers=people["alice"]).status_code == 204
    assert client.get(f"{VIEWS}/{shared['id']}", headers=people["alice"]).status_code == 404


def test_an_admin_may_delete_a_shared_view(client, people, make):
    shared = _save(client, people["alice"], name="Ours", shared_with_team_id=people["team"]).json
    admin = make.user("admin")
    make.team("Admins and servers", members=[admin])
    assert client.delete(f"{VIEWS}/{shared['id']}", headers=make.headers(user=admin)).status_code == 404, "not seen"
    from cairn.auth.models import Team, User
    from cairn.db import db

    team = db.session.get(Team, people["team"])
    team.members.append(db.session.get(User, admin.id))
    db.session.commit()
    assert client.delete(f"{VIEWS}/{shared['id']}", headers=make.headers(user=admin)).status_code == 204


@pytest.mark.parametrize(
    "body, field",
    [
        ({"filters": {"status": "sunbathing"}}, "filters.status"),
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"filters": {"format": "csv"}}, "filters"),
        ({"filters": {"sort": "name"}}, "filters"),
        ({"filters": {"status": ["deployed"]}}, "filters"),
        ({"sort": "shoe_size"}, "sort"),
        ({"columns": ["name", "favourite_colour"]}, "columns"),
        ({"columns": ["name", "name"]}, "columns"),
        ({"resource": "spaceships"}, "resource"),
        ({"name": ""}, "name"),
        ({"resource": "tickets", "filters": {"ci_class": "server"}}, "filters.ci_class"),
    ],
)
def test_what_the_list_would_refuse_is_422_and_saves_nothing(client, people, db, body, field):
    response = _save(client, people["alice"], **body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json" and field in response.json["errors"], response.json
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 0


def test_sharing_with_a_team_one_is_not_in_or_that_does_not_exist_is_422(client, people, make):
    other = make.team("Elsewhere")
    assert _save(client, people["carol"], shared_with_team_id=people["team"]).status_code == 422
    assert _save(client, people["alice"], shared_with_team_id=other.id).status_code == 422
    assert _save(client, people["alice"], shared_with_team_id=999_999).status_code == 422


def test_names_are_unique_per_owner_and_list(client, people):
    assert _save(client, people["alice"]).status_code == 201
    again = _save(client, people["alice"])
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert _save(client, people["alice"], resource="tickets", filters={"state": "new"}).status_code == 201
    assert _save(client, people["bob"]).status_code == 201
    view = _save(client, people["alice"], name="Other").json
    clash = client.patch(f"{VIEWS}/{view['id']}", headers=people["alice"], json={"name": "Deployed servers"})
    assert clash.status_code == 409
    moved = client.patch(f"{VIEWS}/{view['id']}", headers=people["alice"], json={"resource": "tickets"})
    assert moved.status_code == 422 and "resource" in moved.json["errors"]


def test_a_ticket_view_uses_the_ticket_lists_rules(client, people, make):
    response = _save(
        client, people["alice"], name="My breached", resource="tickets",
        filters={"open": "true", "breached": "true", "priority": "1,2"}, sort="-priority", columns=["number", "title"],
    )  # fmt: skip
    assert response.status_code == 201, response.json
    listed = client.get("/api/v1/tickets", headers=people["alice"], query_string=response.json["filters"])
    assert listed.status_code == 200
    assert _save(client, people["alice"], name="x", resource="tickets", filters={"priority": "9"}).status_code == 422
