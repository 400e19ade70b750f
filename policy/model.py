"""The inputs and output of decide(): facts gathered by the investigation, and the decision with its rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from policy.case import CONFIRMED, Status


class Outcome(StrEnum):
    """What the policy does with a report."""

    REJECT = "reject"  # nothing we host: complainant told so
    MONITOR = "monitor"  # below a volume threshold: kept, no action yet
    REVIEW = "review"  # undecidable: a human decides, never suspend
    WARN = "warn"  # first complaint: the customer has the warning period to act
    NOTICE = "notice"  # an exposed or vulnerable service: the customer is told how to fix it, nothing is threatened
    SUSPEND = "suspend"  # services stopped, customer notified
    JOIN = "join"  # joins an open case as more evidence; nothing new to do
    NONE = "none"  # deadline check: nothing to do (resolved in time)


STATUS_FOR: dict[Outcome, Status] = {
    Outcome.REJECT: Status.REJECTED,
    Outcome.MONITOR: Status.MONITORING,
    Outcome.REVIEW: Status.NEEDS_REVIEW,
    Outcome.WARN: Status.WARNED,
    Outcome.NOTICE: Status.WARNED,
    Outcome.SUSPEND: Status.SUSPENDING,  # suspended once the platform confirmed
}
CONFIRMED_STATUSES = CONFIRMED  # read by the transparency figures
TRANSITION_FOR: dict[Outcome, str] = {
    Outcome.REJECT: "decide-reject",
    Outcome.MONITOR: "decide-monitor",
    Outcome.REVIEW: "decide-review",
    Outcome.WARN: "decide-warn",
    Outcome.NOTICE: "decide-warn",
    Outcome.SUSPEND: "decide-suspend",
}


class Confirmation(StrEnum):
    """How well the facts of a report are established.

    strong: an authenticated trusted reporter (with consistent evidence), independent authenticated reporters,
    our own monitoring, or ops. weak: only our own cross-check (the reported URL is on our network) — enough
    to warn, never enough to suspend. none: nothing vouches for it — human review.
    """

    STRONG = "strong"
    WEAK = "weak"
    NONE = "none"


@dataclass(frozen=True)
class EvidenceCheck:
    """One cross-check of the report against what we can see ourselves."""

    name: str
    passed: bool
    reason: str
    independent: bool = True  # our own observation (True) or a claim of the report checked for consistency


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired, by its stable kebab-case name, and why (the audit trail)."""

    name: str
    reason: str


@dataclass(frozen=True)
class CustomerFacts:
    """What the decision needs to know about the customer the indicators point to."""

    id: str
    created_at: datetime | None
    detail_problems: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Facts:
    """Everything the investigation found, at the time of the incident."""

    now: datetime
    matched_services: tuple[str, ...] = ()
    matched_indicators: tuple[str, ...] = ()
    customer: CustomerFacts | None = None
    account_services: tuple[str, ...] = ()
    open_case_id: str | None = None
    open_case_status: str | None = None
    confirmed_cases_in_window: int = 0
    feedback_loop_volume: int = 0  # feedback-loop reports for this customer in the window, this one included
    has_indicators: bool = True
    reporter_kind: str = "person"  # as accepted: a feedback loop that cannot prove it is "unknown"
    # Verification facts.
    reporter_trusted_as: str | None = None  # name of the trusted-reporter entry the sender matches
    reporter_authenticated: bool = False  # DKIM pass aligned with From (or trust without authentication)
    reporter_confirmed: int = 0  # earlier cases from this reporter that were confirmed
    reporter_rejected: int = 0  # ... and that were rejected
    evidence: tuple[EvidenceCheck, ...] = ()
    corroborating_reporters: int = 1  # independent authenticated reporters about this customer, this one included
    ops_confirmed: bool = False
    authority: str | None = None  # an authenticated order from this authority (Art. 9 DSA)
    authority_deadline_hours: float | None = None


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one report or one deadline."""

    outcome: Outcome
    rules: tuple[RuleHit, ...]
    deadline_at: datetime | None = None
    suspend_services: tuple[str, ...] = ()
    notify_customer: str | None = None  # template kind
    notify_complainant: str | None = None  # template kind
    confirmation: Confirmation = Confirmation.NONE
    severity: str | None = None
    flags: tuple[str, ...] = ()  # e.g. legal-escalation, preserve-evidence
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str | None:
        """The case status this decision leads to (None: unchanged)."""
        status = STATUS_FOR.get(self.outcome)
        return status.value if status else None

    @property
    def transition(self) -> str | None:
        """The name of the case transition this decision makes (None: the case's status stays)."""
        return TRANSITION_FOR.get(self.outcome)

    @property
    def rule_names(self) -> list[str]:
        """Names of the rules that fired, in order."""
        return [r.name for r in self.rules]
