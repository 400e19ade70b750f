"""decide(): the provider's policy as a pure function over (report, facts, config) — a table of named rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.case import Status
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
    """A row of the policy: a named check and what follows when it fires (the first firing rule wins).

    verified: the rule runs after verification (the first ones need none: nothing of ours to verify).
    flags: flags the case gets. hold: "review" — a suspension on facts that are not strongly confirmed goes to a
    person instead (the rule name `suspension-needs-confirmation` is added).
    """

    name: str
    outcome: Outcome
    check: Check
    verified: bool = True
    flags: tuple[str, ...] = ()
    hold: bool = False


@dataclass(frozen=True)
class Effect:
    """What an outcome sends: the customer's mail, whether the complainant is answered, a deadline, a suspension."""

    notify_customer: str | None = None
    answer: bool = False
    deadline: bool = False
    suspend: bool = False


EFFECTS: dict[Outcome, Effect] = {
    Outcome.REJECT: Effect(answer=True),
    Outcome.MONITOR: Effect(),
    Outcome.REVIEW: Effect(),
    Outcome.JOIN: Effect(),
    Outcome.NONE: Effect(),
    Outcome.NOTICE: Effect(notify_customer="customer-notice", answer=True),
    Outcome.WARN: Effect(notify_customer="customer-warning", answer=True, deadline=True),
    Outcome.SUSPEND: Effect(notify_customer="customer-suspension", answer=True, suspend=True),
}
HOLD = RuleHit("suspension-needs-confirmation", "the policy calls for a suspension; the facts are not confirmed")


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
    if c.facts.open_case_status == Status.MONITORING:
        return c.confirmation is not Confirmation.NONE and _fbl_volume_reached(c)
    if c.facts.open_case_status in (Status.NEEDS_REVIEW, Status.RECEIVED):
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
    Rule("no-indicators", Outcome.REVIEW, _no_indicators, verified=False),
    Rule("not-our-resource", Outcome.REJECT, _not_ours, verified=False),
    Rule("joins-open-case", Outcome.JOIN, _join_open_case),
    Rule("reporter-unverified", Outcome.REVIEW, _unverified),
    Rule(
        "authority-order", Outcome.SUSPEND, _authority_order, flags=("authority-order", "preserve-evidence"), hold=True
    ),
    Rule("notice-not-accusation", Outcome.NOTICE, _notice, flags=("notice",)),
    Rule("feedback-loop-below-threshold", Outcome.MONITOR, _fbl_below_threshold),
    Rule("critical-severity", Outcome.SUSPEND, _critical, flags=("legal-escalation", "preserve-evidence"), hold=True),
    Rule("customer-details-invalid", Outcome.SUSPEND, _details_invalid, hold=True),
    Rule("new-account-fraud", Outcome.SUSPEND, _new_account, hold=True),
    Rule("second-complaint", Outcome.SUSPEND, _second_complaint, hold=True),
    Rule("first-complaint-warning", Outcome.WARN, _first_complaint),
)


def decide(report: AbuseReport, facts: Facts, config: PolicyConfig) -> Decision:
    """Verify, then apply the rules in order; the first that fires decides. Pure: no I/O, no clock but facts.now."""
    unverified = Context(report, facts, config, Confirmation.NONE)
    verified: Context | None = None
    checks: tuple[RuleHit, ...] = ()
    for rule in RULES:
        if rule.verified and verified is None:
            confirmation, checks = verify(report, facts, config)
            verified = Context(report, facts, config, confirmation)
        context = verified if rule.verified and verified is not None else unverified
        reason = rule.check(context)
        if reason is not None:
            hits = (*(h for h in checks if h.name != rule.name), RuleHit(rule.name, reason))
            return _apply(rule, hits, context)
    raise AssertionError("the last rule always fires")  # pragma: no cover


def _apply(rule: Rule, hits: tuple[RuleHit, ...], c: Context) -> Decision:
    """The decision a fired rule's row describes (its outcome's effects, its flags, its hold)."""
    if rule.hold and c.confirmation is not Confirmation.STRONG:
        return Decision(Outcome.REVIEW, (*hits, HOLD), confirmation=c.confirmation, severity=c.severity)
    effect = EFFECTS[rule.outcome]
    answer = effect.answer and c.config.notify_complainant and not c.report.automated
    return Decision(
        rule.outcome,
        hits,
        deadline_at=c.facts.now + timedelta(hours=_warning_hours(c)) if effect.deadline else None,
        suspend_services=(c.facts.account_services or c.facts.matched_services) if effect.suspend else (),
        notify_customer=effect.notify_customer,
        notify_complainant="complainant-result" if answer else None,
        flags=rule.flags,
        confirmation=c.confirmation,
        severity=c.severity,
    )


def decide_deadline(
    case_status: str, reports_since_warning: int, config: PolicyConfig, confirmation: Confirmation
) -> Decision:
    """At the end of the warning period: suspend unless the case was resolved with no new report since."""
    if case_status == Status.RESOLVED and reports_since_warning == 0:
        return Decision(Outcome.NONE, (RuleHit("resolved-before-deadline", "the customer fixed it in time"),))
    if case_status not in (Status.WARNED, Status.RESOLVED):
        return Decision(
            Outcome.NONE, (RuleHit("deadline-not-applicable", f"case is {case_status}: nothing to enforce"),)
        )
    reason = (
        f"{reports_since_warning} new report(s) since the warning"
        if case_status == Status.RESOLVED
        else "still not resolved at the end of the warning period"
    )
    hit = RuleHit("warning-expired", reason)
    if confirmation != Confirmation.STRONG:
        hold = RuleHit("deadline-needs-confirmation", "the deadline passed but the facts were never confirmed")
        return Decision(Outcome.REVIEW, (hit, hold), confirmation=confirmation)
    return Decision(Outcome.SUSPEND, (hit,), notify_customer="customer-suspension", confirmation=Confirmation.STRONG)
