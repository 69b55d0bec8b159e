"""Fixtures of the OpenID Connect tests: a provider of our own on a free port (real HTTP), the app
pointed at it for one test, and the flow driven as a browser would (tests/oidc/servers.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.oidc.servers import CraftedProvider


@pytest.fixture(scope="session")
def crafted_server():
    server = CraftedProvider()
    yield server
    server.stop()


@pytest.fixture
def crafted(app, crafted_server, monkeypatch):
    """The app configured for ``crafted_server`` (fresh caches, nothing spoilt); ``crafted.configure(**more)``
    changes settings (None removes one)."""
    from cairn.directory import oidc
    from web.shell import limiter

    server = crafted_server
    server.spoil, server.down, server.with_end_session = {}, False, True
    server.account = {"sub": "crafted-1", "email": "carol@example.net", "name": "Carol Crafted", "groups": []}
    server.fetches.clear()
    server.key, server.published = server.first_key, [server.first_key]

    def configure(**settings):
        for key, value in settings.items():
            if value is None:
                monkeypatch.delitem(app.config, key, raising=False)
            else:
                monkeypatch.setitem(app.config, key, value)

    server.configure = configure
    configure(**server.settings())
    oidc.forget()
    limiter.reset()
    yield server
    oidc.forget()
    limiter.reset()


def start(client) -> str:
    """Press "Sign in with ...": Cairn's redirect to the provider's authorisation endpoint."""
    answer = client.get("/login/oidc")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return answer.headers["Location"]


def authorize(location: str) -> str:
    """The browser at the provider: it answers with the redirect back to Cairn's callback."""
    answer = httpx.get(location, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["Location"]


def callback(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(client):
    """The whole flow; Cairn's answer to the callback."""
    return callback(client, authorize(start(client)))
