"""Business time: how many seconds of a calendar's open hours lie between two instants, and which
instant lies a given number of open seconds after another. Pure (no database).

A calendar is weekly hours in a time zone's *local wall time* (Monday 09:00-17:00 means 09:00 on
the clock on the wall, whatever the UTC offset that day) minus closures (holidays, all-day or
timed, also in local wall time). Each local day's open intervals are built in wall time, closures
are cut out, and only then are the interval ends converted to UTC: so a spring-forward day of a
24x7 calendar has 23 real hours and a fall-back day 25, and a shift's length is the time that
really passes on it. A wall time that does not exist (inside a spring-forward gap) is the instant
the clocks jumped; one that exists twice (fall-back) is its first occurrence.

Overnight shifts are not one interval: an interval ends after it starts on the same day, and
``24:00`` ends a day, so 22:00-06:00 is written as 22:00-24:00 on one day and 00:00-06:00 on the
next.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
# A calendar whose open hours are all closed for this long can never reach a target.
HORIZON_DAYS = 3700


class NeverOpen(ValueError):
    """The calendar has no open hours within the horizon, so no target can be reached."""


@dataclass
class Calendar:
    """``hours[weekday]`` (Monday 0) is a list of (start, end) local times, end ``None`` meaning
    24:00; ``closures`` are (start, end) local wall-time datetimes, end exclusive."""

    time_zone: str
    hours: dict[int, list[tuple[time, time | None]]]
    closures: list[tuple[datetime, datetime]] = field(default_factory=list)
    _zone: ZoneInfo = field(init=False, repr=False)
    _days: dict[date, list[tuple[datetime, datetime]]] = field(init=False, repr=False, default_factory=dict)
    _timeline: _Timeline | None = field(init=False, repr=False, default=None)

    def __post_init__(self):
        self._zone = ZoneInfo(self.time_zone)
        self.closures = sorted(self.closures)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The UTC intervals in which the calendar is open on the local ``day``, in order."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        wall: list[tuple[datetime, datetime]] = []
        for start, end in sorted(self.hours.get(day.weekday(), []), key=lambda pair: pair[0]):
            wall_start = datetime.combine(day, start)
            wall_end = datetime.combine(day + DAY, time()) if end is None else datetime.combine(day, end)
            wall.extend(_subtract(wall_start, wall_end, self._closures_on(day)))
        intervals = []
        for wall_start, wall_end in wall:
            start_utc, end_utc = self._to_utc(wall_start), self._to_utc(wall_end)
            if end_utc > start_utc:
                intervals.append((start_utc, end_utc))
        self._days[day] = intervals
        return intervals

    def _closures_on(self, day: date) -> list[tuple[datetime, datetime]]:
        day_start = datetime.combine(day, time())
        day_end = day_start + DAY
        return [(s, e) for s, e in self.closures if s < day_end and e > day_start]

    def _to_utc(self, wall: datetime) -> datetime:
        instant = wall.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        if instant.astimezone(self._zone).replace(tzinfo=None) == wall:
            return instant
        # In a spring-forward gap: the instant the clocks jumped, which lies between the readings of
        # the wall time with the offsets before and after the jump.
        low = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        high = instant
        low, high = min(low, high), max(low, high)
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self._zone).replace(tzinfo=None) < wall:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0) if high.microsecond else high


def _subtract(start: datetime, end: datetime, closures) -> list[tuple[datetime, datetime]]:
    pieces = [(start, end)]
    for closed_start, closed_end in closures:
        next_pieces = []
        for piece_start, piece_end in pieces:
            if closed_end <= piece_start or closed_start >= piece_end:
                next_pieces.append((piece_start, piece_end))
                continue
            if closed_start > piece_start:
                next_pieces.append((piece_start, closed_start))
            if closed_end < piece_end:
                next_pieces.append((closed_end, piece_end))
        pieces = next_pieces
    return pieces


def _aware(instant: datetime) -> datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MARGIN_DAYS = 32


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


class _Timeline:
    """A calendar's open intervals over a range of local days as integer microseconds since the
    epoch, with the open time before each interval summed up: "open seconds up to t" is then a
    binary search, so between and add cost O(log n) however far apart the instants are."""

    def __init__(self, calendar: Calendar, first: date, last: date):
        self.first, self.last = first, last
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.before: list[int] = []  # open microseconds before each interval
        self.through: list[int] = []  # ... up to each interval's end
        total = 0
        day = first
        while day <= last:
            for start, end in calendar.open_intervals(day):
                start_us, end_us = _micros(start), _micros(end)
                self.starts.append(start_us)
                self.ends.append(end_us)
                self.before.append(total)
                total += end_us - start_us
                self.through.append(total)
            day += DAY
        # Instants surely inside the range (a local day starts within a day of UTC midnight).
        self.low_us = _micros(datetime.combine(first + DAY, time(), UTC))
        self.high_us = _micros(datetime.combine(last - DAY, time(), UTC))

    def covers(self, first: date, last: date) -> bool:
        return self.first <= first and last <= self.last

    def open_before(self, instant_us: int) -> int:
        index = bisect_right(self.starts, instant_us) - 1
        if index < 0:
            return 0
        return self.before[index] + min(instant_us - self.starts[index], self.ends[index] - self.starts[index])

    def instant_after(self, open_us: int) -> int | None:
        """The earliest instant by which ``open_us`` open microseconds have passed (None: later
        than the range)."""
        index = bisect_left(self.through, open_us)
        if index == len(self.through):
            return None
        return self.starts[index] + (open_us - self.before[index])


def _timeline(calendar: Calendar, first: date, last: date) -> _Timeline:
    current = calendar._timeline
    if current is not None and current.covers(first, last):
        return current
    margin = timedelta(days=MARGIN_DAYS)
    if current is not None:  # grow to the union, with room, so a run of queries rebuilds rarely
        first, last = min(first, current.first), max(last, current.last)
        margin = max(margin, (current.last - current.first) / 2)
    calendar._timeline = _Timeline(calendar, first - margin, last + margin)
    return calendar._timeline


def _aware(instant: datetime) -> datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def business_seconds_between(calendar: Calendar, a: datetime, b: datetime) -> float:
    """Open seconds of ``calendar`` in [a, b) (0 when b <= a)."""
    a, b = _aware(a), _aware(b)
    if b <= a:
        return 0.0
    a_us, b_us = _micros(a), _micros(b)
    timeline = calendar._timeline
    if timeline is None or a_us < timeline.low_us or b_us > timeline.high_us:
        timeline = _timeline(calendar, calendar.local_date(a) - DAY, calendar.local_date(b) + DAY)
    return (timeline.open_before(b_us) - timeline.open_before(a_us)) / 1_000_000


def add_business_seconds(calendar: Calendar, start: datetime, seconds: float) -> datetime:
    """The earliest instant at which ``seconds`` open seconds have passed since ``start`` (``start``
    itself for 0). Raises NeverOpen past the horizon."""
    start = _aware(start)
    if seconds <= 0:
        return start
    wanted = round(seconds * 1_000_000)
    start_us = _micros(start)
    timeline = calendar._timeline
    if timeline is not None and timeline.low_us <= start_us:
        found = timeline.instant_after(timeline.open_before(start_us) + wanted)
        if found is not None and found <= timeline.high_us:
            return EPOCH + timedelta(microseconds=found)
    first = calendar.local_date(start) - DAY
    last = first + timedelta(days=MARGIN_DAYS)
    while True:
        timeline = _timeline(calendar, first, last)
        found = timeline.instant_after(timeline.open_before(start_us) + wanted)
        if found is not None:
            return EPOCH + timedelta(microseconds=found)
        if (timeline.last - first).days >= HORIZON_DAYS:
            raise NeverOpen(f"the calendar has no open hours in {HORIZON_DAYS} days")
        last = min(timeline.last + (timeline.last - first), first + timedelta(days=HORIZON_DAYS))


def run(
    calendar: Calendar, spans: list[tuple[datetime, datetime | None]], now: datetime, thresholds: list[float]
) -> tuple[float, list[datetime | None]]:
    """A clock that runs in ``spans`` (wall-clock [start, end), the last may be open-ended) and in
    the calendar's open hours: the open seconds it has run by ``now``, and for each threshold the
    instant it reaches it (None: the spans end first). The same as summing
    business_seconds_between and walking add_business_seconds, in one pass over one timeline."""
    if not spans:
        return 0.0, [None for _ in thresholds]
    now_us = _micros(now)
    pieces = [(_micros(start), None if end is None else _micros(end)) for start, end in spans]
    last = max([now, *(end for _, end in spans if end is not None)])
    timeline = calendar._timeline
    if timeline is None or pieces[0][0] < timeline.low_us or _micros(last) > timeline.high_us:
        timeline = _timeline(calendar, calendar.local_date(spans[0][0]) - DAY, calendar.local_date(last) + DAY)
    open_before = timeline.open_before
    elapsed = 0
    for start, end in pieces:
        if start < now_us:
            elapsed += open_before(min(now_us if end is None else end, now_us)) - open_before(start)
    reached: list[datetime | None] = []
    for threshold in thresholds:
        left = round(threshold * 1_000_000)
        found: int | None = None
        for index, (start, end) in enumerate(pieces):
            if left <= 0:
                found = start
                break
            if end is None:
                found = timeline.instant_after(open_before(start) + left)
                if found is None or found > timeline.high_us:
                    reached.append(add_business_seconds(calendar, spans[index][0], left / 1_000_000))
                    found = -1
                break
            length = open_before(end) - open_before(start)
            if left <= length:
                found = timeline.instant_after(open_before(start) + left)
                break
            left -= length
        if found != -1:
            reached.append(None if found is None else EPOCH + timedelta(microseconds=found))
    return elapsed / 1_000_000, reached


ALWAYS_OPEN = {weekday: [(time(), None)] for weekday in range(7)}


def always_open(time_zone: str = "UTC") -> Calendar:
    """24x7: every second counts (the wall clock)."""
    return Calendar(time_zone, ALWAYS_OPEN)
