"""Business hours: when an answer is due, whether it is overdue, and how to say so in a receipt.

Support promises are made in business time ("within 8 hours, Mo-Fr 09:00-16:00", seed 003), so a
Friday 15:30 mail is due on Tuesday 09:30, not on Friday at 23:30. Opening hours are wall-clock
times in the configured zone, while the time that counts is real elapsed time: each opening span
is turned into two instants with zoneinfo and measured in UTC, so DST switches need no special case.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from mailbot.config import HoursSettings, Language

_DAY = 24 * 60
_WEEKDAYS = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_DAY_NAMES = {"de": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"), "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock minute of `day`; minute 1440 is the next midnight."""
    if minute == _DAY:
        day, minute = day + timedelta(days=1), 0
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


@cache
def _public_holidays(country: str, subdivision: str, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision or None, years=year))


def is_holiday(day: date, settings: HoursSettings) -> bool:
    """Closed all day: a date listed in `holidays`, or a public holiday of the configured
    country and subdivision (computed per year, so a due time can run into the next one)."""
    if day in settings.holidays:
        return True
    country = settings.holidays_country
    return bool(country) and day in _public_holidays(country, settings.holidays_subdivision, day.year)


def due_at(start: datetime, hours: float, settings: HoursSettings) -> datetime:
    """The moment `hours` of business time after `start`, in the configured zone.

    A start outside business hours counts from the next opening; holidays are closed all day.
    A due time that ends a span exactly is returned as that closing time, not the next opening.
    """
    if start.utcoffset() is None:
        raise ValueError("start must be an aware datetime")
    if not (math.isfinite(hours) and hours >= 0):
        raise ValueError(f"hours must be a finite number >= 0, got {hours}")
    zone = ZoneInfo(settings.timezone)
    now = start.astimezone(UTC)
    remaining = timedelta(hours=hours)
    day = start.astimezone(zone).date()
    while True:  # terminates: config guarantees an open weekday and holidays are finitely many
        if not is_holiday(day, settings):
            for first, last in settings.weekly[day.weekday()]:
                opens, closes = _instant(day, first, zone), _instant(day, last, zone)
                if closes <= now:
                    continue
                begin = max(opens, now)
                if remaining <= closes - begin:
                    return (begin + remaining).astimezone(zone)
                remaining -= closes - begin
        day += timedelta(days=1)


def is_overdue(start: datetime, now: datetime, settings: HoursSettings) -> bool:
    """Whether the answer target (`settings.target_hours`) for a mail received at `start` has passed."""
    return now > due_at(start, settings.target_hours, settings)


def _zone_name(moment: datetime) -> str:
    zone = moment.tzinfo
    return zone.key if isinstance(zone, ZoneInfo) else str(moment.tzname())


def describe(due: datetime, language: Language) -> str:
    """`due` as a receipt would say it, in due's own zone, named so a customer elsewhere can
    convert it: 'Dienstag, 24.11.2026, 10:30 Uhr (Europe/Berlin)'."""
    weekday = _WEEKDAYS[language][due.weekday()]
    if language == "de":
        return f"{weekday}, {due:%d.%m.%Y, %H:%M} Uhr ({_zone_name(due)})"
    return f"{weekday}, {due.day} {_MONTHS_EN[due.month - 1]} {due.year}, {due:%H:%M} ({_zone_name(due)})"


def _spans(spans: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{a // 60:02}:{a % 60:02}-{b // 60:02}:{b % 60:02}" for a, b in spans)


def opening_hours(settings: HoursSettings, language: Language) -> str:
    """The weekly hours as one line, days with equal hours grouped: 'Mo-Fr 09:00-16:00 (Europe/Berlin)'.

    Written from `[hours]`, the table the answer-time clock runs on, so what a mail promises
    and what the clock counts cannot drift apart.
    """
    names = _DAY_NAMES[language]
    groups: list[tuple[int, int]] = []  # (first day, last day) of runs with the same hours
    for day, spans in enumerate(settings.weekly):
        if spans and groups and groups[-1][1] == day - 1 and settings.weekly[groups[-1][0]] == spans:
            groups[-1] = (groups[-1][0], day)
        elif spans:
            groups.append((day, day))
    parts = [(names[a] if a == b else f"{names[a]}-{names[b]}") + " " + _spans(settings.weekly[a])
             for a, b in groups]
    return f"{'; '.join(parts)} ({settings.timezone})"
