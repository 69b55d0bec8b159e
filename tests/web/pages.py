"""Signing in with Flask's test client, as a browser would: the CSRF token from the form, then the
session cookie. For page tests that need no real browser (tests/web/test_*_pages.py)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the current session, read off a page's form."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, user, password: str = PASSWORD):
    """Sign ``user`` in on ``client`` (setting the password first when the user has none)."""
    if user.password_hash is None:
        from cairn.auth.services import set_password
        from cairn.db import db

        set_password(user, password)
        db.session.commit()
    response = client.post("/login", data={"email": user.email, "password": password, "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def post(client, path: str, data: dict | None = None, **kwargs):
    """A form POST with the session's CSRF token."""
    form = {"csrf_token": csrf_token(client, "/account"), **(data or {})}
    return client.post(path, data=form, **kwargs)
