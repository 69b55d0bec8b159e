"""The API documentation works offline: the pages flask-smorest renders (Swagger UI at
``/api/v1/docs``, ReDoc at ``/api/v1/redoc``) load their scripts and styles from this process, never
from a CDN. Swagger UI's files come from the pinned ``flask-swagger-ui`` package (only its ``dist``
folder is used: Swagger UI 5, which renders OpenAPI 3.1); ReDoc's standalone bundle is vendored in
``cairn/static/vendor/redoc`` with its licence. (``/`` is the web desk's.)

Installed by ``cairn.api.Api`` with the documentation blueprint, so any app serving the API has them.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from flask import Blueprint, send_from_directory

from cairn.auth.guard import public

REDOC_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "redoc"
ASSET_MAX_AGE = 24 * 3600

blp = Blueprint("docs", __name__)


def swagger_ui_dir() -> Path:
    return Path(str(importlib.resources.files("flask_swagger_ui") / "dist"))


@blp.get("/api/v1/docs/static/redoc/<path:filename>")
@public
def redoc_asset(filename: str):
    """ReDoc's standalone bundle and its licence files."""
    return send_from_directory(REDOC_DIR, filename, max_age=ASSET_MAX_AGE)


@blp.get("/api/v1/docs/static/<path:filename>")
@public
def swagger_ui_asset(filename: str):
    """Swagger UI's scripts, styles and icons."""
    return send_from_directory(swagger_ui_dir(), filename, max_age=ASSET_MAX_AGE)


def install(app) -> None:
    if "docs" not in app.blueprints:
        app.register_blueprint(blp)
