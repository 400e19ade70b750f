"""The SLA state ops see per case: answered, not-applicable, ok, due-soon, breached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policy.queries import sla_state

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("answered", "kind", "due", "state"),
    [
        (NOW, "person", NOW - timedelta(hours=1), "answered"),
        (None, "feedback-loop", NOW - timedelta(hours=1), "not-applicable"),
        (None, "person", NOW + timedelta(hours=10), "ok"),
        (None, "person", NOW + timedelta(hours=2), "due-soon"),
        (None, "person", NOW - timedelta(minutes=1), "breached"),
        (None, "unknown", NOW, "breached"),
    ],
)
def test_sla_state(answered: datetime | None, kind: str, due: datetime, state: str) -> None:
    assert sla_state({"answered_at": answered, "reporter_kind": kind, "sla_due_at": due}, NOW) == state
