"""The knowledge base through the API: states and who moves them, visibility, Markdown sanitised,
versions from the change log, full-text search ranked (both databases), suggestions for a ticket
and a draft, resolutions and their count, bad input and scopes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from cairn.audit.models import ChangeLog

ARTICLES = "/api/v1/articles"


@pytest.fixture
def people(make):
    """Headers for an admin, an agent, a change manager, a requester, an auditor."""
    return {role: make.headers(role) for role in ("admin", "agent", "change_manager", "requester", "auditor")}


@pytest.fixture
def article(client, people):
    """``article(**fields)`` POSTs an article (as the admin unless ``as_`` names a role) and returns it."""

    def build(as_="admin", **fields):
        body = {"title": "How to reset a password", "body": "Open the *portal*.", **fields}
        r = client.post(ARTICLES, json=body, headers=people[as_])
        assert r.status_code == 201, r.json
        return r.json

    return build


def patch(client, headers, article_id, **body):
    return client.patch(f"{ARTICLES}/{article_id}", json=body, headers=headers)


# --- states and who may move them -------------------------------------------------------------


def test_an_article_goes_from_draft_to_review_to_published_to_retired(client, people, article):
    a = article(as_="agent")
    assert (a["state"], a["visibility"], a["revision"], a["resolved_count"]) == ("draft", "agents", 1, 0)
    assert a["author"]["id"] is not None

    r = patch(client, people["agent"], a["id"], state="review")
    assert r.status_code == 200 and r.json["state"] == "review"
    # an agent writes and submits; publishing is for admins and change managers
    r = patch(client, people["agent"], a["id"], state="published")
    assert r.status_code == 403, r.json
    r = patch(client, people["change_manager"], a["id"], state="published")
    assert r.status_code == 200 and r.json["state"] == "published" and r.json["published_at"]
    # a published article: an agent may not change it (the change would be live at once)
    r = patch(client, people["agent"], a["id"], body="changed")
    assert r.status_code == 403
    r = patch(client, people["admin"], a["id"], state="review")
    assert r.status_code == 409 and set(r.json["allowed"]) == {"retired", "draft"}
    assert r.headers["Content-Type"].startswith("application/problem+json")
    r = patch(client, people["admin"], a["id"], state="retired")
    assert r.status_code == 200 and r.json["state"] == "retired"
    r = patch(client, people["admin"], a["id"], title="Edited while retired")
    assert r.status_code == 409
    r = patch(client, people["admin"], a["id"], state="draft", title="Reworked")
    assert r.status_code == 200 and (r.json["state"], r.json["title"], r.json["revision"]) == ("draft", "Reworked", 2)


def test_the_auditor_and_the_requester_may_not_write(client, people, article):
    for role in ("auditor", "requester"):
        r = client.post(ARTICLES, json={"title": "x"}, headers=people[role])
        assert r.status_code == 403, role
    a = article()
    assert client.delete(f"{ARTICLES}/{a['id']}", headers=people["agent"]).status_code == 403
    assert client.delete(f"{ARTICLES}/{a['id']}", headers=people["admin"]).status_code == 204
    assert client.get(f"{ARTICLES}/{a['id']}", headers=people["admin"]).status_code == 404


# --- visibility -------------------------------------------------------------------------------


def test_requesters_see_only_published_articles_for_everyone(client, people, article):
    public = article(title="Printer jam public", state="published", visibility="everyone")
    internal = article(title="Printer jam internal", state="published", visibility="agents")
    draft = article(title="Printer jam draft", visibility="everyone")
    retired = article(title="Printer jam retired", state="published", visibility="everyone")
    assert patch(client, people["admin"], retired["id"], state="retired").status_code == 200

    r = client.get(ARTICLES, headers=people["requester"])
    assert [a["id"] for a in r.json] == [public["id"]]
    r = client.get(ARTICLES, query_string={"q": "printer"}, headers=people["requester"])
    assert [a["id"] for a in r.json] == [public["id"]]
    for hidden in (internal, draft, retired):
        assert client.get(f"{ARTICLES}/{hidden['id']}", headers=people["requester"]).status_code == 404
    assert client.get(f"{ARTICLES}/{public['id']}", headers=people["requester"]).status_code == 200
    # staff see every state, the auditor too
    r = client.get(ARTICLES, query_string={"q": "printer jam"}, headers=people["auditor"])
    assert {a["id"] for a in r.json} == {public["id"], internal["id"], draft["id"], retired["id"]}
    r = client.get(ARTICLES, query_string={"state": "draft"}, headers=people["agent"])
    assert [a["id"] for a in r.json] == [draft["id"]]
    # the past versions are for staff
    assert client.get(f"{ARTICLES}/{public['id']}/versions", headers=people["requester"]).status_code == 403


# --- Markdown, sanitised ----------------------------------------------------------------------


def test_the_body_is_rendered_and_sanitised(client, people, article):
    body = (
        "# Fix\n\n**Restart** the [spooler](https://example.com/spool) and `net stop spooler`.\n\n"
        "<script>alert(1)</script>\n\n[click](javascript:alert(2)) [data](data:text/html;base64,PHNjcmlwdD4=)\n\n"
        '<img src="x" onerror="alert(3)">\n\n| a | b |\n|---|---|\n| 1 | 2 |\n'
    )
    a = article(body=body)
    html = a["body_html"]
    assert "<h1>Fix</h1>" in html and "<strong>Restart</strong>" in html and "<code>net stop spooler</code>" in html
    assert '<a href="https://example.com/spool" rel="noopener noreferrer nofollow">spooler</a>' in html
    assert "<table>" in html and "<td>1</td>" in html
    tags = " ".join(re.findall(r"<[^>]*>", html)).lower()  # the markup, not the text shown
    for bad in ("<script", "javascript:", "data:", "onerror", "<img"):
        assert bad not in tags, bad
    assert "[click](javascript:alert(2))" in html  # the refused link is shown as the text it was
    assert "&lt;script&gt;" in html  # raw HTML is shown as text, not run
    assert a["body"] == body  # the source is kept as written
    # nh3 alone (whatever the Markdown renderer let through) keeps only safe markup
    from tickets.knowledge.render import sanitise

    cleaned = sanitise('<a href="javascript:x()" onclick="y()">a</a><script>z()</script><p style="color:red">p</p>')
    assert "javascript" not in cleaned and "onclick" not in cleaned and "script" not in cleaned
    assert "color" not in cleaned


# --- versions ---------------------------------------------------------------------------------


def test_every_version_is_in_the_change_log_and_can_be_read(client, people, article, db):
    a = article(title="VPN drops", body="Version one.")
    assert patch(client, people["agent"], a["id"], body="Version **two**.").json["revision"] == 2
    assert patch(client, people["agent"], a["id"], visibility="everyone").json["revision"] == 2  # not content
    assert patch(client, people["agent"], a["id"], title="VPN drops hourly").json["revision"] == 3
    r = client.get(f"{ARTICLES}/{a['id']}/versions", headers=people["agent"])
    assert [(v["revision"], v["title"]) for v in r.json] == [
        (1, "VPN drops"),
        (2, "VPN drops"),
        (3, "VPN drops hourly"),
    ]
    r = client.get(f"{ARTICLES}/{a['id']}/versions/2", headers=people["agent"])
    assert r.json["body"] == "Version **two**." and "<strong>two</strong>" in r.json["body_html"]
    assert client.get(f"{ARTICLES}/{a['id']}/versions/1", headers=people["agent"]).json["body"] == "Version one."
    assert client.get(f"{ARTICLES}/{a['id']}/versions/9", headers=people["agent"]).status_code == 404
    rows = db.session.scalars(
        select(ChangeLog).where(ChangeLog.object_type == "knowledge_article", ChangeLog.object_id == a["id"])
    ).all()
    assert [row.action for row in rows] == ["create", "update", "update", "update"]
    assert rows[1].changes["body"] == ["Version one.", "Version **two**."]
    assert "body_html" not in rows[1].changes


# --- search -----------------------------------------------------------------------------------


def test_search_ranks_title_matches_first_and_needs_every_word(client, people, article):
    in_body = article(title="Mail client settings", body="If Outlook shows the password prompt, check the mailbox.")
    in_title = article(title="Outlook asks for the password again", body="Sign out and in.")
    often = article(title="Outlook profile", body="Outlook: repair the Outlook profile; Outlook keeps its cache.")
    other = article(title="Printer offline", body="Turn it off and on.")

    r = client.get(ARTICLES, query_string={"q": "outlook password"}, headers=people["agent"])
    assert [a["id"] for a in r.json] == [in_title["id"], in_body["id"]]
    r = client.get(ARTICLES, query_string={"q": "Outlook"}, headers=people["agent"])
    ids = [a["id"] for a in r.json]
    assert set(ids) == {in_body["id"], in_title["id"], often["id"]} and ids[-1] == in_body["id"]
    assert other["id"] not in ids
    # a word's start finds it ("pass" -> password); case and accents aside
    r = client.get(ARTICLES, query_string={"q": "PASS"}, headers=people["agent"])
    assert {a["id"] for a in r.json} == {in_body["id"], in_title["id"]}
    assert r.headers["X-Pagination"]
    # search syntax is taken as words, never as the database's query language
    for q in ("outlook & !password", "'outlook'", 'outlook" OR "printer', "outlook*", "NEAR(outlook printer)"):
        r = client.get(ARTICLES, query_string={"q": q}, headers=people["agent"])
        assert r.status_code == 200, (q, r.json)
        assert other["id"] not in {a["id"] for a in r.json}, q


def test_a_search_without_a_word_or_too_long_is_422(client, people):
    for q in ("", "  ", "!!! ---", "x" * 201):
        r = client.get(ARTICLES, query_string={"q": q}, headers=people["agent"])
        assert r.status_code == 422 and "q" in r.json["errors"], q


# --- links and suggestions --------------------------------------------------------------------


def test_links_are_checked_and_filter_the_list(client, people, article, make):
    laptop = make.ci("laptop", name="LT-0042")
    problem = client.post(
        "/api/v1/tickets", json={"kind": "problem", "title": "Docks drop USB"}, headers=people["admin"]
    ).json
    incident = client.post("/api/v1/tickets", json={"kind": "incident", "title": "x"}, headers=people["admin"]).json
    a = article(ci_ids=[laptop.id], ci_classes=["laptop"], problem_ids=[problem["id"]])
    assert (a["ci_ids"], a["ci_classes"], a["problem_ids"]) == ([laptop.id], ["laptop"], [problem["id"]])
    for field, value in (
        ("ci_classes", ["no_such_class"]),
        ("ci_ids", [999999]),
        ("problem_ids", [incident["id"]]),
        ("category_ids", [999999]),
    ):
        r = client.post(ARTICLES, json={"title": "t", field: value}, headers=people["admin"])
        assert r.status_code == 422 and field in r.json["errors"], field
    r = client.get(ARTICLES, query_string={"problem_id": problem["id"]}, headers=people["agent"])
    assert [x["id"] for x in r.json] == [a["id"]]
    r = patch(client, people["admin"], a["id"], ci_classes=[], ci_ids=[laptop.id])
    assert r.json["ci_classes"] == [] and r.json["ci_ids"] == [laptop.id]
    assert client.get(ARTICLES, query_string={"ci_class": "laptop"}, headers=people["agent"]).json == []


def test_suggestions_for_a_ticket_come_from_its_words_and_its_cis(client, people, article, make):
    laptop = make.ci("laptop", name="LT-7")
    by_words = article(title="Docking station not detected", body="Update the dock firmware.", state="published")
    by_class = article(title="Laptop battery drains", body="Calibrate.", state="published", ci_classes=["laptop"])
    by_ci = article(title="LT-7 quirks", body="Known oddities.", state="published", ci_ids=[laptop.id])
    article(title="Docking station draft", body="dock", ci_classes=["laptop"])  # drafts are never suggested
    article(title="Printer", body="Toner.", state="published")

    ticket = client.post(
        "/api/v1/tickets",
        json={"kind": "incident", "title": "My docking station is not detected", "ci_ids": [laptop.id]},
        headers=people["agent"],
    ).json
    r = client.get(f"/api/v1/tickets/{ticket['id']}/suggested-articles", headers=people["agent"])
    assert r.status_code == 200
    got = {s["article"]["id"]: (s["reasons"], s["score"]) for s in r.json}
    # the best words' match and the article about the ticket's own CI score 1; about its class, 0.5
    assert got == {by_words["id"]: (["words"], 1.0), by_ci["id"]: (["ci"], 1.0), by_class["id"]: (["ci_class"], 0.5)}
    assert r.json[-1]["article"]["id"] == by_class["id"]
    scores = [s["score"] for s in r.json]
    assert scores == sorted(scores, reverse=True)
    assert r.json[0]["excerpt"]
    r = client.get(f"/api/v1/tickets/{ticket['id']}/suggested-articles?limit=1", headers=people["agent"])
    assert len(r.json) == 1
    assert client.get("/api/v1/tickets/999999/suggested-articles", headers=people["agent"]).status_code == 404


def test_a_draft_ticket_gets_suggestions_a_requester_may_read(client, people, article):
    public = article(title="Reset your password", body="Use the self-service page.", state="published",
                     visibility="everyone")  # fmt: skip
    article(title="Password vault for admins", body="Internal.", state="published")
    body = {"title": "I forgot my password", "description": "cannot log in"}
    r = client.post(f"{ARTICLES}/suggest", json=body, headers=people["requester"])
    assert r.status_code == 200 and [s["article"]["id"] for s in r.json] == [public["id"]]
    r = client.post(f"{ARTICLES}/suggest", json=body, headers=people["agent"])
    assert len(r.json) == 2
    r = client.post(f"{ARTICLES}/suggest", json={"title": "the and of"}, headers=people["agent"])
    assert r.status_code == 200 and r.json == []
    r = client.post(f"{ARTICLES}/suggest", json={"title": "x", "limit": 0, "colour": 1}, headers=people["agent"])
    assert r.status_code == 422 and {"limit", "colour"} <= set(r.json["errors"])


# --- resolutions ------------------------------------------------------------------------------


def test_attaching_an_article_as_resolution_counts_the_tickets_it_resolved(client, people, article):
    a = article(title="Reboot the router", state="published")
    b = article(title="Replace the cable", state="published")
    draft = article(title="Not yet")

    def incident(title):
        return client.post("/api/v1/tickets", json={"kind": "incident", "title": title}, headers=people["agent"]).json

    t1, t2 = incident("Network down"), incident("Wifi down")
    url = "/api/v1/tickets/{}/resolution-article"
    r = client.put(url.format(t1["id"]), json={"article_id": a["id"]}, headers=people["agent"])
    assert r.status_code == 200 and r.json["article"]["id"] == a["id"]
    r = client.put(url.format(t2["id"]), json={"article_id": a["id"], "resolve": True}, headers=people["agent"])
    assert r.status_code == 200
    resolved = client.get(f"/api/v1/tickets/{t2['id']}", headers=people["agent"]).json
    assert resolved["state"] == "resolved" and f"KB{a['id']}" in resolved["resolution_note"]
    assert client.get(f"{ARTICLES}/{a['id']}", headers=people["agent"]).json["resolved_count"] == 2
    # the same again changes nothing; another article moves the count
    client.put(url.format(t1["id"]), json={"article_id": a["id"]}, headers=people["agent"])
    assert client.get(f"{ARTICLES}/{a['id']}", headers=people["agent"]).json["resolved_count"] == 2
    client.put(url.format(t1["id"]), json={"article_id": b["id"]}, headers=people["agent"])
    assert client.get(f"{ARTICLES}/{a['id']}", headers=people["agent"]).json["resolved_count"] == 1
    assert client.get(f"{ARTICLES}/{b['id']}", headers=people["agent"]).json["resolved_count"] == 1
    assert client.get(url.format(t1["id"]), headers=people["agent"]).json["article"]["id"] == b["id"]
    assert client.delete(url.format(t1["id"]), headers=people["agent"]).status_code == 204
    assert client.get(f"{ARTICLES}/{b['id']}", headers=people["agent"]).json["resolved_count"] == 0
    assert client.get(url.format(t1["id"]), headers=people["agent"]).status_code == 404
    assert client.delete(url.format(t1["id"]), headers=people["agent"]).status_code == 404
    # a draft can't resolve anything; an unknown article is a field error; requesters don't attach
    r = client.put(url.format(t1["id"]), json={"article_id": draft["id"]}, headers=people["agent"])
    assert r.status_code == 409
    r = client.put(url.format(t1["id"]), json={"article_id": 999999}, headers=people["agent"])
    assert r.status_code == 422 and "article_id" in r.json["errors"]
    r = client.put(url.format(t1["id"]), json={"article_id": a["id"]}, headers=people["requester"])
    assert r.status_code == 403
    # an article that resolved tickets is retired, not deleted
    assert client.delete(f"{ARTICLES}/{a['id']}", headers=people["admin"]).status_code == 409


# --- bad input and scopes ---------------------------------------------------------------------


def test_bad_input_is_a_clear_problem_and_writes_nothing(client, people, db):
    before = db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1))
    cases = [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "t", "body": "x" * 100_001}, "body"),
        ({"title": "t", "state": "live"}, "state"),
        ({"title": "t", "visibility": "public"}, "visibility"),
        ({"title": "t", "ci_ids": ["3"]}, "ci_ids"),
        ({"title": "t", "ci_ids": list(range(1, 102))}, "ci_ids"),
        ({"title": "t", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        r = client.post(ARTICLES, json=body, headers=people["admin"])
        assert r.status_code == 422 and field in r.json["errors"], (body.keys(), r.json)
        assert r.headers["Content-Type"].startswith("application/problem+json")
    # an agent may not publish at once: 403, and no article is left behind
    r = client.post(ARTICLES, json={"title": "t", "state": "published"}, headers=people["agent"])
    assert r.status_code == 403
    assert db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1)) == before
    assert client.get(ARTICLES, headers=people["admin"]).json == []
    assert client.get(f"{ARTICLES}/0", headers=people["admin"]).status_code == 404
    assert client.get(f"{ARTICLES}/99999999999", headers=people["admin"]).status_code == 404
    r = client.get(ARTICLES, query_string={"sort": "size"}, headers=people["admin"])
    assert r.status_code == 422


def test_tokens_need_the_kb_write_scope_to_write(client, make):
    agent = make.user("agent")
    reader = {"Authorization": f"Bearer {make.token(agent, scopes=['read'])}"}
    writer = {"Authorization": f"Bearer {make.token(agent, scopes=['kb:write'])}"}
    assert client.post(ARTICLES, json={"title": "t"}, headers=reader).status_code == 403
    r = client.post(ARTICLES, json={"title": "t"}, headers=writer)
    assert r.status_code == 201
    assert client.get(ARTICLES, headers=reader).status_code == 200
    # a suggestion is a question: read is enough
    assert client.post(f"{ARTICLES}/suggest", json={"title": "vpn"}, headers=reader).status_code == 200
    assert client.get(ARTICLES).status_code == 401


def test_search_hits_for_the_global_search_respect_visibility(client, people, article, make):
    from cairn.auth.services import create_user
    from tickets.knowledge.services import search_hits

    public = article(title="Badge reader at the door", state="published", visibility="everyone")
    internal = article(title="Badge reader firmware", state="published")
    requester = create_user("hits-requester@example.com", "requester")
    assert [h["id"] for h in search_hits("badge reader", requester)] == [public["id"]]
    hits = search_hits("badge", None)
    assert {h["id"] for h in hits} == {public["id"], internal["id"]}
    assert hits[0]["url"] == f"/knowledge/{hits[0]['id']}" and hits[0]["score"] == 1.0
