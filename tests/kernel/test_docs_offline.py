"""The API docs work without a network: every script and style the pages load is served by Cairn
itself; ``/`` leads to them; the OpenAPI description points at things that exist."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

CONTENT_TYPES = {".js": "javascript", ".css": "text/css"}


def _assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""", html)


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/api/v1/docs", {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}),
        ("/api/v1/redoc", {"redoc.standalone.js"}),
    ],
)
def test_docs_pages_load_only_local_assets(client, page, needed):
    response = client.get(page)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assets = _assets(html)
    assert {a.rsplit("/", 1)[-1] for a in assets} == needed
    assert "//" not in "".join(assets), assets  # nothing from another host, no CDN
    for asset in assets:
        url = urljoin(f"http://localhost{page}", asset).removeprefix("http://localhost")
        served = client.get(url)
        assert served.status_code == 200, url
        assert CONTENT_TYPES[url[url.rindex(".") :]] in served.mimetype, (url, served.mimetype)
        assert len(served.get_data()) > 10_000
        assert served.headers.get("Cache-Control")


def test_swagger_ui_renders_openapi_3_1():
    """Swagger UI learnt OpenAPI 3.1 in version 5; the document is 3.1."""
    from cairn.docs import swagger_ui_dir

    version = (swagger_ui_dir() / "VERSION").read_text().strip().lstrip("v")
    assert int(version.split(".")[0]) >= 5


def test_asset_paths_stay_inside_their_folders(client):
    assert client.get("/api/v1/docs/static/../../docs.py").status_code == 404
    assert client.get("/api/v1/docs/static/redoc/..%2F..%2F..%2Fdocs.py").status_code == 404
    assert client.get("/api/v1/docs/static/no-such-file.js").status_code == 404
    assert client.get("/api/v1/docs/static/redoc/LICENSE").status_code == 200


def test_the_openapi_description_says_something_true(client):
    info = client.get("/api/v1/openapi.json").json["info"]
    assert "API.md" not in info["description"]
    assert "/api/v1/docs" in info["description"] and "README" in info["description"]
