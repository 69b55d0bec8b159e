"""The web desk as people use it, in Debian's Chromium against gunicorn (two workers) on this run's
database: a technician works an incident from search to resolution and sees it on the laptop's
timeline; a requester raises a request for their phone and sees only what is theirs; signed out,
nothing opens, a forged form is refused and script stays text. Every page is checked with axe-core
and photographed under tests/web/output/."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import expect

from tests.web.browser import assert_accessible, console_errors, shoot
from tests.web.browser import sign_in as _sign_in


def _estate(server, tag: str) -> dict:
    """A technician, a requester with a laptop and a phone, another requester with a ticket."""
    tech = server.user("agent", name=f"Tess Tech {tag}")
    requester = server.user("requester", name=f"Rosalind Quist{tag}")
    other = server.user("requester", name=f"Otto Other {tag}")

    def make():
        from cmdb.services import create_ci
        from tickets.services import create_ticket

        laptop = create_ci(
            {"name": f"LT-{tag}", "ci_class": "laptop", "status": "deployed", "asset_tag": f"LAP-{tag}",
             "serial_number": f"SN{tag}", "assigned_to_id": requester.id, "attributes": {"hostname": f"lt-{tag}"}}
        )  # fmt: skip
        phone = create_ci(
            {"name": f"PH-{tag}", "ci_class": "mobile_phone", "status": "deployed", "asset_tag": f"MOB-{tag}",
             "assigned_to_id": requester.id}
        )  # fmt: skip
        foreign = create_ticket({"kind": "incident", "title": f"Otto's printer {tag}"}, None)
        foreign.requester_id = other.id
        return {"laptop": laptop.id, "phone": phone.id, "foreign_ticket": foreign.id}

    return {"tech": tech, "requester": requester, "other": other, **server.seed(make)}


def _check(page, name: str, status: int = 200) -> None:
    """Every page a scenario reaches: accessible, no console errors (CSP included), photographed. An
    error page's own status is the one console error it may log."""
    shoot(page, name)
    assert_accessible(page)
    allowed = f"the server responded with a status of {status}"
    assert [e for e in _new_errors(page) if status == 200 or allowed not in e] == []


def _new_errors(page) -> list[str]:
    """The console errors since the last call (a page's log grows for the whole test)."""
    errors = console_errors(page)
    seen = getattr(page, "_errors_seen", 0)
    page._errors_seen = len(errors)
    return errors[seen:]


def test_a_technician_works_an_incident_from_search_to_the_laptops_timeline(page, web_server):
    estate = _estate(web_server, "4711")
    _sign_in(page, estate["tech"])
    expect(page).to_have_url(re.compile(r"/desk$"))
    _check(page, "desk")

    # find the laptop by its user's name through the search box ("/" focuses it)
    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
    page.keyboard.type("Quist4711")
    suggestion = page.locator("#search-suggestions").get_by_role("option", name=re.compile("LT-4711"))
    expect(suggestion).to_be_visible()
    _check(page, "search-typeahead")
    suggestion.click()
    expect(page).to_have_url(re.compile(rf"/cis/{estate['laptop']}$"))
    expect(page.get_by_role("heading", level=1, name="LT-4711")).to_be_visible()
    _check(page, "laptop")

    # open an incident against it
    page.get_by_role("link", name=re.compile("Open an incident on this CI")).click()
    expect(page).to_have_url(re.compile(r"/tickets/new"))
    page.get_by_label("Title").fill("Laptop will not wake from sleep")
    page.get_by_label("Description").fill("Since this morning's update.")
    _check(page, "new-incident")
    page.get_by_role("button", name="Open ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    ticket_url = page.url
    expect(page.locator("#ticket-title")).to_have_text("Laptop will not wake from sleep")
    expect(page.locator("#cis")).to_contain_text("LT-4711")

    # an internal note, posted with htmx: it appears without a reload, marked internal (the page's
    # own htmx parts, the map and the probable causes, have loaded first)
    page.wait_for_load_state("networkidle")
    page.get_by_label("Add a comment or an internal note").fill("Checked the BIOS <b>version</b>: outdated.")
    page.get_by_label(re.compile("Internal note")).check()
    page.get_by_role("button", name="Add", exact=True).click()
    note = page.locator("#comment-list .comment.internal").last
    expect(note).to_contain_text("Checked the BIOS <b>version</b>: outdated.")
    assert page.url == ticket_url

    # in progress, then resolved with a note
    page.get_by_role("button", name="Start work").click()
    expect(page.locator(".flash").first).to_be_visible()
    page.get_by_text("Resolve", exact=True).first.click()  # opens the move's form
    page.get_by_label("Resolution note").fill("Updated the BIOS; wakes fine now.")
    page.get_by_label("Resolution code").select_option(index=1)
    page.locator("details.move[open] button[type=submit]").click()
    expect(page.locator(".callout.ok")).to_contain_text("Updated the BIOS; wakes fine now.")
    _check(page, "ticket-resolved")

    # all of it on the laptop's timeline
    page.goto(f"/cis/{estate['laptop']}")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Laptop will not wake from sleep")
    expect(timeline).to_contain_text("Checked the BIOS")
    expect(timeline).to_contain_text(re.compile("in progress|in_progress", re.I))
    expect(timeline).to_contain_text(re.compile("resolved", re.I))
    _check(page, "laptop-timeline")


def test_a_requester_raises_a_request_and_sees_only_what_is_theirs(page, new_page, web_server):
    estate = _estate(web_server, "8150")
    _sign_in(page, estate["requester"])
    expect(page).to_have_url(re.compile(r"/portal$"))
    _check(page, "portal")

    page.get_by_role("link", name="Ask for something").click()
    page.get_by_label("Which of your things is it about?").select_option(label="PH-8150 (MOB-8150)")
    page.get_by_label("Summary").fill("New SIM card, please")
    page.get_by_label("Details").fill("Travelling next week.")
    _check(page, "portal-new")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/\d+$"))
    ticket_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_contain_text("New SIM card, please")

    # another person's ticket by URL: the 404 page
    response = page.goto(f"/portal/tickets/{estate['foreign_ticket']}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
    _check(page, "not-found", status=404)
    assert page.goto(f"/cis/{estate['phone']}").status == 403  # the desk's pages are not theirs
    assert len(_new_errors(page)) == 1  # the 403 itself
    page.goto(f"/tickets/{ticket_id}")  # a ticket's one address leads into the portal
    expect(page).to_have_url(re.compile(rf"/portal/tickets/{ticket_id}$"))

    # the technician answers publicly and notes something internally
    tech_page = new_page()
    _sign_in(tech_page, estate["tech"])
    tech_page.goto(f"/tickets/{ticket_id}")
    tech_page.wait_for_load_state("networkidle")
    tech_page.get_by_label("Add a comment or an internal note").fill("Your SIM is on its way.")
    tech_page.get_by_role("button", name="Add", exact=True).click()
    expect(tech_page.locator("#comment-list")).to_contain_text("Your SIM is on its way.")
    tech_page.get_by_label("Add a comment or an internal note").fill("Billing code 42-X, do not tell.")
    tech_page.get_by_label(re.compile("Internal note")).check()
    tech_page.get_by_role("button", name="Add", exact=True).click()
    expect(tech_page.locator("#comment-list .comment.internal")).to_contain_text("Billing code 42-X")

    page.goto(f"/portal/tickets/{ticket_id}")
    conversation = page.locator("#conversation")
    expect(conversation).to_contain_text("Your SIM is on its way.")
    expect(conversation).not_to_contain_text("Billing code")
    assert "Billing code" not in page.content()
    _check(page, "portal-ticket")


def test_signed_out_nothing_opens_a_forged_form_is_refused_and_script_stays_text(page, new_page, web_server):
    estate = _estate(web_server, "9090")
    for path in ("/", "/desk", "/tickets", f"/cis/{estate['laptop']}", "/portal", "/account", "/search?q=LT"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/login\?next="))
    _check(page, "sign-in")

    # a cross-site form post with the victim's cookie but without the token: refused, nothing written
    _sign_in(page, estate["tech"])
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    body = urllib.parse.urlencode({"name": "forged"}).encode()
    forged = urllib.request.Request(f"{web_server.url}/account/tokens", data=body, headers={"Cookie": cookies})
    try:
        urllib.request.urlopen(forged)
        raise AssertionError("the forged POST was accepted")
    except urllib.error.HTTPError as refused:
        assert refused.code == 400
    page.goto("/account")
    expect(page.get_by_text("You have no tokens.")).to_be_visible()
    _check(page, "account")

    # a comment with a script in it is shown as text and runs nothing
    page.goto("/tickets/new")
    page.get_by_label("Title").fill("<script>window.pwned=1</script> printer")
    page.get_by_role("button", name="Open ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    page.get_by_label("Add a comment or an internal note").fill(
        '<script>window.pwned=2</script><img src=x onerror="window.pwned=3">'
    )
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#comment-list")).to_contain_text("<script>window.pwned=2</script>")
    page.reload()
    expect(page.locator("#ticket-title")).to_contain_text("<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None
    _check(page, "script-as-text")
