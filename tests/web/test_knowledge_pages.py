"""The knowledge base's pages with Flask's test client: the list and its search, writing an article
(links by asset tag and problem number, errors shown), the preview, state moves by role, versions,
the ticket's knowledge panel and "resolve with this article", and the portal's pages."""

from __future__ import annotations

from cairn.db import db as _db
from tests.web.pages import post, sign_in
from tickets import services as tickets
from tickets.knowledge import services


def _text(response) -> str:
    return " ".join(response.get_data(as_text=True).split())


def _article(user, **fields):
    data = {"title": "Reset a password", "body": "Use **self-service**.", "state": "published", **fields}
    article = services.create_article(data, user)
    _db.session.commit()
    return article


def test_the_list_searches_and_shows_states(signed_in, make):
    admin = make.user("admin")
    _article(admin, title="VPN client crashes", body="Reinstall the VPN client.")
    _article(admin, title="Printer offline", state="draft")
    page = _text(signed_in.get("/knowledge?q=vpn"))
    assert "VPN client crashes" in page and "Printer offline" not in page
    page = _text(signed_in.get("/knowledge?state=draft"))
    assert "Printer offline" in page and "VPN client crashes" not in page
    response = signed_in.get("/knowledge?q=%21%21")
    assert response.status_code == 422 and "Type at least one word" in _text(response)


def test_an_agent_writes_an_article_with_links_and_sends_it_to_review(signed_in, make):
    laptop = make.ci("laptop", name="LT-1", asset_tag="A-100")
    problem = tickets.create_ticket({"kind": "problem", "title": "Docks drop"}, None)
    _db.session.commit()
    response = post(signed_in, "/knowledge/new", {"title": "", "body": "x"})
    assert response.status_code == 422 and "Some fields are invalid" in _text(response)
    response = post(signed_in, "/knowledge/new", {"title": "Dock", "cis": "no-such-thing"})
    assert response.status_code == 422 and "No single CI is called no-such-thing" in _text(response)
    response = post(
        signed_in,
        "/knowledge/new",
        {"title": "Dock resets", "body": "Unplug <script>x()</script>", "visibility": "everyone",
         "ci_classes": "laptop", "cis": "A-100", "problems": problem.number.lower()},
    )  # fmt: skip
    assert response.status_code == 302, _text(response)[:2000]
    article_id = int(response.headers["Location"].rsplit("/", 1)[1])
    article = services.get_article(article_id, None)
    assert (article.ci_ids, article.ci_classes, article.problem_ids) == ([laptop.id], ["laptop"], [problem.id])
    page = _text(signed_in.get(f"/knowledge/{article_id}"))
    assert "&lt;script&gt;" in page and "<script>x()" not in page
    assert "Send to review" in page and ">Publish</button>" not in page  # an agent does not publish
    response = post(signed_in, f"/knowledge/{article_id}/state", {"to": "published"})
    assert response.status_code == 403
    response = post(signed_in, f"/knowledge/{article_id}/state", {"to": "review"})
    assert response.status_code == 302 and services.get_article(article_id, None).state == "review"
    # edit: a second version, listed with a link to the first
    response = post(signed_in, f"/knowledge/{article_id}/edit", {"title": "Dock resets", "body": "Unplug it.",
                                                                "visibility": "everyone", "cis": "A-100"})  # fmt: skip
    assert response.status_code == 302
    page = _text(signed_in.get(f"/knowledge/{article_id}"))
    assert "Version 2 (this one)" in page and f"/knowledge/{article_id}/versions/1" in page
    assert "Unplug" in _text(signed_in.get(f"/knowledge/{article_id}/versions/1"))
    preview = post(
        signed_in, "/knowledge/preview", {"body": "# Hi\n[x](javascript:alert(1))"}, headers={"HX-Request": "true"}
    )
    assert "<h1>Hi</h1>" in preview.get_data(as_text=True) and 'href="javascript' not in preview.get_data(as_text=True)


def test_the_ticket_panel_suggests_and_resolves_with_an_article(signed_in, make, agent):
    admin = make.user("admin")
    article = _article(admin, title="Outlook keeps asking for the password", body="Clear the credential cache.")
    ticket = tickets.create_ticket({"kind": "incident", "title": "Outlook asks for my password"}, agent)
    _db.session.commit()
    page = _text(signed_in.get(f"/tickets/{ticket.id}"))
    assert f"/tickets/{ticket.id}/knowledge" in page
    panel = _text(signed_in.get(f"/tickets/{ticket.id}/knowledge", headers={"HX-Request": "true"}))
    assert "Outlook keeps asking for the password" in panel and "Resolve with this article" in panel
    response = post(signed_in, f"/tickets/{ticket.id}/knowledge/resolve", {"article_id": article.id, "resolve": "1"})
    assert response.status_code == 302
    _db.session.expire_all()
    assert tickets.get_ticket(ticket.id, None).state == "resolved"
    assert services.get_article(article.id, None).resolved_count == 1
    panel = _text(signed_in.get(f"/tickets/{ticket.id}/knowledge", headers={"HX-Request": "true"}))
    assert "Resolved with" in panel and "It has resolved 1 ticket." in panel
    # a draft can't resolve: the refusal is shown, nothing changes
    draft = _article(admin, title="Draft", state="draft")
    response = post(signed_in, f"/tickets/{ticket.id}/knowledge/resolve", {"article_id": draft.id})
    assert response.status_code == 302
    assert services.resolution_of(ticket).article_id == article.id


def test_the_portal_shows_only_published_articles_for_everyone(client, make):
    admin = make.user("admin")
    public = _article(admin, title="Connect to the guest wifi", visibility="everyone")
    internal = _article(admin, title="Wifi controller reboot", visibility="agents")
    requester = make.user("requester")
    sign_in(client, requester)
    page = _text(client.get("/portal/knowledge?q=wifi"))
    assert "Connect to the guest wifi" in page and "Wifi controller reboot" not in page
    assert client.get(f"/portal/knowledge/{public.id}").status_code == 200
    assert client.get(f"/portal/knowledge/{internal.id}").status_code == 404
    assert client.get("/knowledge").status_code == 403
    assert client.get(f"/knowledge/{public.id}").status_code == 403  # the portal's page is theirs
    fragment = _text(client.get("/portal/knowledge/suggest?title=guest+wifi+broken", headers={"HX-Request": "true"}))
    assert "Connect to the guest wifi" in fragment and "controller" not in fragment
    assert "kb-suggestions" in _text(client.get("/portal/new"))
