"""decide() as a table: report × facts → outcome and the rule that fired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.decide import decide, decide_deadline
from policy.model import CustomerFacts, Facts, Outcome

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CFG = PolicyConfig()
GOOD = CustomerFacts(id="C1", created_at=datetime(2021, 3, 1, tzinfo=UTC))
BAD = CustomerFacts(id="C1", created_at=None, detail_problems=("identity not verified",))


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "now": NOW, "matched_services": ("S1",), "matched_indicators": ("203.0.113.10",),
        "customer": GOOD, "account_services": ("S1", "S2"),
    }
    return Facts(**(base | kw))  # type: ignore[arg-type]


PERSON = AbuseReport(report_id="r1", category="phishing", reporter="victim@example.org", reporter_kind="person")
FBL = AbuseReport(report_id="r2", category="spam", reporter="fbl@example.net", reporter_kind="feedback-loop",
                  automated=True)
MACHINE = AbuseReport(report_id="r3", category="intrusion", reporter="bot@example.net", reporter_kind="machine",
                      automated=True)

SCENARIOS = [
    # (name, report, facts, outcome, rule)
    ("no indicators at all", PERSON, facts(has_indicators=False, matched_services=()), Outcome.REVIEW,
     "no-indicators"),
    ("indicators, none ours", PERSON, facts(matched_services=(), customer=None), Outcome.REJECT,
     "not-our-resource"),
    ("machine report not ours", MACHINE, facts(matched_services=(), customer=None), Outcome.REJECT,
     "not-our-resource"),
    ("open warned case joins", PERSON, facts(open_case_id="AD-1", open_case_status="warned"), Outcome.JOIN,
     "joins-open-case"),
    ("open review case joins", PERSON, facts(open_case_id="AD-1", open_case_status="needs-review"),
     Outcome.JOIN, "joins-open-case"),
    ("single FBL complaint monitored", FBL, facts(feedback_loop_volume=1), Outcome.MONITOR,
     "feedback-loop-below-threshold"),
    ("FBL below threshold joins monitoring case", FBL,
     facts(feedback_loop_volume=3, open_case_id="AD-2", open_case_status="monitoring"), Outcome.JOIN,
     "joins-open-case"),
    ("FBL volume reaches threshold: warn", FBL,
     facts(feedback_loop_volume=5, open_case_id="AD-2", open_case_status="monitoring"), Outcome.WARN,
     "first-complaint-warning"),
    ("FBL volume over threshold, repeat offender", FBL,
     facts(feedback_loop_volume=9, confirmed_cases_in_window=1), Outcome.SUSPEND, "second-complaint"),
    ("invalid customer details: suspend now", PERSON, facts(customer=BAD), Outcome.SUSPEND,
     "customer-details-invalid"),
    ("invalid details beat second complaint", PERSON, facts(customer=BAD, confirmed_cases_in_window=2),
     Outcome.SUSPEND, "customer-details-invalid"),
    ("second complaint: suspend without warning", PERSON, facts(confirmed_cases_in_window=1), Outcome.SUSPEND,
     "second-complaint"),
    ("first complaint: warn", PERSON, facts(), Outcome.WARN, "first-complaint-warning"),
    ("machine first complaint: warn", MACHINE, facts(), Outcome.WARN, "first-complaint-warning"),
]


@pytest.mark.parametrize(("name", "report", "f", "outcome", "rule"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_decision_table(name: str, report: AbuseReport, f: Facts, outcome: Outcome, rule: str) -> None:
    decision = decide(report, f, CFG)
    assert decision.outcome is outcome
    assert decision.rule_names == [rule]
    assert all(r.reason for r in decision.rules)


def test_warning_sets_the_48h_deadline_and_mails() -> None:
    d = decide(PERSON, facts(), CFG)
    assert d.deadline_at == NOW + timedelta(hours=48)
    assert d.status == "warned"
    assert d.notify_customer == "customer-warning"
    assert d.notify_complainant == "complainant-result"
    assert d.suspend_services == ()


def test_suspension_stops_every_service_of_the_account() -> None:
    d = decide(PERSON, facts(customer=BAD), CFG)
    assert d.suspend_services == ("S1", "S2")
    assert d.notify_customer == "customer-suspension"
    assert d.deadline_at is None


def test_automated_reporters_get_no_answer() -> None:
    assert decide(MACHINE, facts(), CFG).notify_complainant is None
    assert decide(MACHINE, facts(matched_services=(), customer=None), CFG).notify_complainant is None


def test_rejection_answers_the_person() -> None:
    d = decide(PERSON, facts(matched_services=(), customer=None), CFG)
    assert d.status == "rejected" and d.notify_complainant == "complainant-result" and not d.suspend_services


def test_configured_warning_period_and_threshold() -> None:
    cfg = PolicyConfig(warning_hours=24, fbl_threshold=2)
    assert decide(PERSON, facts(), cfg).deadline_at == NOW + timedelta(hours=24)
    assert decide(FBL, facts(feedback_loop_volume=2), cfg).outcome is Outcome.WARN


@pytest.mark.parametrize(
    ("status", "new_reports", "outcome", "rule"),
    [
        ("warned", 0, Outcome.SUSPEND, "warning-expired"),
        ("warned", 3, Outcome.SUSPEND, "warning-expired"),
        ("resolved", 0, Outcome.NONE, "resolved-before-deadline"),
        ("resolved", 1, Outcome.SUSPEND, "warning-expired"),
        ("suspended", 0, Outcome.NONE, "deadline-not-applicable"),
        ("lifted", 0, Outcome.NONE, "deadline-not-applicable"),
    ],
)
def test_deadline_table(status: str, new_reports: int, outcome: Outcome, rule: str) -> None:
    d = decide_deadline(status, new_reports, CFG)
    assert d.outcome is outcome
    assert d.rule_names == [rule]
