"""decide() as a table: report × facts → outcome, the rule that decided, and the verification rules on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.decide import decide, decide_deadline
from policy.model import Confirmation, CustomerFacts, EvidenceCheck, Facts, Outcome

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CFG = PolicyConfig()
GOOD = CustomerFacts(id="C1", created_at=datetime(2021, 3, 1, tzinfo=UTC))
BAD = CustomerFacts(id="C1", created_at=datetime(2021, 3, 1, tzinfo=UTC), detail_problems=("identity not verified",))
NEW = CustomerFacts(id="C1", created_at=NOW - timedelta(days=5))
TRUSTED = {"reporter_trusted_as": "Example FBL", "reporter_authenticated": True}
TRUSTED_FBL = TRUSTED | {"reporter_kind": "feedback-loop"}
FORGED = {"reporter_trusted_as": "Example FBL", "reporter_authenticated": False}
URL_OK = {"evidence": (EvidenceCheck("url-on-our-resource", True, "host is ours"),)}
CHAIN_OK = (EvidenceCheck("received-chain", True, "shows 203.0.113.10", independent=False),)
CHAIN_BAD = (EvidenceCheck("received-chain", False, "does not show our address", independent=False),)


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "now": NOW,
        "matched_services": ("S1",),
        "matched_indicators": ("203.0.113.10",),
        "customer": GOOD,
        "account_services": ("S1", "S2"),
    }
    return Facts(**(base | kw))  # type: ignore[arg-type]


def report(category: str = "phishing", kind: str = "person", **kw: object) -> AbuseReport:
    automated = kind != "person"
    return AbuseReport(
        report_id="r", category=category, reporter="someone@example.org", reporter_kind=kind, automated=automated, **kw
    )  # type: ignore[arg-type]


PERSON = report()
FBL = report("spam", "feedback-loop")
MACHINE = report("intrusion", "machine")


@dataclass(frozen=True)
class Row:
    name: str
    report: AbuseReport
    facts: Facts
    outcome: Outcome
    rule: str
    also: tuple[str, ...] = ()  # other rules expected among the hits
    config: PolicyConfig = field(default_factory=lambda: CFG)


ROWS = [
    Row(
        "no indicators at all",
        PERSON,
        facts(has_indicators=False, matched_services=()),
        Outcome.REVIEW,
        "no-indicators",
    ),
    Row("indicators, none ours", PERSON, facts(matched_services=(), customer=None), Outcome.REJECT, "not-our-resource"),
    Row(
        "machine report not ours",
        MACHINE,
        facts(matched_services=(), customer=None, **TRUSTED),
        Outcome.REJECT,
        "not-our-resource",
    ),
    Row(
        "open warned case joins",
        PERSON,
        facts(open_case_id="AD-1", open_case_status="warned", **TRUSTED),
        Outcome.JOIN,
        "joins-open-case",
    ),
    Row(
        "unverified report joins a review case",
        PERSON,
        facts(open_case_id="AD-1", open_case_status="needs-review"),
        Outcome.JOIN,
        "joins-open-case",
    ),
    Row(
        "trusted report decides a review case",
        PERSON,
        facts(open_case_id="AD-1", open_case_status="needs-review", **TRUSTED),
        Outcome.WARN,
        "first-complaint-warning",
        ("reporter-authenticated",),
    ),
    Row("unknown person, nothing to check", PERSON, facts(), Outcome.REVIEW, "reporter-unverified"),
    Row(
        "forged feedback loop",
        FBL,
        facts(feedback_loop_volume=9, **FORGED),
        Outcome.REVIEW,
        "reporter-unverified",
        ("feedback-loop-unauthenticated",),
    ),
    Row(
        "forged feedback loop never suspends",
        FBL,
        facts(customer=BAD, confirmed_cases_in_window=3, **FORGED),
        Outcome.REVIEW,
        "reporter-unverified",
    ),
    Row(
        "forged feedback loop whose embedded Received names our address",
        FBL,
        facts(evidence=CHAIN_OK, **FORGED),
        Outcome.REVIEW,
        "reporter-unverified",
        ("feedback-loop-unauthenticated",),
    ),
    Row(
        "person, URL on our network: warn",
        PERSON,
        facts(**URL_OK),
        Outcome.WARN,
        "first-complaint-warning",
        ("evidence-url-on-our-resource",),
    ),
    Row(
        "person with URL evidence cannot suspend (invalid details)",
        PERSON,
        facts(customer=BAD, **URL_OK),
        Outcome.REVIEW,
        "suspension-needs-confirmation",
        ("customer-details-invalid",),
    ),
    Row(
        "person with URL evidence cannot suspend (second complaint)",
        PERSON,
        facts(confirmed_cases_in_window=1, **URL_OK),
        Outcome.REVIEW,
        "suspension-needs-confirmation",
        ("second-complaint",),
    ),
    Row(
        "single trusted FBL complaint is monitored",
        FBL,
        facts(feedback_loop_volume=1, **TRUSTED_FBL),
        Outcome.MONITOR,
        "feedback-loop-below-threshold",
    ),
    Row(
        "FBL below threshold joins the monitoring case",
        FBL,
        facts(feedback_loop_volume=3, open_case_id="AD-2", open_case_status="monitoring", **TRUSTED_FBL),
        Outcome.JOIN,
        "joins-open-case",
    ),
    Row(
        "FBL volume reaches threshold: warn",
        FBL,
        facts(feedback_loop_volume=5, open_case_id="AD-2", open_case_status="monitoring", **TRUSTED_FBL),
        Outcome.WARN,
        "first-complaint-warning",
    ),
    Row(
        "FBL over threshold, repeat offender",
        FBL,
        facts(feedback_loop_volume=9, confirmed_cases_in_window=1, **TRUSTED_FBL),
        Outcome.SUSPEND,
        "second-complaint",
    ),
    Row(
        "trusted report whose Received chain contradicts it",
        FBL,
        facts(feedback_loop_volume=9, evidence=CHAIN_BAD, **TRUSTED_FBL),
        Outcome.REVIEW,
        "reporter-unverified",
        ("evidence-received-chain-failed", "evidence-inconsistent"),
    ),
    Row(
        "trusted report with matching Received chain",
        FBL,
        facts(feedback_loop_volume=9, evidence=CHAIN_OK, **TRUSTED_FBL),
        Outcome.WARN,
        "first-complaint-warning",
        ("reporter-authenticated", "evidence-received-chain"),
    ),
    Row(
        "reporter distrusted by its history",
        MACHINE,
        facts(reporter_rejected=5, reporter_confirmed=1, **TRUSTED),
        Outcome.REVIEW,
        "reporter-unverified",
        ("reporter-distrusted",),
    ),
    Row(
        "reporter with a good history stays trusted",
        MACHINE,
        facts(reporter_rejected=3, reporter_confirmed=10, **TRUSTED),
        Outcome.WARN,
        "first-complaint-warning",
    ),
    Row(
        "corroborated by independent authenticated reporters",
        PERSON,
        facts(corroborating_reporters=2),
        Outcome.WARN,
        "first-complaint-warning",
        ("corroborated",),
    ),
    Row(
        "corroborated and invalid details: suspend",
        PERSON,
        facts(corroborating_reporters=3, customer=BAD),
        Outcome.SUSPEND,
        "customer-details-invalid",
        ("corroborated",),
    ),
    Row(
        "our own monitoring: warn",
        report("spam", "internal"),
        facts(),
        Outcome.WARN,
        "first-complaint-warning",
        ("internal-report",),
    ),
    Row(
        "our own monitoring, repeat: suspend",
        report("spam", "internal"),
        facts(confirmed_cases_in_window=1),
        Outcome.SUSPEND,
        "second-complaint",
    ),
    Row(
        "ops confirmed, invalid details: suspend",
        PERSON,
        facts(customer=BAD, ops_confirmed=True),
        Outcome.SUSPEND,
        "customer-details-invalid",
        ("ops-confirmed",),
    ),
    Row(
        "invalid details beat second complaint",
        MACHINE,
        facts(customer=BAD, confirmed_cases_in_window=2, **TRUSTED),
        Outcome.SUSPEND,
        "customer-details-invalid",
    ),
    Row(
        "second complaint: suspend without warning",
        MACHINE,
        facts(confirmed_cases_in_window=1, **TRUSTED),
        Outcome.SUSPEND,
        "second-complaint",
    ),
    Row(
        "first complaint from a trusted reporter: warn",
        MACHINE,
        facts(**TRUSTED),
        Outcome.WARN,
        "first-complaint-warning",
    ),
    Row(
        "illegal content, trusted: suspend at once",
        report("illegal-content", "machine"),
        facts(**TRUSTED),
        Outcome.SUSPEND,
        "critical-severity",
    ),
    Row(
        "illegal content, weakly confirmed: review",
        report("illegal-content"),
        facts(**URL_OK),
        Outcome.REVIEW,
        "suspension-needs-confirmation",
        ("critical-severity",),
    ),
    Row(
        "illegal content, unverified: review", report("illegal-content"), facts(), Outcome.REVIEW, "reporter-unverified"
    ),
    Row(
        "new account hosting phishing: fraud",
        report("phishing", "machine"),
        facts(customer=NEW, **TRUSTED),
        Outcome.SUSPEND,
        "new-account-fraud",
    ),
    Row(
        "new account, spam is not in the band",
        report("spam", "machine"),
        facts(customer=NEW, **TRUSTED),
        Outcome.WARN,
        "first-complaint-warning",
    ),
    Row(
        "invalid details come before tenure",
        report("phishing", "machine"),
        facts(customer=CustomerFacts(id="C1", created_at=NOW - timedelta(days=2), detail_problems=("x",)), **TRUSTED),
        Outcome.SUSPEND,
        "customer-details-invalid",
    ),
    Row(
        "authenticated authority order: effect without warning",
        report("illegal-content", "machine"),
        facts(authority="PHAROS", authority_deadline_hours=1),
        Outcome.SUSPEND,
        "authority-order",
        ("authority-authenticated",),
    ),
    Row(
        "an authority order does not just join an open case",
        report("illegal-content", "machine"),
        facts(authority="PHAROS", open_case_id="AD-9", open_case_status="warned"),
        Outcome.SUSPEND,
        "authority-order",
    ),
    Row(
        "a report about a suspended account joins its case",
        MACHINE,
        facts(open_case_id="AD-3", open_case_status="suspended", customer=BAD, **TRUSTED),
        Outcome.JOIN,
        "joins-open-case",
    ),
    Row(
        "authority order about something we do not host",
        report("illegal-content", "machine"),
        facts(authority="PHAROS", matched_services=(), customer=None),
        Outcome.REJECT,
        "not-our-resource",
    ),
    Row(
        "confirmation can be switched off",
        PERSON,
        facts(),
        Outcome.WARN,
        "first-complaint-warning",
        ("confirmation-not-required",),
        PolicyConfig(require_confirmation=False),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_decision_table(row: Row) -> None:
    decision = decide(row.report, row.facts, row.config)
    assert decision.outcome is row.outcome
    assert decision.rule_names[-1] == row.rule
    assert set(row.also) <= set(decision.rule_names)
    assert all(r.reason for r in decision.rules)
    if decision.outcome is Outcome.SUSPEND:
        assert decision.confirmation is Confirmation.STRONG


def test_there_are_at_least_thirty_scenarios() -> None:
    assert len(ROWS) >= 30


def test_warning_sets_the_48h_deadline_and_mails() -> None:
    d = decide(PERSON, facts(**URL_OK), CFG)
    assert d.deadline_at == NOW + timedelta(hours=48)
    assert d.status == "warned" and d.confirmation is Confirmation.WEAK
    assert d.notify_customer == "customer-warning"
    assert d.notify_complainant == "complainant-result"
    assert d.suspend_services == ()


def test_low_severity_gets_a_longer_warning() -> None:
    accusing = CFG.model_copy(update={"notice_categories": []})  # vulnerabilities treated as complaints
    d = decide(report("vulnerability", "machine"), facts(**TRUSTED), accusing)
    assert d.deadline_at == NOW + timedelta(hours=168) and d.severity == "low"


def test_an_exposed_service_is_a_notice_without_deadline_or_threat() -> None:
    d = decide(report("vulnerability", "machine"), facts(customer=BAD, confirmed_cases_in_window=2, **TRUSTED), CFG)
    assert d.outcome is Outcome.NOTICE and d.status == "warned" and d.rule_names[-1] == "notice-not-accusation"
    assert d.deadline_at is None and d.suspend_services == () and d.notify_customer == "customer-notice"
    assert d.flags == ("notice",)


def test_suspension_stops_every_service_of_the_account() -> None:
    d = decide(MACHINE, facts(customer=BAD, **TRUSTED), CFG)
    assert d.suspend_services == ("S1", "S2")
    assert d.notify_customer == "customer-suspension"
    assert d.deadline_at is None


def test_critical_content_is_flagged_for_legal_escalation() -> None:
    d = decide(report("illegal-content", "machine"), facts(**TRUSTED), CFG)
    assert d.flags == ("legal-escalation", "preserve-evidence")


def test_automated_reporters_get_no_answer() -> None:
    assert decide(MACHINE, facts(**TRUSTED), CFG).notify_complainant is None
    assert decide(MACHINE, facts(matched_services=(), customer=None), CFG).notify_complainant is None


def test_rejection_answers_the_person() -> None:
    d = decide(PERSON, facts(matched_services=(), customer=None), CFG)
    assert d.status == "rejected" and d.notify_complainant == "complainant-result" and not d.suspend_services


def test_configured_warning_period_and_threshold() -> None:
    cfg = PolicyConfig(warning_hours=24, fbl_threshold=2)
    assert decide(MACHINE, facts(**TRUSTED), cfg).deadline_at == NOW + timedelta(hours=24)
    assert decide(FBL, facts(feedback_loop_volume=2, **TRUSTED_FBL), cfg).outcome is Outcome.WARN


@pytest.mark.parametrize(
    ("status", "new_reports", "confirmation", "outcome", "rule"),
    [
        ("warned", 0, "strong", Outcome.SUSPEND, "warning-expired"),
        ("warned", 3, "strong", Outcome.SUSPEND, "warning-expired"),
        ("resolved", 0, "strong", Outcome.NONE, "resolved-before-deadline"),
        ("resolved", 1, "strong", Outcome.SUSPEND, "warning-expired"),
        ("warned", 0, "weak", Outcome.REVIEW, "deadline-needs-confirmation"),
        ("resolved", 0, "weak", Outcome.NONE, "resolved-before-deadline"),
        ("suspended", 0, "strong", Outcome.NONE, "deadline-not-applicable"),
        ("lifted", 0, "strong", Outcome.NONE, "deadline-not-applicable"),
    ],
)
def test_deadline_table(status: str, new_reports: int, confirmation: str, outcome: Outcome, rule: str) -> None:
    d = decide_deadline(status, new_reports, CFG, confirmation)
    assert d.outcome is outcome
    assert d.rule_names[-1] == rule


def test_an_authority_order_preserves_evidence() -> None:
    d = decide(report("copyright", "machine"), facts(authority="Court", authority_deadline_hours=24), CFG)
    assert d.flags == ("authority-order", "preserve-evidence") and d.notify_complainant is None
