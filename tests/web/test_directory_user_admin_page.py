"""A directory (LDAP) or single-sign-on (OIDC) user's admin page says their sign-in and its second
factor are their directory's or provider's business, not "Two-factor sign-in: Off"; a local user's
page still shows Cairn's own two-factor state."""

from __future__ import annotations

import re

import pytest

from tests.web.pages import sign_in


def _state(html: str) -> str:
    found = re.search(r'id="two-factor-state">([^<]*)<', html)
    assert found, html[:500]
    return found.group(1)


@pytest.mark.parametrize(
    "source, expected",
    [("ldap", "Handled by the directory (LDAP)"), ("oidc", "Handled by the identity provider (OIDC)")],
)
def test_a_directory_user_page_names_who_handles_the_second_factor(client, make, db, source, expected):
    user = make.user("agent")
    user.source = source
    db.session.commit()
    sign_in(client, make.user("admin"))
    html = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    state = _state(html)
    assert state.startswith(expected) and "Off" not in state
    assert "Reset two-factor" not in html
    signs_in = re.search(r'id="user-source">([^<]*)', html).group(1)
    assert ("identity provider" if source == "oidc" else "directory (LDAP)") in signs_in


def test_a_local_user_page_still_shows_the_two_factor_state(client, make):
    user = make.user("agent")
    sign_in(client, make.user("admin"))
    html = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert _state(html) == "Off"
    assert "a password kept by Cairn" in html
