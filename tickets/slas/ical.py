"""Closures from an iCalendar file (RFC 5545): each VEVENT becomes ``{name, start, end}`` in the
calendar's local wall time. All-day events (``VALUE=DATE``) give dates (end inclusive, as calendar
closures store them; DTEND of an all-day event is exclusive in iCalendar); timed events in UTC,
with a TZID, or floating give local date-times. Recurrence rules are not expanded (export the
holiday calendar with its occurrences); events with RRULE are counted as skipped.

A small parser of our own: unfolding, property parameters, escapes; nothing else of the format is
needed, and every limit (size, events, line length) is checked before anything is stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_BYTES = 1_000_000
MAX_EVENTS = 2000
MAX_NAME = 200


class ICalError(ValueError):
    """The file is not an iCalendar file this importer can read; the message says why."""


def _lines(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and out:
            out[-1] += raw[1:]
        elif raw:
            out.append(raw)
    return out


def _property(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, value = line.partition(":")
    if not sep:
        raise ICalError(f"a line without a colon: {line[:60]!r}")
    name, *params = head.split(";")
    parameters = {}
    for param in params:
        key, _, param_value = param.partition("=")
        parameters[key.upper()] = param_value.strip('"')
    return name.upper(), parameters, value


def _unescape(value: str) -> str:
    return value.replace("\\n", " ").replace("\\N", " ").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")


def _when(value: str, params: dict[str, str], zone: ZoneInfo) -> date | datetime:
    try:
        return _read_when(value, params, zone)
    except OverflowError as error:
        raise ICalError(f"a date out of range: {value[:40]!r}") from error


def _read_when(value: str, params: dict[str, str], zone: ZoneInfo) -> date | datetime:
    try:
        if params.get("VALUE") == "DATE" or len(value) == 8:
            return datetime.strptime(value, "%Y%m%d").date()
        if value.endswith("Z"):
            instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return instant.astimezone(zone).replace(tzinfo=None)
        local = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError as error:
        raise ICalError(f"not an iCalendar date or date-time: {value[:40]!r}") from error
    if "TZID" in params:
        try:
            source = ZoneInfo(params["TZID"])
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:
            raise ICalError(f"unknown time zone {params['TZID'][:60]!r}") from error
        return local.replace(tzinfo=source).astimezone(zone).replace(tzinfo=None)
    return local


def closures(data: bytes, time_zone: str) -> tuple[list[dict], int]:
    """(closures, skipped recurring events) from the file's bytes; raises ICalError."""
    if len(data) > MAX_BYTES:
        raise ICalError(f"the file is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ICalError("the file is not UTF-8 text") from error
    lines = _lines(text)
    if not lines or lines[0].upper() != "BEGIN:VCALENDAR":
        raise ICalError("the file does not start with BEGIN:VCALENDAR")
    zone = ZoneInfo(time_zone)
    out: list[dict] = []
    skipped = 0
    event: dict | None = None
    for line in lines:
        name, params, value = _property(line)
        if name == "BEGIN" and value.upper() == "VEVENT":
            event = {}
        elif name == "END" and value.upper() == "VEVENT":
            if event is None:
                raise ICalError("END:VEVENT without BEGIN:VEVENT")
            if "RRULE" in event:
                skipped += 1
            else:
                out.append(_closure(event))
            if len(out) > MAX_EVENTS:
                raise ICalError(f"more than {MAX_EVENTS} events")
            event = None
        elif event is not None and name in ("SUMMARY", "RRULE"):
            event[name] = _unescape(value)
        elif event is not None and name in ("DTSTART", "DTEND"):
            event[name] = _when(value, params, zone)
    if event is not None:
        raise ICalError("a VEVENT is not closed")
    return out, skipped


def _closure(event: dict) -> dict:
    start = event.get("DTSTART")
    if start is None:
        raise ICalError("a VEVENT without DTSTART")
    end = event.get("DTEND")
    name = (event.get("SUMMARY") or "Closed").strip()[:MAX_NAME] or "Closed"
    if not isinstance(start, datetime):
        if end is not None and isinstance(end, datetime):
            raise ICalError("an all-day DTSTART with a timed DTEND")
        try:
            last = (end - timedelta(days=1)) if end is not None else start
        except OverflowError as error:
            raise ICalError(f"the event {name!r} has a date out of range") from error
        if last < start:
            raise ICalError(f"the event {name!r} ends before it starts")
        return {"name": name, "start": start.isoformat(), "end": last.isoformat()}
    if end is None or not isinstance(end, datetime):
        raise ICalError(f"the timed event {name!r} has no timed DTEND")
    if end <= start:
        raise ICalError(f"the event {name!r} ends before it starts")
    return {"name": name, "start": start.isoformat(timespec="minutes"), "end": end.isoformat(timespec="minutes")}
