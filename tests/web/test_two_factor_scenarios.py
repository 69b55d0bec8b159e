"""Two-factor sign-in in Debian's Chromium against gunicorn (two workers): a technician enrols from
their account page (the QR code drawn inline, the key in text), confirms with a code from pyotp
(the algorithm an authenticator app runs), keeps the recovery codes shown once, signs out, and
signs in again through the second step. Every page passes axe-core; screenshots under
tests/web/output/."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import expect

from tests.web.test_scenarios import _check, _sign_in


def test_a_technician_enrols_and_signs_in_with_a_code(page, web_server):
    tech = web_server.user("agent", name="Tove Totp 9301")
    _sign_in(page, tech)
    page.goto("/account")
    expect(page.locator("#two-factor-state")).to_have_text("Off: your password alone signs you in.")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    page.get_by_role("button", name="Set up two-factor sign-in").click()

    qr = page.locator("#qr-code svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box["width"] >= 150 and abs(box["width"] - box["height"]) < 1  # a square code, big enough to scan
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert len(secret) == 32 and pyotp.TOTP(secret).provisioning_uri(name=tech.email)  # a base32 key
    _check(page, "enrolment")

    totp = pyotp.TOTP(secret)
    page.get_by_label("Code", exact=True).fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    _check(page, "recovery-codes")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("E-mail").fill(tech.email)
    page.get_by_label("Password").fill(tech.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)  # not signed in between the steps
    _check(page, "second-step")

    page.get_by_label("Code").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not valid")).to_be_visible()
    _check(page, "wrong-code", status=401)

    # The confirming code's step is spent; the next step's code is within the accepted drift.
    page.get_by_label("Code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/account")
    expect(page.locator("#two-factor-state")).to_have_text("On: signing in asks for a code from your app.")
