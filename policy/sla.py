"""The working-hours clock: 'an answer within 24 working hours' (Mon–Fri 8–18 Europe/Paris, holidays off)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
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


# --- the SLA state of one case: one function for the case lists, the pages, the alerts and the transparency share ---

NO_SLA_KINDS = ("feedback-loop", "machine", "internal")  # nobody waits for an answer from us
DUE_SOON = timedelta(hours=4)
ANSWERED = "answered"
SLA_STATES = (ANSWERED, "not-applicable", "ok", "due-soon", "breached")
SLA_FILTERS = (*SLA_STATES, "answered-on-time", "answered-late")  # what `cases list --sla` accepts


def sla_applies(case: Mapping[str, Any]) -> bool:
    """Somebody waits for our answer: a person (or an unknown sender) with an address and a due time."""
    if case.get("reporter_kind") in NO_SLA_KINDS or case.get("sla_due_at") is None:
        return False
    return not ("reporter" in case and not case["reporter"])  # a row that says "no reporter address": nobody to answer


def answered_on_time(case: Mapping[str, Any]) -> bool | None:
    """True/False once the complainant was answered (in time or late); None while unanswered or without an SLA."""
    answered: datetime | None = case.get("answered_at")
    due: datetime | None = case.get("sla_due_at")
    if answered is None or due is None:
        return None
    return answered <= due


def sla_state(case: Mapping[str, Any], now: datetime) -> str:
    """Where the complainant's answer stands: answered (never breached once answered), not-applicable, ok,
    due-soon or breached. Whether an answer was in time is `answered_on_time`."""
    if case.get("answered_at") is not None:
        return ANSWERED
    if not sla_applies(case):
        return "not-applicable"
    due: datetime = case["sla_due_at"]
    if now >= due:
        return "breached"
    return "due-soon" if due - now <= DUE_SOON else "ok"


def sla_fields(case: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The SLA values a list or a page shows for a case: sla_state and sla_on_time (None unless answered)."""
    return {"sla_state": sla_state(case, now), "sla_on_time": answered_on_time(case)}


def sla_matches(fields: Mapping[str, Any], wanted: str) -> bool:
    """Whether a case's SLA fields match a `--sla` filter (answered, answered-on-time, answered-late, ...)."""
    if wanted == "answered-on-time":
        return fields["sla_state"] == ANSWERED and fields["sla_on_time"] is True
    if wanted == "answered-late":
        return fields["sla_state"] == ANSWERED and fields["sla_on_time"] is False
    return bool(fields["sla_state"] == wanted)


def answered_within_sla_share(rows: Iterable[Mapping[str, Any]], now: datetime | None = None) -> float | None:
    """The share of complainants answered within the SLA, from the same rules as `sla_state`.

    Counted: every case with an SLA that is settled at `now` (answered, or unanswered and breached); a case still
    within its time is not counted yet. Without `now` (a closed period) an unanswered case counts as late."""
    settled = on_time = 0
    for case in rows:
        if not sla_applies(case) and case.get("answered_at") is None:
            continue
        if case.get("sla_due_at") is None:
            continue
        state = sla_state(case, now) if now is not None else (ANSWERED if case.get("answered_at") else "breached")
        if state in ("ok", "due-soon"):
            continue
        settled += 1
        on_time += answered_on_time(case) is True
    return round(on_time / settled, 4) if settled else None
