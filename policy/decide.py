"""decide(): the provider's policy as a pure function over (report, facts, config) — a table of named rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.model import CONFIRMED_STATUSES, Decision, Facts, Outcome, RuleHit

Check = Callable[[AbuseReport, Facts, PolicyConfig], str | None]


@dataclass(frozen=True)
class Rule:
    """A named check; when it returns a reason the rule fires with its outcome (first firing rule wins)."""

    name: str
    outcome: Outcome
    check: Check


def _no_indicators(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if facts.has_indicators:
        return None
    return "the report names no IP address, domain, URL or mailbox that could be checked"


def _not_ours(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if facts.matched_services:
        return None
    return "no indicator of the report belongs to a service we host at the time of the incident"


def _join_open_case(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if facts.open_case_id is None:
        return None
    if facts.open_case_status == "monitoring" and _fbl_escalates(report, facts, config):
        return None  # the monitored case turns into a real one below
    return f"same customer and category as open case {facts.open_case_id} ({facts.open_case_status})"


def _fbl_escalates(report: AbuseReport, facts: Facts, config: PolicyConfig) -> bool:
    return facts.feedback_loop_volume >= config.fbl_threshold


def _fbl_below_threshold(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if report.reporter_kind != "feedback-loop" or _fbl_escalates(report, facts, config):
        return None
    return (
        f"{facts.feedback_loop_volume} feedback-loop complaint(s) in {config.fbl_window_hours:g} h,"
        f" below the threshold of {config.fbl_threshold}"
    )


def _details_invalid(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if facts.customer is None or not facts.customer.detail_problems:
        return None
    return "invalid customer details: " + "; ".join(facts.customer.detail_problems)


def _second_complaint(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    if facts.confirmed_cases_in_window < 1:
        return None
    return (
        f"{facts.confirmed_cases_in_window} earlier confirmed case(s) for this customer"
        f" within {config.repeat_window_days} days"
    )


def _first_complaint(report: AbuseReport, facts: Facts, config: PolicyConfig) -> str | None:
    return f"first complaint: the customer is warned and has {config.warning_hours:g} hours to act"


RULES: tuple[Rule, ...] = (
    Rule("no-indicators", Outcome.REVIEW, _no_indicators),
    Rule("not-our-resource", Outcome.REJECT, _not_ours),
    Rule("joins-open-case", Outcome.JOIN, _join_open_case),
    Rule("feedback-loop-below-threshold", Outcome.MONITOR, _fbl_below_threshold),
    Rule("customer-details-invalid", Outcome.SUSPEND, _details_invalid),
    Rule("second-complaint", Outcome.SUSPEND, _second_complaint),
    Rule("first-complaint-warning", Outcome.WARN, _first_complaint),
)


def decide(report: AbuseReport, facts: Facts, config: PolicyConfig) -> Decision:
    """Apply the rules in order; the first that fires decides. Pure: no I/O, no clock but facts.now."""
    for rule in RULES:
        reason = rule.check(report, facts, config)
        if reason is None:
            continue
        hit = RuleHit(rule.name, reason)
        return _effects(rule.outcome, (hit,), report, facts, config)
    raise AssertionError("the last rule always fires")  # pragma: no cover


def _effects(
    outcome: Outcome, rules: tuple[RuleHit, ...], report: AbuseReport, facts: Facts, config: PolicyConfig
) -> Decision:
    answer = "complainant-result" if config.notify_complainant and not report.automated else None
    if outcome is Outcome.WARN:
        return Decision(
            outcome,
            rules,
            deadline_at=facts.now + timedelta(hours=config.warning_hours),
            notify_customer="customer-warning",
            notify_complainant=answer,
        )
    if outcome is Outcome.SUSPEND:
        return Decision(
            outcome,
            rules,
            suspend_services=facts.account_services or facts.matched_services,
            notify_customer="customer-suspension",
            notify_complainant=answer,
        )
    if outcome is Outcome.REJECT:
        return Decision(outcome, rules, notify_complainant=answer)
    return Decision(outcome, rules)


def decide_deadline(case_status: str, reports_since_warning: int, config: PolicyConfig) -> Decision:
    """At the end of the warning period: suspend unless the case was resolved with no new report since."""
    if case_status == "resolved" and reports_since_warning == 0:
        return Decision(Outcome.NONE, (RuleHit("resolved-before-deadline", "the customer fixed it in time"),))
    if case_status not in ("warned", "resolved"):
        return Decision(
            Outcome.NONE, (RuleHit("deadline-not-applicable", f"case is {case_status}: nothing to enforce"),)
        )
    reason = (
        f"{reports_since_warning} new report(s) since the warning"
        if case_status == "resolved"
        else f"still not resolved {config.warning_hours:g} hours after the warning"
    )
    return Decision(
        Outcome.SUSPEND,
        (RuleHit("warning-expired", reason),),
        notify_customer="customer-suspension",
    )


def is_confirmed(status: str) -> bool:
    """A case whose facts were established (it counts for the second-complaint rule)."""
    return status in CONFIRMED_STATUSES
