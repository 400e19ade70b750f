"""decide(): the provider's policy as a pure function over (report, facts, config) — a table of named rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.case import CONFIRMED
from policy.model import Confirmation, Decision, Facts, Outcome, RuleHit
from policy.verify import verify


@dataclass(frozen=True)
class Context:
    """What every rule sees: the report, the facts, the configuration and the verification result."""

    report: AbuseReport
    facts: Facts
    config: PolicyConfig
    confirmation: Confirmation

    @property
    def severity(self) -> str:
        return self.config.severity.get(self.report.category, "low")


Check = Callable[[Context], str | None]


@dataclass(frozen=True)
class Rule:
    """A named check; when it returns a reason the rule fires with its outcome (first firing rule wins)."""

    name: str
    outcome: Outcome
    check: Check


def _no_indicators(c: Context) -> str | None:
    if c.facts.has_indicators:
        return None
    return "the report names no IP address, domain, URL or mailbox that could be checked"


def _not_ours(c: Context) -> str | None:
    if c.facts.matched_services:
        return None
    return "no indicator of the report belongs to a service we host at the time of the incident"


def _escalates(c: Context) -> bool:
    """A report that turns an open monitoring or review case into a decided one."""
    if c.facts.open_case_status == "monitoring":
        return c.confirmation is not Confirmation.NONE and _fbl_volume_reached(c)
    if c.facts.open_case_status in ("needs-review", "received"):
        return c.confirmation is not Confirmation.NONE
    return False


def _join_open_case(c: Context) -> str | None:
    if c.facts.open_case_id is None or _escalates(c) or c.facts.authority:  # an order always takes effect
        return None
    return f"same customer and category as open case {c.facts.open_case_id} ({c.facts.open_case_status})"


def _unverified(c: Context) -> str | None:
    if c.confirmation is not Confirmation.NONE:
        return None
    return "the facts could not be verified: a person on the abuse desk must confirm or reject them"


def _authority_order(c: Context) -> str | None:
    if not c.facts.authority:
        return None
    hours = c.facts.authority_deadline_hours or 24
    return f"order from {c.facts.authority}: effect to be given within {hours:g} h, without warning"


def _notice(c: Context) -> str | None:
    if c.report.category not in c.config.notice_categories:
        return None
    return f"{c.report.category}: an exposed or vulnerable service, a notice with how to fix it, no measure"


def _fbl_volume_reached(c: Context) -> bool:
    return c.facts.feedback_loop_volume >= c.config.fbl_threshold


def _fbl_below_threshold(c: Context) -> str | None:
    if c.facts.reporter_kind != "feedback-loop" or _fbl_volume_reached(c):
        return None
    return (
        f"{c.facts.feedback_loop_volume} feedback-loop complaint(s) in {c.config.fbl_window_hours:g} h,"
        f" below the threshold of {c.config.fbl_threshold}"
    )


def _critical(c: Context) -> str | None:
    handling = c.config.severity_handling.get(c.severity)
    if handling is None or handling.action != "suspend":
        return None
    return f"{c.report.category} is of {c.severity} severity: suspended at once, evidence preserved"


def _details_invalid(c: Context) -> str | None:
    customer = c.facts.customer
    if customer is None or not customer.detail_problems:
        return None
    return "invalid customer details: " + "; ".join(customer.detail_problems)


def _new_account(c: Context) -> str | None:
    customer = c.facts.customer
    if customer is None or customer.created_at is None:
        return None
    days = (c.facts.now - customer.created_at).days
    for band in c.config.tenure_bands:
        if days < band.max_days and c.report.category in band.suspend_categories:
            return f"account {days} day(s) old ({band.name}) hosting {c.report.category}: treated as fraud"
    return None


def _second_complaint(c: Context) -> str | None:
    if c.facts.confirmed_cases_in_window < 1:
        return None
    return (
        f"{c.facts.confirmed_cases_in_window} earlier confirmed case(s) for this customer"
        f" within {c.config.repeat_window_days} days"
    )


def _first_complaint(c: Context) -> str | None:
    return f"first complaint: the customer is warned and has {_warning_hours(c):g} hours to act"


def _warning_hours(c: Context) -> float:
    handling = c.config.severity_handling.get(c.severity)
    return (handling.warning_hours if handling else None) or c.config.warning_hours


RULES: tuple[Rule, ...] = (
    Rule("no-indicators", Outcome.REVIEW, _no_indicators),
    Rule("not-our-resource", Outcome.REJECT, _not_ours),
    Rule("joins-open-case", Outcome.JOIN, _join_open_case),
    Rule("reporter-unverified", Outcome.REVIEW, _unverified),
    Rule("authority-order", Outcome.SUSPEND, _authority_order),
    Rule("notice-not-accusation", Outcome.NOTICE, _notice),
    Rule("feedback-loop-below-threshold", Outcome.MONITOR, _fbl_below_threshold),
    Rule("critical-severity", Outcome.SUSPEND, _critical),
    Rule("customer-details-invalid", Outcome.SUSPEND, _details_invalid),
    Rule("new-account-fraud", Outcome.SUSPEND, _new_account),
    Rule("second-complaint", Outcome.SUSPEND, _second_complaint),
    Rule("first-complaint-warning", Outcome.WARN, _first_complaint),
)
PRE_VERIFICATION = 2  # the first two rules need no verification (nothing of ours to verify)


def decide(report: AbuseReport, facts: Facts, config: PolicyConfig) -> Decision:
    """Verify, then apply the rules in order; the first that fires decides. Pure: no I/O, no clock but facts.now."""
    for rule in RULES[:PRE_VERIFICATION]:
        reason = rule.check(Context(report, facts, config, Confirmation.NONE))
        if reason is not None:
            return _effects(
                rule.outcome, (RuleHit(rule.name, reason),), Context(report, facts, config, Confirmation.NONE)
            )
    confirmation, checks = verify(report, facts, config)
    context = Context(report, facts, config, confirmation)
    for rule in RULES[PRE_VERIFICATION:]:
        reason = rule.check(context)
        if reason is None:
            continue
        hits = (*(h for h in checks if h.name != rule.name), RuleHit(rule.name, reason))
        return _effects(rule.outcome, hits, context)
    raise AssertionError("the last rule always fires")  # pragma: no cover


def _effects(outcome: Outcome, rules: tuple[RuleHit, ...], c: Context) -> Decision:
    answer = "complainant-result" if c.config.notify_complainant and not c.report.automated else None
    if outcome is Outcome.SUSPEND and c.confirmation is not Confirmation.STRONG:
        hold = RuleHit(
            "suspension-needs-confirmation", "the policy calls for a suspension; the facts are not confirmed"
        )
        return Decision(Outcome.REVIEW, (*rules, hold), confirmation=c.confirmation, severity=c.severity)
    if outcome is Outcome.WARN:
        return Decision(
            outcome,
            rules,
            deadline_at=c.facts.now + timedelta(hours=_warning_hours(c)),
            notify_customer="customer-warning",
            notify_complainant=answer,
            confirmation=c.confirmation,
            severity=c.severity,
        )
    if outcome is Outcome.SUSPEND:
        flags: tuple[str, ...] = {
            "critical-severity": ("legal-escalation", "preserve-evidence"),
            "authority-order": ("authority-order", "preserve-evidence"),
        }.get(rules[-1].name, ())
        return Decision(
            outcome,
            rules,
            suspend_services=c.facts.account_services or c.facts.matched_services,
            notify_customer="customer-suspension",
            notify_complainant=answer,
            flags=flags,
            confirmation=c.confirmation,
            severity=c.severity,
        )
    if outcome is Outcome.NOTICE:
        return Decision(
            outcome,
            rules,
            notify_customer="customer-notice",
            notify_complainant=answer,
            flags=("notice",),
            confirmation=c.confirmation,
            severity=c.severity,
        )
    if outcome is Outcome.REJECT:
        return Decision(outcome, rules, notify_complainant=answer, confirmation=c.confirmation, severity=c.severity)
    return Decision(outcome, rules, confirmation=c.confirmation, severity=c.severity)


def decide_deadline(
    case_status: str, reports_since_warning: int, config: PolicyConfig, confirmation: str = Confirmation.STRONG
) -> Decision:
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
    hit = RuleHit("warning-expired", reason)
    if confirmation != Confirmation.STRONG:
        hold = RuleHit("deadline-needs-confirmation", "the deadline passed but the facts were never confirmed")
        return Decision(Outcome.REVIEW, (hit, hold), confirmation=Confirmation(confirmation))
    return Decision(Outcome.SUSPEND, (hit,), notify_customer="customer-suspension", confirmation=Confirmation.STRONG)


def is_confirmed(status: str) -> bool:
    """A case whose facts were established (it counts for the second-complaint rule)."""
    return status in CONFIRMED
