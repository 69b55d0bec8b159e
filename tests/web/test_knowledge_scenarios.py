"""The knowledge base in Debian's Chromium against gunicorn: an agent writes an article with a
preview, an admin publishes it, the agent resolves a ticket with it from the ticket's page; a
requester finds it in the portal and sees it suggested while writing a new ticket. Each page is
checked with axe-core and photographed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in

BODY = """Outlook asks for the password again and again after a password change.

1. Close **Outlook**.
2. Open *Credential Manager* and remove the entries named `MicrosoftOffice16`.
3. Start Outlook and sign in once.

| Version | Entry |
|---|---|
| Office 2019 | MicrosoftOffice16 |

<script>alert('nope')</script> [not a link](javascript:alert(1))
"""


def test_an_agent_writes_an_article_and_resolves_a_ticket_with_it(page, new_page, web_server):
    tag = "7301"
    agent = web_server.user("agent", name=f"Kim Knowledge {tag}")
    admin = web_server.user("admin", name=f"Ari Admin {tag}")

    def make():
        from tickets.services import create_ticket

        return create_ticket({"kind": "incident", "title": f"Outlook keeps asking for my password {tag}"}, None).id

    ticket_id = web_server.seed(make)
    _sign_in(page, agent)
    page.goto("/knowledge")
    _check(page, "knowledge-list-empty-search")
    page.get_by_role("link", name="New article").click()
    page.get_by_label("Title").fill(f"Outlook asks for the password again {tag}")
    page.get_by_label("Body (Markdown)").fill(BODY)
    page.get_by_label("Requesters too").check()
    page.get_by_label("Kinds of CI it is about").select_option("laptop")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview.locator("strong", has_text="Outlook")).to_be_visible()
    expect(preview.locator("table")).to_be_visible()
    expect(preview).to_contain_text("<script>")  # shown as text, never run
    assert preview.locator("a[href^='javascript']").count() == 0
    _check(page, "knowledge-editor-preview")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The article was saved as a draft.")).to_be_visible()
    page.get_by_role("button", name="Send to review").click()
    expect(page.get_by_text("The article is now In review.")).to_be_visible()
    expect(page.get_by_role("button", name="Publish")).to_have_count(0)
    _check(page, "knowledge-article-in-review")
    article_url = page.url

    reviewer = new_page()
    _sign_in(reviewer, admin)
    reviewer.goto(article_url)
    reviewer.get_by_role("button", name="Publish").click()
    expect(reviewer.get_by_text("The article is now Published.")).to_be_visible()
    _check(reviewer, "knowledge-article-published")

    page.goto(f"/tickets/{ticket_id}")
    panel = page.locator("#knowledge")
    expect(panel.get_by_role("link", name=f"Outlook asks for the password again {tag}")).to_be_visible()
    expect(panel).to_contain_text("Found by its words")
    panel.scroll_into_view_if_needed()
    _check(page, "ticket-with-suggested-article")
    panel.get_by_role("button", name="Resolve with this article").first.click()
    expect(page.get_by_text(re.compile(r"is resolved with “Outlook asks"))).to_be_visible()
    expect(page.locator("#knowledge")).to_contain_text("It has resolved 1 ticket.")
    page.locator("#knowledge").scroll_into_view_if_needed()
    _check(page, "ticket-resolved-with-article")
    page.goto(article_url)
    expect(page.get_by_text("1 ticket", exact=True)).to_be_visible()
    page.goto(f"/knowledge?q=outlook+{tag}")
    expect(page.get_by_role("link", name=f"Outlook asks for the password again {tag}")).to_be_visible()
    _check(page, "knowledge-list-search")


def test_a_requester_finds_articles_in_the_portal_and_while_writing_a_ticket(page, web_server):
    tag = "7302"
    requester = web_server.user("requester", name=f"Rita Requester {tag}")

    def make():
        from tickets.knowledge.services import create_article

        create_article({"title": f"Connect to the guest wifi {tag}", "state": "published", "visibility": "everyone",
                        "body": f"Choose **Guest-{tag}** and accept the terms."}, None)  # fmt: skip
        create_article({"title": f"Wifi controller failover {tag}", "state": "published", "body": "Internal."}, None)

    web_server.seed(make)
    _sign_in(page, requester)
    page.goto("/portal")
    page.get_by_role("link", name="Help articles").first.click()
    page.get_by_label("What do you need help with?").fill(f"wifi {tag}")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=f"Connect to the guest wifi {tag}")).to_be_visible()
    expect(page.get_by_text(f"Wifi controller failover {tag}")).to_have_count(0)
    _check(page, "portal-help-articles-search")
    page.get_by_role("link", name=f"Connect to the guest wifi {tag}").click()
    expect(page.locator(".article-body strong")).to_have_text(f"Guest-{tag}")
    _check(page, "portal-help-article")

    page.goto("/portal/new")
    page.get_by_label("Summary").fill(f"Guest wifi {tag} does not work")
    suggestions = page.locator("#kb-suggestions")
    expect(suggestions.get_by_role("link", name=f"Connect to the guest wifi {tag}")).to_be_visible()
    expect(suggestions).not_to_contain_text("failover")
    _check(page, "portal-new-ticket-with-suggestions")
