"""Verification: how well a report's facts are established (strong, weak, none) — a chain of named checks. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.model import Confirmation, EvidenceCheck, Facts, RuleHit


@dataclass(frozen=True)
class Seen:
    """What the chain has seen so far: the report, the facts, the configuration and the hits recorded."""

    report: AbuseReport
    facts: Facts
    config: PolicyConfig
    hits: tuple[RuleHit, ...] = ()

    @property
    def passed(self) -> list[EvidenceCheck]:
        return [c for c in self.facts.evidence if c.passed]

    @property
    def failed(self) -> list[EvidenceCheck]:
        return [c for c in self.facts.evidence if not c.passed]


# A check returns (level, hits): a level decides and ends the chain; None adds its hits and goes on.
Verdict = tuple[Confirmation | None, tuple[RuleHit, ...]]
Step = Callable[[Seen], Verdict]
GO_ON: Verdict = (None, ())


def distrusted(facts: Facts, config: PolicyConfig) -> bool:
    """A reporter whose reports were mostly rejected in the past."""
    return facts.reporter_rejected >= config.distrust_after_rejections and facts.reporter_rejected > (
        facts.reporter_confirmed
    )


def _ops(s: Seen) -> Verdict:
    if not s.facts.ops_confirmed:
        return GO_ON
    return Confirmation.STRONG, (RuleHit("ops-confirmed", "facts confirmed by a person on the abuse desk"),)


def _authority(s: Seen) -> Verdict:
    if not s.facts.authority:
        return GO_ON
    return Confirmation.STRONG, (RuleHit("authority-authenticated", f"authenticated order from {s.facts.authority}"),)


def _internal(s: Seen) -> Verdict:
    if s.report.reporter_kind != "internal":
        return GO_ON
    return Confirmation.STRONG, (RuleHit("internal-report", "raised by our own monitoring"),)


def _not_required(s: Seen) -> Verdict:
    if s.config.require_confirmation:
        return GO_ON
    return Confirmation.STRONG, (RuleHit("confirmation-not-required", "policy.require_confirmation is off"),)


def _distrusted(s: Seen) -> Verdict:
    if not distrusted(s.facts, s.config):
        return GO_ON
    reason = (
        f"{s.facts.reporter_rejected} earlier report(s) from this reporter were rejected,"
        f" {s.facts.reporter_confirmed} confirmed"
    )
    return None, (RuleHit("reporter-distrusted", reason),)


def _trusted(s: Seen) -> Verdict:
    facts = s.facts
    if distrusted(facts, s.config) or not (facts.reporter_trusted_as and facts.reporter_authenticated):
        return GO_ON
    if s.failed:
        hits = [RuleHit(f"evidence-{c.name}-failed", c.reason) for c in s.failed]
        hits.append(RuleHit("evidence-inconsistent", "a trusted reporter's evidence does not match our records"))
        return Confirmation.NONE, tuple(hits)
    hits = [RuleHit("reporter-authenticated", f"authenticated report from {facts.reporter_trusted_as}")]
    return Confirmation.STRONG, tuple(hits + [RuleHit(f"evidence-{c.name}", c.reason) for c in s.passed])


def _corroborated(s: Seen) -> Verdict:
    if s.facts.corroborating_reporters < s.config.corroboration_reporters:
        return GO_ON
    reason = (
        f"{s.facts.corroborating_reporters} independent authenticated reporters within"
        f" {s.config.corroboration_window_hours:g} h"
    )
    return Confirmation.STRONG, (RuleHit("corroborated", reason),)


def _fbl_unauthenticated(s: Seen) -> Verdict:
    if s.report.reporter_kind != "feedback-loop" or s.facts.reporter_kind == "feedback-loop":
        return GO_ON
    return None, (
        RuleHit("feedback-loop-unauthenticated", "claims to be a feedback loop but is not an authenticated one"),
    )


def _own_evidence(s: Seen) -> Verdict:
    independent = [c for c in s.passed if c.independent]  # what a forged report cannot fake
    if not independent or distrusted(s.facts, s.config):
        return GO_ON
    return Confirmation.WEAK, tuple(RuleHit(f"evidence-{c.name}", c.reason) for c in independent)


def _unverified(s: Seen) -> Verdict:
    hits = [RuleHit(f"evidence-{c.name}-failed", c.reason) for c in s.failed]
    facts = s.facts
    if facts.reporter_trusted_as and not facts.reporter_authenticated:
        reason = f"claims to be {facts.reporter_trusted_as} but carries no valid aligned DKIM signature"
    else:
        reason = "the reporter is not an authenticated trusted reporter and no evidence could be checked"
    return Confirmation.NONE, (*hits, RuleHit("reporter-unverified", reason))


# The chain, in order: the first check that gives a level decides (the last always does).
CHAIN: tuple[tuple[str, Step], ...] = (
    ("ops-confirmed", _ops),
    ("authority-authenticated", _authority),
    ("internal-report", _internal),
    ("confirmation-not-required", _not_required),
    ("reporter-distrusted", _distrusted),
    ("reporter-authenticated", _trusted),
    ("corroborated", _corroborated),
    ("feedback-loop-unauthenticated", _fbl_unauthenticated),
    ("evidence-own-check", _own_evidence),
    ("reporter-unverified", _unverified),
)


def verify(report: AbuseReport, facts: Facts, config: PolicyConfig) -> tuple[Confirmation, tuple[RuleHit, ...]]:
    """The confirmation level of a report about one of our resources, and the rules that say why."""
    seen = Seen(report, facts, config)
    for _name, step in CHAIN:
        level, hits = step(seen)
        seen = Seen(report, facts, config, (*seen.hits, *hits))
        if level is not None:
            return level, seen.hits
    raise AssertionError("the last check always decides")  # pragma: no cover
