"""Business-time arithmetic: table cases from the seeds, an independent minute-walking oracle, and
properties (monotonic, lands inside business hours) over random weeks, zones and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.config import WEEKDAYS, ConfigError, HoursSettings, parse
from mailbot.hours import describe, due_at, is_overdue, opening_hours

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT = HoursSettings()  # seed 003: Mo-Fr 09:00-16:00, 8 hours
SPLIT = HoursSettings.model_validate(  # seed 004: Mo-Do 9-12 and 14-17, Fr 9-12
    {"weekly": {day: ["09:00-12:00", "14:00-17:00"] for day in WEEKDAYS[:4]} | {"fri": ["9:00-12:00"]}}
)
CHRISTMAS = HoursSettings.model_validate({"holidays": ["2026-12-24", date(2026, 12, 25)]})
ALWAYS = HoursSettings.model_validate({"weekly": {day: ["00:00-24:00"] for day in WEEKDAYS}})


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("case", "start", "hours", "hours_settings", "expected"),
    [
        # 0.5 h Friday + 7 h Monday + 0.5 h Tuesday (Tue 24 Nov 2026)
        ("friday afternoon", berlin(2026, 11, 20, 15, 30), 8, DEFAULT, berlin(2026, 11, 24, 9, 30)),
        ("same day", berlin(2026, 11, 23, 10, 0), 2, DEFAULT, berlin(2026, 11, 23, 12, 0)),
        ("ends at closing", berlin(2026, 11, 23, 15, 0), 1, DEFAULT, berlin(2026, 11, 23, 16, 0)),
        ("before opening", berlin(2026, 11, 23, 7, 12), 2, DEFAULT, berlin(2026, 11, 23, 11, 0)),
        ("after closing", berlin(2026, 11, 23, 18, 0), 2, DEFAULT, berlin(2026, 11, 24, 11, 0)),
        ("at closing", berlin(2026, 11, 23, 16, 0), 0.25, DEFAULT, berlin(2026, 11, 24, 9, 15)),
        ("saturday", berlin(2026, 11, 21, 12, 0), 2, DEFAULT, berlin(2026, 11, 23, 11, 0)),
        ("sunday night, no time", berlin(2026, 11, 22, 23, 0), 0, DEFAULT, berlin(2026, 11, 23, 9, 0)),
        ("inside, no time", berlin(2026, 11, 23, 10, 7), 0, DEFAULT, berlin(2026, 11, 23, 10, 7)),
        ("start given in UTC", datetime(2026, 11, 20, 14, 30, tzinfo=UTC), 8, DEFAULT,
         berlin(2026, 11, 24, 9, 30)),
        ("several days", berlin(2026, 11, 23, 9, 0), 40, DEFAULT, berlin(2026, 11, 30, 14, 0)),
        # Wed 1 h, Thu 24 + Fri 25 holidays, weekend, Mon 7 h
        ("holidays", berlin(2026, 12, 23, 15, 0), 8, CHRISTMAS, berlin(2026, 12, 28, 16, 0)),
        ("on a holiday", berlin(2026, 12, 24, 10, 0), 1, CHRISTMAS, berlin(2026, 12, 28, 10, 0)),
        ("split: across lunch", berlin(2026, 11, 26, 11, 0), 2, SPLIT, berlin(2026, 11, 26, 15, 0)),
        ("split: start at lunch", berlin(2026, 11, 26, 12, 30), 1, SPLIT, berlin(2026, 11, 26, 15, 0)),
        # Fri 1 h (short day), Mon 3 h + 3 h, Tue 1 h
        ("split: friday", berlin(2026, 11, 27, 11, 0), 8, SPLIT, berlin(2026, 12, 1, 10, 0)),
        ("split: friday afternoon", berlin(2026, 11, 27, 14, 0), 1, SPLIT, berlin(2026, 11, 30, 10, 0)),
        # EU summer time starts Sun 29 Mar 2026 and ends Sun 25 Oct 2026
        ("DST spring week", berlin(2026, 3, 27, 15, 30), 8, DEFAULT, berlin(2026, 3, 31, 9, 30)),
        ("DST autumn week", berlin(2026, 10, 23, 15, 30), 8, DEFAULT, berlin(2026, 10, 27, 9, 30)),
        ("DST spring, 24/7: 23 h Sunday", berlin(2026, 3, 28, 12, 0), 24, ALWAYS, berlin(2026, 3, 29, 13, 0)),
        ("DST autumn, 24/7: 25 h Sunday", berlin(2026, 10, 24, 12, 0), 24, ALWAYS,
         berlin(2026, 10, 25, 11, 0)),
    ],
)
def test_due_at(case: str, start: datetime, hours: float, hours_settings: HoursSettings,
                expected: datetime) -> None:
    due = due_at(start, hours, hours_settings)
    assert due == expected
    assert due.utcoffset() == expected.utcoffset()  # wall clock in the configured zone, DST applied
    assert due.tzinfo == BERLIN


def test_due_at_uses_the_configured_zone() -> None:
    new_york = HoursSettings.model_validate({"timezone": "America/New_York"})
    due = due_at(berlin(2026, 11, 20, 21, 30), 8, new_york)  # Fri 15:30 in New York
    assert due == datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert due.tzinfo == ZoneInfo("America/New_York")


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_due_at_rejects_impossible_hours(hours: float) -> None:
    with pytest.raises(ValueError, match="hours must be"):
        due_at(berlin(2026, 11, 20, 15, 30), hours, DEFAULT)


def test_due_at_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_at(datetime(2026, 11, 20, 15, 30), 1, DEFAULT)


@pytest.mark.parametrize(
    ("now", "overdue"),
    [
        (berlin(2026, 11, 23, 15, 0), False),
        (berlin(2026, 11, 24, 9, 30), False),  # due exactly now: still in time
        (berlin(2026, 11, 24, 9, 30, 1), True),
        (berlin(2026, 12, 1, 0, 0), True),
    ],
)
def test_is_overdue(now: datetime, overdue: bool) -> None:
    assert is_overdue(berlin(2026, 11, 20, 15, 30), now, DEFAULT) is overdue


@pytest.mark.parametrize(
    ("due", "language", "text"),
    [
        (berlin(2026, 11, 24, 10, 30), "de", "Dienstag, 24.11.2026, 10:30 Uhr (Europe/Berlin)"),
        (berlin(2026, 11, 24, 10, 30), "en", "Tuesday, 24 Nov 2026, 10:30 (Europe/Berlin)"),
        (berlin(2026, 3, 2, 9, 5), "de", "Montag, 02.03.2026, 09:05 Uhr (Europe/Berlin)"),
        (berlin(2026, 3, 2, 9, 5), "en", "Monday, 2 Mar 2026, 09:05 (Europe/Berlin)"),
        (berlin(2026, 5, 31, 16, 0), "de", "Sonntag, 31.05.2026, 16:00 Uhr (Europe/Berlin)"),
    ],
)
def test_describe(due: datetime, language: Any, text: str) -> None:
    assert describe(due, language) == text


BAVARIA = HoursSettings.model_validate({"holidays_country": "DE", "holidays_subdivision": "BY"})
BERLIN_STATE = HoursSettings.model_validate({"holidays_country": "DE", "holidays_subdivision": "BE"})


@pytest.mark.parametrize(("start", "hours", "hours_settings", "expected"), [
    # Thu 24 Dec is a working day; Fri 25 (Christmas) closed, then the weekend (26 Dec is a Saturday).
    (berlin(2026, 12, 23, 15, 0), 8, BAVARIA, berlin(2026, 12, 24, 16, 0)),
    (berlin(2026, 12, 24, 15, 0), 8, BAVARIA, berlin(2026, 12, 28, 16, 0)),
    (berlin(2026, 12, 24, 15, 0), 8, DEFAULT, berlin(2026, 12, 25, 16, 0)),  # no calendar: Christmas is a Friday
    # Across the year: 1 Jan closed everywhere; 6 Jan (Epiphany) only in Bavaria, not in Berlin.
    (berlin(2026, 12, 31, 15, 0), 16, BAVARIA, berlin(2027, 1, 7, 10, 0)),
    (berlin(2026, 12, 31, 15, 0), 16, BERLIN_STATE, berlin(2027, 1, 6, 10, 0)),
    # Women's Day (8 Mar 2027, a Monday) is a holiday in Berlin only.
    (berlin(2027, 3, 5, 15, 0), 8, BERLIN_STATE, berlin(2027, 3, 9, 16, 0)),
    (berlin(2027, 3, 5, 15, 0), 8, BAVARIA, berlin(2027, 3, 8, 16, 0)),
])
def test_public_holidays_of_the_country_and_state(start: datetime, hours: float, hours_settings: HoursSettings,
                                                   expected: datetime) -> None:
    assert due_at(start, hours, hours_settings) == expected


@pytest.mark.parametrize(("hours", "language", "line"), [
    (DEFAULT, "de", "Mo-Fr 09:00-16:00 (Europe/Berlin)"),
    (DEFAULT, "en", "Mon-Fri 09:00-16:00 (Europe/Berlin)"),
    (SPLIT, "de", "Mo-Do 09:00-12:00, 14:00-17:00; Fr 09:00-12:00 (Europe/Berlin)"),
    (HoursSettings.model_validate({"timezone": "America/New_York", "weekly": {
        "mon": ["08:00-18:00"], "wed": ["08:00-18:00"], "thu": ["08:00-18:00"], "sat": ["10:00-14:00"]}}),
     "en", "Mon 08:00-18:00; Wed-Thu 08:00-18:00; Sat 10:00-14:00 (America/New_York)"),
    (ALWAYS, "de", "Mo-So 00:00-24:00 (Europe/Berlin)"),
])
def test_opening_hours_line(hours: HoursSettings, language: Any, line: str) -> None:
    assert opening_hours(hours, language) == line


def test_defaults() -> None:
    assert DEFAULT.timezone == "Europe/Berlin"
    assert DEFAULT.target_hours == 8
    assert DEFAULT.weekly == (((540, 960),),) * 5 + ((), ())
    assert DEFAULT.holidays == ()
    assert SPLIT.weekly[0] == ((540, 720), (840, 1020))
    assert SPLIT.weekly[4] == ((540, 720),)


BASE_DOC = {"service": {"addresses": ["help@example.com"], "noreply": "no@example.com"},
            "tokens": {"secret": "s" * 16}}


@pytest.mark.parametrize(
    ("hours", "problem"),
    [
        ({"timezone": "Mars/Olympus"}, "hours.timezone: unknown time zone 'Mars/Olympus'"),
        ({"weekly": {"mon": ["9-12"]}}, "hours.weekly: mon: expected 'HH:MM-HH:MM', got '9-12'"),
        ({"weekly": {"mon": "09:00-12:00"}}, "hours.weekly: mon: expected a list of 'HH:MM-HH:MM'"),
        ({"weekly": {"tue": ["17:00-09:00"]}}, "hours.weekly: tue: '17:00-09:00' is not a time range"),
        ({"weekly": {"tue": ["09:60-10:00"]}}, "hours.weekly: tue: '09:60-10:00' is not a time range"),
        ({"weekly": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "hours.weekly: mon: time ranges overlap"),
        ({"weekly": {"montag": ["09:00-12:00"]}}, "hours.weekly: unknown day 'montag'"),
        ({"weekly": {}}, "hours.weekly: at least one day needs opening hours"),
        ({"holidays": ["24.12.2026"]}, "hours.holidays: input should be a valid date"),
        ({"target_hours": 0}, "hours.target_hours: input should be greater than 0"),
        ({"target": 8}, "hours.target: unknown key; did you mean 'target_hours'?"),
        ({"holidays_country": "XX"}, "hours: country XX not available"),
        ({"holidays_country": "DE", "holidays_subdivision": "ZZ"}, "hours: entity `DE` does not have subdivision ZZ"),
        ({"holidays_subdivision": "BY"}, "hours: holidays_subdivision needs holidays_country"),
    ],
)
def test_config_errors_name_the_key(hours: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(BASE_DOC | {"hours": hours}, Path("config.toml"))
    assert raised.value.problems[0].startswith(f"config.toml: {problem}")


def test_config_section_defaults_and_values() -> None:
    assert parse(BASE_DOC, Path("config.toml")).hours == DEFAULT
    doc = BASE_DOC | {"hours": {"timezone": "Europe/Vienna", "target_hours": 2,
                                "weekly": {"fri": ["14:00-17:00", "09:00-12:00"]},
                                "holidays": [date(2026, 1, 1)]}}
    hours = parse(doc, Path("config.toml")).hours
    assert hours.weekly == ((), (), (), (), ((540, 720), (840, 1020)), (), ())
    assert (hours.timezone, hours.target_hours, hours.holidays) == ("Europe/Vienna", 2.0, (date(2026, 1, 1),))


# --- properties -----------------------------------------------------------------------------------

def _open_minute(instant: datetime, hours_settings: HoursSettings) -> bool:
    """Independent oracle: is the whole minute starting at `instant` inside business hours?"""
    local = instant.astimezone(ZoneInfo(hours_settings.timezone))
    minute = local.hour * 60 + local.minute
    return local.date() not in hours_settings.holidays and any(
        first <= minute < last for first, last in hours_settings.weekly[local.weekday()]
    )


def _walk(start: datetime, minutes: int, hours_settings: HoursSettings) -> datetime:
    """Due time by walking real minutes and counting the open ones: slow, but obviously right."""
    instant = start
    while minutes == 0 and not _open_minute(instant, hours_settings):
        instant += timedelta(minutes=1)
    counted = 0
    while counted < minutes:
        counted += _open_minute(instant, hours_settings)
        instant += timedelta(minutes=1)
    return instant


# 2026 spans both DST switches; every start is a whole minute so the oracle can walk minutes.
minute_starts = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31),
                             timezones=st.just(UTC)).map(lambda d: d.replace(second=0, microsecond=0))


@settings(max_examples=60, deadline=None)
@given(start=minute_starts, minutes=st.integers(0, 16 * 60),
       hours_settings=st.sampled_from([DEFAULT, SPLIT, CHRISTMAS, ALWAYS]))
def test_due_at_matches_minute_walk(start: datetime, minutes: int, hours_settings: HoursSettings) -> None:
    assert due_at(start, minutes / 60, hours_settings) == _walk(start, minutes, hours_settings)


# Opening and closing times avoid 01:00-04:00, where DST switches make a wall-clock time
# missing or double in the zones below; results inside spans may still fall in those hours.
_bounds = st.sampled_from([m for m in range(0, 24 * 60 + 1, 15) if not 60 < m < 240])


@st.composite
def hours_settings(draw: st.DrawFn) -> HoursSettings:
    week = {}
    for day in WEEKDAYS:
        bounds = sorted(draw(st.sets(_bounds, max_size=4)))
        pairs = list(zip(bounds[::2], bounds[1::2], strict=False))
        week[day] = [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in pairs]
    if not any(week.values()):
        week["wed"] = ["10:00-11:00"]
    zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
    return HoursSettings.model_validate({
        "timezone": draw(st.sampled_from(zones)),
        "weekly": week,
        "holidays": draw(st.lists(st.dates(date(2026, 1, 1), date(2026, 3, 31)), max_size=20)),
    })


aware = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
business_hours = st.floats(0, 60, allow_nan=False)


def _inside_or_closing(due: datetime, hours_settings: HoursSettings) -> bool:
    minute = due.hour * 60 + due.minute + (due.second + due.microsecond / 1e6) / 60
    today = due.date() not in hours_settings.holidays and any(
        first <= minute <= last for first, last in hours_settings.weekly[due.weekday()]
    )
    yesterday = due.date() - timedelta(days=1)
    closing_midnight = minute == 0 and yesterday not in hours_settings.holidays and any(
        last == 24 * 60 for _, last in hours_settings.weekly[yesterday.weekday()]
    )
    return today or closing_midnight


@settings(max_examples=300, deadline=None)
@given(hours_settings=hours_settings(), starts=st.tuples(aware, aware), hours=business_hours)
def test_due_at_is_monotonic_in_start(hours_settings: HoursSettings, starts: tuple[datetime, datetime],
                                      hours: float) -> None:
    early, late = sorted(starts)
    assert due_at(early, hours, hours_settings) <= due_at(late, hours, hours_settings)


@settings(max_examples=300, deadline=None)
@given(hours_settings=hours_settings(), start=aware, amounts=st.tuples(business_hours, business_hours))
def test_due_at_is_monotonic_in_hours(hours_settings: HoursSettings, start: datetime,
                                      amounts: tuple[float, float]) -> None:
    less, more = sorted(amounts)
    assert due_at(start, less, hours_settings) <= due_at(start, more, hours_settings)


@settings(max_examples=300, deadline=None)
@given(hours_settings=hours_settings(), start=aware, hours=business_hours)
def test_due_at_lands_in_business_hours(hours_settings: HoursSettings, start: datetime, hours: float) -> None:
    due = due_at(start, hours, hours_settings)
    assert due >= start
    assert due.tzinfo == ZoneInfo(hours_settings.timezone)
    assert _inside_or_closing(due, hours_settings)
