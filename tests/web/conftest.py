"""Fixtures of the web desk's browser tests: `web_server` (the deployed app on its own database),
`browser` (Debian's Chromium through Playwright), `page` (a fresh context per test) and `new_page`
(more of them, for a second user). Helpers to use in tests (`shoot`, `assert_accessible`,
`console_errors`) are in tests/web/browser.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.web.browser import CHROMIUM, launch, open_page, start_web_server, stop_web_server

# What a person sees may take a while when the suite shares two cores with the server, two gunicorn
# workers and Chromium (a page's htmx parts queue behind each other): wait up to 15 s for it.
try:
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
except ImportError:  # the harness says what to install
    pass


@pytest.fixture(scope="session")
def web_server():
    """The real app, as deployed: gunicorn with two workers, no Redis (inline jobs, embedded runner), on
    a database of its own (not the suite's), created and migrated here and dropped at the end.
    ``.url`` is its base URL; ``.seed(fn)`` runs ``fn`` in an app context on that database and commits;
    ``.user(role, ...)`` creates a user who can sign in (``.email``, ``.password``)."""
    server = start_web_server()
    yield server
    stop_web_server(server)


@pytest.fixture(scope="session")
def playwright_instance():
    if not Path(CHROMIUM).exists():
        if os.geteuid() == 0:
            pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/ensure_chromium.sh` (make test does)")
        pytest.skip(f"the web tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    """Headless Debian Chromium (/usr/bin/chromium), one per session."""
    browser = launch(playwright_instance)
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser, web_server):
    """``new_page()`` opens a page in a fresh browser context (another user's), closed after the test."""
    opened = []

    def make():
        page = open_page(browser, web_server.url)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.context.close()


@pytest.fixture
def page(new_page):
    """A page in a fresh browser context (no cookies; 1280x800, en-US, UTC) whose relative URLs go to
    `web_server`; it records console errors (see `console_errors`). Nothing is saved on teardown:
    take screenshots with `shoot(page, name)`."""
    return new_page()


# Page tests with Flask's test client (tests/web/test_*_pages.py): an agent, and a client signed in as it.


@pytest.fixture
def agent(make):
    return make.user("agent", name="Ada Agent")


@pytest.fixture
def signed_in(client, agent):
    from tests.web.pages import sign_in

    sign_in(client, agent)
    return client
