"""The 24-working-hour clock: Mon–Fri 8–18 Europe/Paris, French public holidays off."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.settings import SlaConfig
from policy.sla import add_working_hours, is_working_day

PARIS = ZoneInfo("Europe/Paris")
CFG = SlaConfig()


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (paris(2026, 11, 27, 17, 0), paris(2026, 12, 2, 11, 0)),  # Friday 17:00 -> Wednesday 11:00
        (paris(2026, 11, 23, 8, 0), paris(2026, 11, 25, 12, 0)),  # Monday 8:00 -> Wednesday 12:00
        (paris(2026, 11, 23, 6, 30), paris(2026, 11, 25, 12, 0)),  # before opening: clock starts at 8
        (paris(2026, 11, 23, 22, 0), paris(2026, 11, 26, 12, 0)),  # after closing: starts next morning
        (paris(2026, 11, 28, 11, 0), paris(2026, 12, 2, 12, 0)),  # Saturday -> Monday 8:00 start
        (paris(2026, 12, 24, 17, 0), paris(2026, 12, 30, 11, 0)),  # Christmas day off
        (paris(2026, 5, 13, 9, 0), paris(2026, 5, 18, 13, 0)),  # Ascension Thursday 14 May off
        (paris(2026, 3, 27, 17, 0), paris(2026, 4, 1, 11, 0)),  # across the spring DST change
        (paris(2026, 10, 23, 17, 0), paris(2026, 10, 28, 11, 0)),  # across the autumn DST change
    ],
)
def test_due_dates(start: datetime, due: datetime) -> None:
    assert add_working_hours(start, 24, CFG) == due.astimezone(UTC)


def test_result_is_utc() -> None:
    assert add_working_hours(paris(2026, 11, 23, 8, 0), 1, CFG).tzinfo == ZoneInfo("UTC")


def test_holidays_and_weekends() -> None:
    assert not is_working_day(paris(2026, 7, 14).date(), CFG)
    assert not is_working_day(paris(2026, 11, 28).date(), CFG)
    assert is_working_day(paris(2026, 11, 27).date(), CFG)
    closed = SlaConfig(extra_closed_days=["2026-11-27"])
    assert not is_working_day(paris(2026, 11, 27).date(), closed)


def test_naive_start_refused() -> None:
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 1, 5, 9), 1, CFG)
