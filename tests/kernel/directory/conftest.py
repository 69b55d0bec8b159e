"""Fixtures of the directory tests: a real slapd per session (tests/kernel/directory/slapd.py), the
app pointed at it for one test, and a sign-in through the web form."""

from __future__ import annotations

import pytest

from tests.kernel.directory.slapd import start_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture
def directory(app, slapd, monkeypatch):
    """The app configured for search-then-bind on ``slapd`` over StartTLS; ``directory(**more)``
    changes or adds settings (None removes one)."""

    def configure(**settings):
        for key, value in settings.items():
            if value is None:
                monkeypatch.delitem(app.config, key, raising=False)
            else:
                monkeypatch.setitem(app.config, key, value)
        return slapd

    configure(**slapd.settings())
    return configure


@pytest.fixture(autouse=True)
def _fresh_sign_in_limits(app):
    from web.shell import limiter

    limiter.reset()
    yield
    limiter.reset()


def web_sign_in(client, email: str, password: str):
    from tests.web.pages import csrf_token

    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})
