"""The per-case SLA state (answered, not-applicable, ok, due-soon, breached) agrees with the transparency share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy import transparency
from policy.sla import answered_within_sla_share, sla_fields, sla_matches, sla_state

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("answered", "kind", "due", "state"),
    [
        (NOW, "person", NOW - H, "answered"),  # answered late: still "answered", never "breached"
        (NOW - 2 * H, "person", NOW - H, "answered"),
        (None, "feedback-loop", NOW - H, "not-applicable"),
        (None, "person", NOW + 10 * H, "ok"),
        (None, "person", NOW + 2 * H, "due-soon"),
        (None, "person", NOW - timedelta(minutes=1), "breached"),
        (None, "unknown", NOW, "breached"),
    ],
)
def test_sla_state(answered: datetime | None, kind: str, due: datetime, state: str) -> None:
    assert sla_state({"answered_at": answered, "reporter_kind": kind, "sla_due_at": due}, NOW) == state


def test_a_case_without_a_reporter_address_has_nobody_to_answer() -> None:
    assert sla_state({"answered_at": None, "reporter_kind": "unknown", "reporter": None, "sla_due_at": NOW}, NOW) == (
        "not-applicable"
    )


def row(cid: str, answered: datetime | None, due: datetime, kind: str = "person", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": cid,
        "answered_at": answered,
        "sla_due_at": due,
        "reporter_kind": kind,
        "reporter": "someone@example.org",
        "received_at": NOW - 48 * H,
        "opened_at": NOW - 48 * H,
        "category": "phishing",
        "origin": "notice",
        "status": "warned",
        "customer_id": "C1",
        "effect_at": None,
        "automation": "fully",
        "flags": [],
    }
    return base | kw


# (case, expected sla_state at NOW, expected on-time flag)
TABLE = [
    (row("on-time-1", NOW - 30 * H, NOW - 20 * H), "answered", True),
    (row("on-time-2", NOW - H, NOW + 5 * H), "answered", True),
    (row("late", NOW - H, NOW - 2 * H), "answered", False),
    (row("breached", None, NOW - H), "breached", None),
    (row("pending-ok", None, NOW + 10 * H), "ok", None),
    (row("pending-soon", None, NOW + H), "due-soon", None),
    (row("fbl", None, NOW - H, kind="feedback-loop"), "not-applicable", None),
    (row("internal", None, NOW - H, kind="internal"), "not-applicable", None),
    (row("no-address", None, NOW - H, kind="unknown", reporter=None), "not-applicable", None),
]


def test_sla_state_and_the_transparency_share_agree_on_a_table() -> None:
    rows = [case for case, _, _ in TABLE]
    for case, state, on_time in TABLE:
        assert sla_fields(case, NOW) == {"sla_state": state, "sla_on_time": on_time}, case["id"]
    # The share, recounted from the states: on time among every case settled (answered, or breached).
    states = [sla_fields(c, NOW) for c in rows]
    settled = [s for s in states if s["sla_state"] in ("answered", "breached")]
    expected = round(sum(1 for s in settled if s["sla_on_time"]) / len(settled), 4)
    assert expected == 0.5  # 2 on time, 1 late, 1 breached
    assert answered_within_sla_share(rows, NOW) == expected
    assert transparency.figures(2026, rows, [], [], NOW)["internal"]["answered_within_sla_share"] == expected


def test_every_complainant_answered_in_time_is_a_share_of_one() -> None:
    """The issue's run: every complainant answered in time must not read 0.43."""
    rows = [row(f"c{i}", NOW - (i + 1) * H, NOW + H) for i in range(7)] + [row("fbl", None, NOW - H, "feedback-loop")]
    assert all(sla_state(c, NOW) in ("answered", "not-applicable") for c in rows)
    assert answered_within_sla_share(rows, NOW) == 1.0


def test_without_now_a_closed_period_counts_the_unanswered_as_late() -> None:
    rows = [row("a", NOW - H, NOW), row("pending", None, NOW + 10 * H)]
    assert answered_within_sla_share(rows) == 0.5
    assert answered_within_sla_share(rows, NOW) == 1.0


@pytest.mark.parametrize(
    ("wanted", "ids"),
    [
        ("answered", {"on-time-1", "on-time-2", "late"}),
        ("answered-on-time", {"on-time-1", "on-time-2"}),
        ("answered-late", {"late"}),
        ("breached", {"breached"}),
        ("due-soon", {"pending-soon"}),
    ],
)
def test_the_sla_filter_of_cases_list(wanted: str, ids: set[str]) -> None:
    assert {c["id"] for c, _, _ in TABLE if sla_matches(sla_fields(c, NOW), wanted)} == ids
