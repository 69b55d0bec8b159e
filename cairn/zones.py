"""The IANA time zones this machine knows, read once per process (listing them walks the zone
database on disk: about 15 ms a call)."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones


@cache
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def sorted_time_zones() -> tuple[str, ...]:
    return tuple(sorted(time_zones()))
