"""The tickets domain's settings, read from the app config when used (never at import time).

Structured values (SLA policies, blackouts, business hours) may come as objects from Python config or
as JSON text from the environment; both are accepted.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app


def setting(name: str, default: Any = None) -> Any:
    value = current_app.config.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        return json.loads(value)
    return value
