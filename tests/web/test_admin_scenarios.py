"""The admin pages in Debian's Chromium against gunicorn (two workers): an admin subscribes a real HTTP
receiver to CI changes, changes a CI through its page and sees the signed delivery arrive and show
as delivered in the webhook's log; and every admin page passes axe-core at desktop and phone width.
Screenshots under tests/web/output/."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.peers import Receiver
from tests.web.browser import shoot
from tests.web.test_scenarios import _check, _sign_in


def test_an_admin_creates_a_webhook_changes_a_ci_and_sees_the_delivery(page, web_server):
    admin = web_server.user("admin", name="Ada Admin 9101")

    def make():
        from cmdb.services import create_ci

        return create_ci({"name": "db-core-9101", "ci_class": "server", "status": "deployed"}).id

    ci_id = web_server.seed(make)
    receiver = Receiver()
    try:
        _sign_in(page, admin)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
        expect(page.get_by_role("heading", name="Administration")).to_be_visible()
        _check(page, "admin-index")

        page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        page.get_by_label("Name").fill("ITSM bridge 9101")
        page.get_by_label("Target URL (http or https)").fill(receiver.url)
        page.get_by_label("ci.updated").check()
        page.get_by_role("button", name="Create webhook").click()

        # the secret, once
        secret_box = page.locator("#new-secret")
        expect(secret_box).to_be_visible()
        secret = secret_box.inner_text().strip()
        assert len(secret) >= 32
        receiver.secret = secret
        expect(page.get_by_role("heading", name="ITSM bridge 9101")).to_be_visible()
        expect(page.get_by_text("Nothing delivered yet")).to_be_visible()
        _check(page, "webhook-created")
        # from the list to its page: the secret is not shown again
        page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name="ITSM bridge 9101").click()
        expect(page.get_by_role("heading", name="ITSM bridge 9101")).to_be_visible()
        expect(page.locator("#new-secret")).to_have_count(0)
        assert secret not in page.content()
        hook_page = page.url
        assert re.search(r"/admin/webhooks/\d+$", hook_page)

        # a change through a page: the server goes to maintenance
        page.goto(f"/cis/{ci_id}")
        page.get_by_role("button", name="Send to maintenance").click()
        expect(page.get_by_text("db-core-9101 moved from Deployed to In maintenance.")).to_be_visible()

        # the receiver gets it, signed with the secret shown once
        assert receiver.arrived.wait(60), "no delivery reached the receiver"
        got = receiver.requests[0]
        data = got["json"]["data"]
        assert got["json"]["event"] == "ci.updated" and data["object_id"] == ci_id
        assert data["changes"]["status"] == ["deployed", "in_maintenance"] and data["actor"] == admin.email
        assert got["signature_ok"] is True

        # and the admin sees it delivered in the log
        page.goto(hook_page)
        deadline = time.monotonic() + 30
        row = page.locator("table.deliveries tbody tr").first
        while "delivered" not in row.inner_text() and time.monotonic() < deadline:
            time.sleep(0.5)
            page.reload()
        expect(row).to_contain_text("ci.updated")
        expect(row.locator(".badge")).to_have_text("delivered")
        expect(row).to_contain_text("200")
        _check(page, "webhook-delivery-log")
        page.set_viewport_size({"width": 390, "height": 844})
        shoot(page, "webhook-delivery-log-phone")
    finally:
        receiver.close()


def test_every_admin_page_is_accessible_at_desktop_and_phone_width(page, web_server):
    admin = web_server.user("admin", name="Ada Admin 9102")

    def make():
        from cairn.auth.services import create_team
        from integrations.email.models import InboundEmail
        from integrations.webhooks.services import create_webhook

        create_team("Network 9102", "network-9102@example.com")
        for status, reason in (("failed", "ValueError: broken MIME boundary"), ("ignored", "auto-reply (X-Autoreply)")):
            raw = f"From: someone@example.com\r\nSubject: {status} 9102\r\n\r\nbody".encode()
            row = InboundEmail(
                mailbox="default", message_key=f"<{status}-9102@example.com>", sha256="0" * 64, size=len(raw),
                raw=raw, source="http", status=status, reason=reason, from_address="someone@example.com",
                subject=f"{status} 9102",
            )  # fmt: skip
            from cairn.db import db

            db.session.add(row)
        hook, _ = create_webhook({"url": "https://93.184.216.34/hook", "events": ["ci.*"], "name": "Public 9102"})
        return hook.id

    hook_id = web_server.seed(make)
    _sign_in(page, admin)
    pages = [
        ("/admin", "index"),
        ("/admin/users", "users"),
        (f"/admin/users/{admin.id}", "user"),
        ("/admin/teams", "teams"),
        ("/admin/webhooks", "webhooks"),
        (f"/admin/webhooks/{hook_id}", "webhook"),
        ("/admin/mail", "mail"),
        ("/admin/mail/outbound", "outbound"),
        ("/admin/relationship-types", "relationship-types"),
        ("/admin/changelog", "changelog"),
    ]
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path, name in pages:
            page.goto(path)
            _check(page, f"{name}-{width}")
    # the mail intake shows why a message failed, and offers to reprocess it
    page.goto("/admin/mail?status=failed")
    expect(page.get_by_text("ValueError: broken MIME boundary")).to_be_visible()
    page.get_by_role("button", name=re.compile("Reprocess message")).click()
    expect(page.get_by_text(re.compile(r"Mail \d+ is queued to be processed again\."))).to_be_visible()
    # the change log narrows to the team just seeded
    page.goto("/admin/changelog")
    page.get_by_label("Object type").select_option("team")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name=re.compile("Network 9102"))).to_be_visible()
    _check(page, "changelog-filtered")
