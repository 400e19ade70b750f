"""The case's one transition table: what each transition allows, and that an illegal one is an error with a name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policy.case import JOINABLE, OPEN, TRANSITIONS, Case, IllegalTransition, Status, may
from policy.model import TRANSITION_FOR, Outcome

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def case(status: Status) -> Case:
    return Case(
        id="AD-0000000001",
        status=status,
        category="phishing",
        customer_id="C1",
        service_ids=("S1",),
        opened_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
@pytest.mark.parametrize("status", list(Status))
def test_every_transition_applies_exactly_where_the_table_says(name: str, status: Status) -> None:
    allowed, target = TRANSITIONS[name]
    if status in allowed:
        after = case(status).transition(name, NOW)
        assert after.status is target and after.updated_at == NOW
    else:
        with pytest.raises(IllegalTransition, match=name):
            case(status).transition(name, NOW)
    assert may(name, status) is (status in allowed)


def test_a_suspension_is_suspended_only_once_the_platform_confirmed() -> None:
    decided = case(Status.WARNED).transition("deadline-suspend", NOW)
    assert decided.status is Status.SUSPENDING
    assert decided.transition("platform-suspended", NOW).status is Status.SUSPENDED
    with pytest.raises(IllegalTransition):
        case(Status.LIFTED).transition("platform-suspended", NOW)


def test_a_status_never_changes_outside_a_transition() -> None:
    with pytest.raises(ValueError):
        case(Status.WARNED).change(NOW, status=Status.RESOLVED)


def test_every_decision_that_changes_a_status_names_a_transition() -> None:
    for outcome in Outcome:
        name = TRANSITION_FOR.get(outcome)
        if outcome in (Outcome.JOIN, Outcome.NONE):
            assert name is None
        else:
            assert name in TRANSITIONS


def test_open_cases_are_joinable_and_rows_round_trip() -> None:
    assert OPEN <= JOINABLE and Status.SUSPENDED in JOINABLE and Status.LIFTED not in JOINABLE
    original = case(Status.WARNED).change(NOW, flags=("notice",), rules=("first-complaint-warning",))
    assert Case.from_row(original.values()) == original
