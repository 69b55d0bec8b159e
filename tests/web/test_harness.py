"""The harness itself: the deployed server answers through Chromium, what `seed` writes is what the
server serves, screenshots land where a person looks for them, and the accessibility check finds
serious violations on a page that sends a strict Content-Security-Policy (and passes a clean one)."""

from __future__ import annotations

import http.server
import struct
import threading

import pytest

from tests.web.browser import OUTPUT, assert_accessible, backend, console_errors, shoot

CSP = "script-src 'self'"
INLINE = "<script>window.inlineRan = true</script>"
BROKEN = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken on purpose</title>{INLINE}</head>
<body><main><h1>Broken on purpose</h1>
<img src="/missing.png">
<form><input type="text" name="q"></form>
</main></body></html>"""
CLEAN = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clean</title>{INLINE}</head>
<body><main><h1>Clean</h1>
<p>Nothing to complain about.</p>
<form><label for="q">Search</label> <input id="q" type="search" name="q"> <button type="submit">Go</button></form>
<div style="height: 1600px"></div><p>The end of a page taller than the viewport.</p>
</main></body></html>"""


class _Pages(http.server.BaseHTTPRequestHandler):
    pages = {"/broken": BROKEN, "/clean": CLEAN}

    def do_GET(self):
        body = self.pages.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def static_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_the_deployed_server_answers_through_the_browser(page, web_server):
    response = page.goto("/healthz")
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    ready = page.goto("/readyz").json()
    assert ready["checks"] == {"database": "ok", "redis": "not configured (jobs run inline)"}
    assert web_server.database_url.startswith(backend())


def test_what_seed_commits_is_served(page, web_server):
    from cairn.auth.services import create_token
    from cairn.db import db
    from cmdb.services import create_ci

    admin = web_server.user("admin")

    def estate():
        from cairn.auth.models import User

        ci = create_ci({"name": "harness-web-01", "ci_class": "server"})
        _, secret = create_token(db.session.get(User, admin.id))
        return ci.id, secret

    ci_id, secret = web_server.seed(estate)
    # Two workers: ask a few times so both are likely to have answered.
    for _ in range(4):
        response = page.request.get(f"/api/v1/cis/{ci_id}", headers={"Authorization": f"Bearer {secret}"})
        assert response.status == 200, response.text()
        assert response.json()["name"] == "harness-web-01"


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_screenshots_are_numbered_full_pages(page, static_site, request):
    page.goto(f"{static_site}/clean")
    first = shoot(page, "clean page")
    second = shoot(page, "again")
    folder = OUTPUT / backend() / request.node.name
    assert [first, second] == [folder / "01-clean-page.png", folder / "02-again.png"]
    width, height = _png_size(first)
    assert width == 1280 and height > 1600, "full page, not just the viewport"


def test_accessibility_check_catches_serious_violations_under_csp(page, static_site):
    page.goto(f"{static_site}/broken")
    assert page.evaluate("() => window.inlineRan") is None, "the page's CSP must block its inline script"
    assert any("Content Security Policy" in e for e in console_errors(page)), console_errors(page)
    with pytest.raises(AssertionError) as failed:
        assert_accessible(page)
    message = str(failed.value)
    assert "image-alt (critical)" in message
    assert "label (critical)" in message
    assert "img" in message and "input" in message, "names the offending elements"


def test_accessibility_check_passes_a_clean_page_under_csp(page, static_site):
    page.goto(f"{static_site}/clean")
    assert page.evaluate("() => window.inlineRan") is None, "the page's CSP must block its inline script"
    violations = assert_accessible(page)
    assert page.evaluate("() => typeof window.axe.run") == "function", "axe really ran"
    assert all(v["impact"] not in ("serious", "critical") for v in violations)
