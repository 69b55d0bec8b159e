"""The CAIRN_EVENTS_* settings, read from the app config when used (never at import time)."""

from __future__ import annotations

from cairn.config import setting

DEFAULTS: dict[str, object] = {
    # Alerts whose CIs share a direct dependency group together while the group saw an alert this recently.
    "CAIRN_EVENTS_WINDOW_SECONDS": 120,
    # How far up and down the dependency graph a group's root may be from its alerting CIs.
    "CAIRN_EVENTS_CORRELATION_HOPS": 3,
    # When every alert of a group is resolved, the incident moves to resolved too (a note is always written).
    "CAIRN_EVENTS_AUTO_RESOLVE": True,
    # Flapping: status changes this close together. An alert that re-fires this soon after its group
    # resolved reopens it once; from then on the group waits this long after the last resolution.
    "CAIRN_EVENTS_FLAP_MINUTES": 5,
    # Intake limits: request body, events per request, labels per event.
    "CAIRN_EVENTS_MAX_BYTES": 5 * 1024 * 1024,
    "CAIRN_EVENTS_MAX_PER_REQUEST": 5000,
    # Occurrences processed (and committed) together by a job.
    "CAIRN_EVENTS_BATCH": 500,
}


def get(name: str):
    return setting(name, DEFAULTS[name])
