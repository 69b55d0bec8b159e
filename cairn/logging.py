"""Structured JSON logs, each line carrying the request id and the actor."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from cairn.audit.context import current_actor, current_request_id


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        record.actor = current_actor().label
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "actor": getattr(record, "actor", None),
        }
        for key in ("method", "path", "status", "duration_ms", "job_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (test capture, redirects)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    root = logging.getLogger("cairn")
    if getattr(root, "_cairn_configured", False):
        root.setLevel(level)
        return
    handler = StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    root._cairn_configured = True
