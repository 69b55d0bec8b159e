"""Who reaches which page: every page declares its roles; signed out, everything but sign-in and the
static files leads to sign-in; a requester reaches only the portal; tokens never open a page and the
session cookie never opens the API; writes need the CSRF token; sign-in is throttled."""

from __future__ import annotations

import re

import pytest

from cairn.auth.guard import PUBLIC, SESSION_ATTR, declared_roles
from cairn.auth.roles import ALL_ROLES, REQUESTER
from tests.web.pages import PASSWORD, csrf_token, post, sign_in

OPEN_PAGES = {"/login"}
# The sign-in steps after the first (two-factor; single sign-on's way out and back): without a
# sign-in under way, back to the first.
SIGN_IN_STEPS = {"/login/code", "/login/oidc", "/login/oidc/callback"}
# What a requester may open besides the portal's own pages: the front door, the account (and its
# two-factor page), a ticket's one address (it leads into the portal), and the approvals of
# catalogue orders (a requester is often someone's manager).
REQUESTER_ALSO = {
    "/", "/account", "/account/two-factor", "/logout", "/tickets/<int:ticket_id>", "/approvals", *SIGN_IN_STEPS,
}  # fmt: skip


def _pages(app):
    for rule in app.url_map.iter_rules():
        if getattr(app.view_functions[rule.endpoint], SESSION_ATTR, False):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def _concrete(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)


def test_every_page_declares_its_roles(app):
    pages = list(_pages(app))
    assert len(pages) > 10
    with app.test_request_context():
        for rule, method in pages:
            declared = declared_roles(rule.endpoint, method)
            assert declared is not None, f"{method} {rule.rule} declares no roles"
            assert declared == PUBLIC or set(declared) <= set(ALL_ROLES)


def test_signed_out_every_page_leads_to_sign_in(app, client):
    for rule, method in _pages(app):
        path = _concrete(rule)
        if method == "GET":
            response = client.get(path)
            if rule.rule in OPEN_PAGES:
                assert response.status_code == 200
            elif rule.rule in SIGN_IN_STEPS:
                assert response.status_code == 302 and response.headers["Location"] == "/login", path
            else:
                assert response.status_code == 302, path
                assert response.headers["Location"].startswith("/login?next="), path
        else:
            # a write without a session has no CSRF token either: refused before anything runs
            response = client.open(path, method=method, data={})
            assert response.status_code == 400, f"{method} {path}"
            assert "text/html" in response.content_type


def test_static_files_are_open_and_the_api_still_wants_a_token(client):
    assert client.get("/static/css/cairn.css").status_code == 200
    response = client.get("/api/v1/me")
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_a_bearer_token_does_not_open_a_page(client, make):
    headers = make.headers("admin")
    response = client.get("/desk", headers=headers)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_session_cookie_does_not_open_the_api(client, make):
    sign_in(client, make.user("admin"))
    assert client.get("/desk").status_code == 200
    assert client.get("/api/v1/me").status_code == 401


def test_a_requester_reaches_only_the_portal(app, client, make):
    requester = make.user(REQUESTER)
    sign_in(client, requester)
    assert client.get("/").headers["Location"] == "/portal"
    reached = set()
    for rule, method in _pages(app):
        if method != "GET" or rule.rule in OPEN_PAGES:
            continue
        status = client.get(_concrete(rule)).status_code
        if status != 403:
            reached.add(rule.rule)
    assert reached, "the requester reached nothing"
    assert {r for r in reached if not r.startswith("/portal")} <= REQUESTER_ALSO
    page = client.get("/desk")
    assert page.status_code == 403 and "text/html" in page.content_type
    assert "may not open this page" in page.get_data(as_text=True)


def test_staff_land_at_the_desk_and_see_their_queues(client, make):
    agent = make.user("agent", name="Ada Agent")
    sign_in(client, agent)
    assert client.get("/").headers["Location"] == "/desk"
    page = client.get("/desk").get_data(as_text=True)
    assert "Ada Agent" in page and 'aria-label="My queues"' in page


def test_an_integration_account_cannot_sign_in(client, make):
    robot = make.user("integration")
    from cairn.auth.services import set_password

    set_password(robot, PASSWORD)
    make.db.session.commit()
    response = client.post(
        "/login", data={"email": robot.email, "password": PASSWORD, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 403
    assert client.get("/desk").status_code == 302


def test_a_wrong_password_says_so_and_signs_nobody_in(client, make):
    user = make.user("agent")
    sign_in(client, user)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    response = client.post("/login", data={"email": user.email, "password": "nope", "csrf_token": csrf_token(client)})
    assert response.status_code == 401
    assert "The e-mail or the password is wrong." in response.get_data(as_text=True)
    assert client.get("/desk").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(client, make):
    user = make.user("agent")
    from cairn.auth.services import set_password

    set_password(user, PASSWORD)
    make.db.session.commit()
    for target, expected in (
        ("/account", "/account"),
        ("//evil.example/x", "/desk"),
        ("https://evil.example", "/desk"),
    ):
        client.delete_cookie("cairn_session")
        response = client.post(
            "/login",
            data={"email": user.email, "password": PASSWORD, "next": target, "csrf_token": csrf_token(client)},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == expected, target


def test_a_forged_post_without_the_csrf_token_is_refused_and_changes_nothing(client, make):
    user = make.user("agent")
    sign_in(client, user)
    response = client.post("/account/tokens", data={"name": "forged", "expires_in_days": "30"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    from cairn.auth.services import tokens_of

    assert tokens_of(user) == []
    assert post(client, "/account/tokens", {"name": "real", "expires_in_days": "30"}).status_code == 201
    assert [t.name for t in tokens_of(user)] == ["real"]


def test_pages_carry_the_security_headers(client, make):
    sign_in(client, make.user("agent"))
    response = client.get("/desk")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(app, client, make):
    user = make.user("agent")
    from cairn.auth.services import set_password

    set_password(user, PASSWORD)
    make.db.session.commit()
    token = csrf_token(client)
    plain = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    cookie = next(h for h in plain.headers.getlist("Set-Cookie") if h.startswith("cairn_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    over_https = app.test_client()
    form = over_https.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    secure = over_https.post(
        "/login",
        base_url="https://localhost",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        headers={"Referer": "https://localhost/login"},
    )
    assert secure.status_code == 302
    cookie = next(h for h in secure.headers.getlist("Set-Cookie") if h.startswith("cairn_session="))
    assert "Secure" in cookie


def test_a_request_in_flight_does_not_overwrite_the_flash_a_write_just_set(app, client, make):
    """A browser's fragments load while a person clicks: the answer to one that left with the older
    cookie arrives after the write's answer. It must not send that older session back."""
    from cmdb.services import create_ci

    user = make.user("admin")
    sign_in(client, user)
    ci = create_ci({"name": "flash-race-1", "ci_class": "server", "status": "deployed"})
    make.db.session.commit()
    assert client.get(f"/cis/{ci.id}").status_code == 200
    before_the_write = client.get_cookie("cairn_session").value

    moved = post(client, f"/cis/{ci.id}/move", {"status": "in_maintenance"})
    assert moved.status_code == 302
    with_the_flash = client.get_cookie("cairn_session").value
    assert with_the_flash != before_the_write

    in_flight = app.test_client()  # the fragment that left before the click, with the older cookie
    in_flight.set_cookie("cairn_session", before_the_write)
    late = in_flight.get(f"/cis/{ci.id}/timeline", headers={"HX-Request": "true", "HX-Target": "timeline-entries"})
    assert late.status_code == 200
    for header in late.headers.getlist("Set-Cookie"):  # the browser keeps what the last answer set
        if header.startswith("cairn_session="):
            client.set_cookie("cairn_session", header.split(";", 1)[0].split("=", 1)[1])
    page = client.get(f"/cis/{ci.id}").get_data(as_text=True)
    assert "flash-race-1 moved from Deployed to In maintenance." in page


def test_unknown_pages_get_an_html_404_and_unknown_api_paths_problem_json(client, make):
    sign_in(client, make.user("agent"))
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "text/html" in page.content_type
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_failed_sign_ins_are_throttled_per_account_with_a_clear_message(client, make):
    user = make.user("agent")
    statuses = []
    for _ in range(7):
        response = client.post(
            "/login", data={"email": user.email, "password": "wrong", "csrf_token": csrf_token(client)}
        )
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # the right password does not get through while the account is throttled
    from cairn.auth.services import set_password

    set_password(user, PASSWORD)
    make.db.session.commit()
    blocked = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert blocked.status_code == 429


@pytest.mark.parametrize("path", ["/tickets/99999999", "/cis/99999999", "/portal/tickets/99999999"])
def test_missing_objects_are_404_pages(client, make, path):
    role = REQUESTER if path.startswith("/portal") else "agent"
    sign_in(client, make.user(role))
    response = client.get(path)
    assert response.status_code == 404 and "text/html" in response.content_type


def test_the_sign_in_throttle_hooks_pages_only(app):
    """Flask-Limiter throttles sign-in; its per-request hooks run for the web desk's pages, not for
    API requests (which it never limits)."""
    from web.shell import limiter

    def is_limiters(hook):
        return limiter in (getattr(hook, "__self__", None), *getattr(hook, "args", ())[:1])

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        assert not any(is_limiters(hook) for hook in hooks.get(None, []))
        assert any(is_limiters(hook) for hook in hooks["web"])
