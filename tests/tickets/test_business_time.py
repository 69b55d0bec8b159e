"""The pure business-time arithmetic: properties over random calendars and instants, and the days
where a naive implementation goes wrong (DST in Europe/Berlin, holidays, weekends, 24x7)."""

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.slas.business_time import (
    Calendar,
    NeverOpen,
    add_business_seconds,
    always_open,
    business_seconds_between,
)

BERLIN = "Europe/Berlin"
OFFICE = {weekday: [(time(9), time(17))] for weekday in range(5)}
HOUR = 3600


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def office(**kwargs) -> Calendar:
    return Calendar(BERLIN, OFFICE, **kwargs)


def test_a_friday_evening_ticket_counts_from_monday_morning():
    calendar = office()
    friday_evening = utc(2026, 3, 13, 18)  # 19:00 in Berlin
    monday_ten = utc(2026, 3, 16, 9)  # 10:00 in Berlin
    assert business_seconds_between(calendar, friday_evening, monday_ten) == HOUR
    assert add_business_seconds(calendar, friday_evening, 4 * HOUR) == utc(2026, 3, 16, 12)


def test_a_holiday_and_a_timed_closure_are_skipped():
    calendar = office(
        closures=[
            (datetime(2026, 3, 16), datetime(2026, 3, 17)),  # Monday, all day
            (datetime(2026, 3, 17, 12), datetime(2026, 3, 17, 14)),  # Tuesday lunch meeting
        ]
    )
    friday_evening = utc(2026, 3, 13, 18)
    # Tuesday 09:00-12:00 and 14:00-17:00 are the only hours before Wednesday.
    assert business_seconds_between(calendar, friday_evening, utc(2026, 3, 18, 0)) == 6 * HOUR
    assert add_business_seconds(calendar, friday_evening, 4 * HOUR) == utc(2026, 3, 17, 14)  # 15:00 local


def test_spring_forward_day_of_a_24x7_calendar_has_23_hours():
    calendar = always_open(BERLIN)
    midnight = datetime(2026, 3, 29, tzinfo=calendar._zone).astimezone(UTC)
    next_midnight = datetime(2026, 3, 30, tzinfo=calendar._zone).astimezone(UTC)
    assert business_seconds_between(calendar, midnight, next_midnight) == 23 * HOUR
    assert add_business_seconds(calendar, midnight, 23 * HOUR) == next_midnight


def test_fall_back_day_of_a_24x7_calendar_has_25_hours():
    calendar = always_open(BERLIN)
    midnight = datetime(2026, 10, 25, tzinfo=calendar._zone).astimezone(UTC)
    next_midnight = datetime(2026, 10, 26, tzinfo=calendar._zone).astimezone(UTC)
    assert business_seconds_between(calendar, midnight, next_midnight) == 25 * HOUR


def test_office_hours_follow_the_wall_clock_across_dst():
    calendar = Calendar(BERLIN, {weekday: [(time(9), time(17))] for weekday in range(7)})
    # Saturday 28 March is CET (09:00 = 08:00Z), Monday 30 March is CEST (09:00 = 07:00Z).
    assert calendar.open_intervals(datetime(2026, 3, 28).date()) == [(utc(2026, 3, 28, 8), utc(2026, 3, 28, 16))]
    assert calendar.open_intervals(datetime(2026, 3, 30).date()) == [(utc(2026, 3, 30, 7), utc(2026, 3, 30, 15))]
    # 8 business hours from Saturday 16:00 local land on Sunday 16:00 local (CEST: 14:00Z).
    assert add_business_seconds(calendar, utc(2026, 3, 28, 15), 8 * HOUR) == utc(2026, 3, 29, 14)


def test_a_shift_across_the_changeover_counts_real_time():
    night = {weekday: [(time(1), time(4))] for weekday in range(7)}
    calendar = Calendar(BERLIN, night)
    spring = datetime(2026, 3, 29).date()
    fall = datetime(2026, 10, 25).date()
    ((start, end),) = calendar.open_intervals(spring)
    assert end - start == timedelta(hours=2)  # 02:00-03:00 never happened
    ((start, end),) = calendar.open_intervals(fall)
    assert end - start == timedelta(hours=4)  # 02:00-03:00 happened twice


def test_a_shift_starting_in_the_gap_starts_when_the_clocks_jump():
    calendar = Calendar(BERLIN, {6: [(time(2, 30), time(5))]})
    ((start, end),) = calendar.open_intervals(datetime(2026, 3, 29).date())
    assert start == utc(2026, 3, 29, 1)  # 03:00 CEST, the jump
    assert end == utc(2026, 3, 29, 3)


def test_a_calendar_that_never_opens_raises():
    calendar = Calendar("UTC", {})
    with pytest.raises(NeverOpen):
        add_business_seconds(calendar, utc(2026, 1, 1), 1)
    assert business_seconds_between(calendar, utc(2026, 1, 1), utc(2026, 2, 1)) == 0


# -- properties --------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
durations = st.integers(min_value=0, max_value=40 * 24 * HOUR)
zones = st.sampled_from([BERLIN, "UTC", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])


@st.composite
def calendars(draw):
    hours = {}
    for weekday in range(7):
        cuts = sorted(draw(st.sets(st.integers(min_value=0, max_value=48), max_size=4)))
        pairs = list(zip(cuts[0::2], cuts[1::2], strict=False))
        hours[weekday] = [
            (time(s // 2, 30 * (s % 2)), None if e == 48 else time(e // 2, 30 * (e % 2))) for s, e in pairs if s < e
        ]
    if not any(hours.values()):
        hours[draw(st.integers(0, 6))] = [(time(9), time(17))]
    closures = []
    for day in draw(
        st.lists(st.dates(min_value=datetime(2025, 1, 1).date(), max_value=datetime(2027, 12, 1).date()), max_size=5)
    ):
        closures.append(
            (datetime.combine(day, time()), datetime.combine(day, time()) + timedelta(days=draw(st.integers(1, 3))))
        )
    return Calendar(draw(zones), hours, closures)


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, durations)
def test_between_undoes_add(calendar, start, seconds):
    due = add_business_seconds(calendar, start, seconds)
    assert due >= start
    assert business_seconds_between(calendar, start, due) == seconds


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, durations, durations)
def test_add_is_monotonic(calendar, start, first, second):
    low, high = sorted((first, second))
    assert add_business_seconds(calendar, start, low) <= add_business_seconds(calendar, start, high)


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, instants, instants)
def test_between_is_additive_and_bounded_by_wall_time(calendar, a, b, c):
    a, b, c = sorted((a, b, c))
    ab = business_seconds_between(calendar, a, b)
    bc = business_seconds_between(calendar, b, c)
    assert 0 <= ab <= (b - a).total_seconds()
    assert business_seconds_between(calendar, a, c) == ab + bc


@settings(max_examples=100, deadline=None)
@given(calendars(), instants, instants)
def test_add_between_lands_at_or_before_the_end(calendar, a, b):
    a, b = sorted((a, b))
    seconds = business_seconds_between(calendar, a, b)
    reached = add_business_seconds(calendar, a, seconds)
    assert reached <= b
    assert business_seconds_between(calendar, reached, b) == 0


@settings(max_examples=100, deadline=None)
@given(zones, instants, durations)
def test_a_24x7_calendar_is_the_wall_clock(zone, start, seconds):
    calendar = always_open(zone)
    assert add_business_seconds(calendar, start, seconds) == start + timedelta(seconds=seconds)
