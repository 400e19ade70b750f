"""The working-hours clock: 'an answer within 24 working hours' (Mon–Fri 8–18 Europe/Paris, holidays off)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from core.settings import SlaConfig


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def is_working_day(day: date, config: SlaConfig) -> bool:
    """A day the desk works: a configured weekday, not a public holiday, not an extra closed day."""
    if day.weekday() not in config.working_days:
        return False
    if day.isoformat() in config.extra_closed_days:
        return False
    return day not in _holidays(config.holidays_country, config.holidays_subdivision, day.year)


def add_working_hours(start: datetime, hours: float, config: SlaConfig) -> datetime:
    """The instant (UTC) when `hours` working hours have elapsed after `start` (aware datetime)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    tz = ZoneInfo(config.timezone)
    remaining = timedelta(hours=hours)
    current = start.astimezone(tz)
    for _ in range(3660):  # ten years of days: a guard, never reached with a sane calendar
        day = current.date()
        if is_working_day(day, config):
            opens = datetime.combine(day, time(config.day_start), tz)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), tz)
                if config.day_end == 24
                else datetime.combine(day, time(config.day_end), tz)
            )
            if current < opens:
                current = opens
            if current < closes:
                available = closes - current
                if remaining <= available:
                    return (current + remaining).astimezone(ZoneInfo("UTC"))
                remaining -= available
        current = datetime.combine(day + timedelta(days=1), time(0), tz)
    raise ValueError("no working hours found in ten years: check the SLA calendar")
