"""Saved views on the CI and ticket lists through Flask's test client as a signed-in browser: the
bar saves what the list shows, opening a view gives the list with its filters and sort (filters the
form has no field for shown as removable chips), a teammate sees a shared view, only its owner
deletes it, and a filter the list would refuse saves nothing."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from integrations.views.models import SavedView
from tests.web.pages import post, sign_in


def _text(response) -> str:
    return response.get_data(as_text=True)


def _names(html: str) -> list[str]:
    """The CI names of the list's rows, in order."""
    return re.findall(r'<a href="/cis/\d+">([^<]+)</a>', html.split('id="ci-results"', 1)[1])


@pytest.fixture
def estate(make):
    make.ci("server", name="srv-b", status="deployed", vendor="Dell")
    make.ci("server", name="srv-a", status="deployed", vendor="HPE")
    make.ci("server", name="srv-c", status="in_stock", vendor="Dell")
    make.ci("laptop", name="lt-a", status="deployed", vendor="Dell")


@pytest.fixture
def alice(make, client):
    user = make.user("agent", name="Alice")
    sign_in(client, user)
    return user


def test_saving_the_list_on_screen_and_opening_it_again(client, alice, estate, db):
    page = _text(client.get("/cis", query_string={"ci_class": "server", "status": "deployed", "sort": "-name"}))
    assert "No saved view yet" in page
    assert 'name="f_ci_class" value="server"' in page and 'name="f_status" value="deployed"' in page
    form = {"resource": "cis", "name": "Deployed servers", "f_ci_class": "server", "f_status": "deployed",
            "sort": "-name"}  # fmt: skip
    saved = post(client, "/views", form)
    assert saved.status_code == 302
    view = db.session.scalar(select(SavedView))
    assert view.filters == {"ci_class": "server", "status": "deployed"} and view.sort == "-name"
    opened = client.get(saved.headers["Location"])
    assert opened.status_code == 302
    query = parse_qs(urlsplit(opened.headers["Location"]).query)
    assert query == {"view": [str(view.id)], "ci_class": ["server"], "status": ["deployed"], "sort": ["-name"]}
    listed = _text(client.get(opened.headers["Location"]))
    assert _names(listed) == ["srv-b", "srv-a"]
    assert "Deployed servers" in listed and 'aria-current="true">Deployed servers<' in listed


def test_a_filter_the_form_has_no_field_for_is_kept_and_removable(client, alice, estate, make):
    headers = make.headers(user=alice)
    made = client.post("/api/v1/views", headers=headers, json={"name": "Dell kit", "resource": "cis",
                                                               "filters": {"vendor": "Dell"}})  # fmt: skip
    assert made.status_code == 201
    listed = client.get(client.get(f"/views/{made.json['id']}").headers["Location"])
    html = _text(listed)
    assert sorted(_names(html)) == ["lt-a", "srv-b", "srv-c"]
    assert "Also filtered by:" in html and "vendor: Dell" in html
    remove = re.search(r'<a href="([^"]+)" aria-label="Remove the filter vendor">', html).group(1)
    assert "vendor" not in remove
    assert len(_names(_text(client.get(remove.replace("&amp;", "&"))))) == 4


def test_a_ticket_view_lists_what_it_says(client, alice, make):
    from tickets.services import create_ticket

    for kind, title in (("incident", "Printer on fire"), ("request", "New laptop")):
        create_ticket({"kind": kind, "title": title, "description": "x", "impact": 2, "urgency": 2}, alice)
    from cairn.db import db

    db.session.commit()
    saved = post(client, "/views", {"resource": "tickets", "name": "Open incidents", "f_kind": "incident",
                                    "f_open": "true"})  # fmt: skip
    html = _text(client.get(client.get(saved.headers["Location"]).headers["Location"]))
    assert "Printer on fire" in html and "New laptop" not in html and "Open incidents" in html


def test_a_shared_view_is_seen_by_the_team_and_deleted_by_its_owner_only(client, alice, make, app):
    bob = make.user("agent", name="Bob")
    team = make.team("Desk", members=[alice, bob])
    post(client, "/views", {"resource": "cis", "name": "Our servers", "f_ci_class": "server",
                            "shared_with_team_id": str(team.id)})  # fmt: skip
    from cairn.db import db

    view_id = db.session.scalar(select(SavedView.id))
    other = app.test_client()
    sign_in(other, bob)
    page = _text(other.get("/cis"))
    assert "Our servers" in page and "Delete view Our servers" not in page
    refused = post(other, f"/views/{view_id}/delete", follow_redirects=True)
    assert "Only the person who saved a view" in _text(refused)
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 1
    assert post(client, f"/views/{view_id}/delete").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 0


def test_a_filter_the_list_refuses_saves_nothing(client, alice, db):
    response = post(client, "/views", {"resource": "cis", "name": "Bad", "f_status": "sunbathing"},
                    follow_redirects=True)  # fmt: skip
    assert "The view cannot be saved" in _text(response) and "filters.status" in _text(response)
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 0
    nameless = post(client, "/views", {"resource": "cis", "name": "", "f_status": "deployed"}, follow_redirects=True)
    assert "Some fields are invalid" in _text(nameless)
    assert db.session.scalar(select(func.count()).select_from(SavedView)) == 0
