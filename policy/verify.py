"""Verification: how well a report's facts are established (strong, weak, none), as named rule hits. Pure."""

from __future__ import annotations

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy.model import Confirmation, Facts, RuleHit


def distrusted(facts: Facts, config: PolicyConfig) -> bool:
    """A reporter whose reports were mostly rejected in the past."""
    return facts.reporter_rejected >= config.distrust_after_rejections and facts.reporter_rejected > (
        facts.reporter_confirmed
    )


def verify(report: AbuseReport, facts: Facts, config: PolicyConfig) -> tuple[Confirmation, tuple[RuleHit, ...]]:
    """The confirmation level of a report about one of our resources, and the rules that say why."""
    if facts.ops_confirmed:
        return Confirmation.STRONG, (RuleHit("ops-confirmed", "facts confirmed by a person on the abuse desk"),)
    if facts.authority:
        return Confirmation.STRONG, (RuleHit("authority-authenticated", f"authenticated order from {facts.authority}"),)
    if report.reporter_kind == "internal":
        return Confirmation.STRONG, (RuleHit("internal-report", "raised by our own monitoring"),)
    if not config.require_confirmation:
        return Confirmation.STRONG, (RuleHit("confirmation-not-required", "policy.require_confirmation is off"),)
    hits: list[RuleHit] = []
    failed = [c for c in facts.evidence if not c.passed]
    passed = [c for c in facts.evidence if c.passed]
    independent = [c for c in passed if c.independent]  # what a forged report cannot fake
    if distrusted(facts, config):
        hits.append(
            RuleHit(
                "reporter-distrusted",
                f"{facts.reporter_rejected} earlier report(s) from this reporter were rejected,"
                f" {facts.reporter_confirmed} confirmed",
            )
        )
    elif facts.reporter_trusted_as and facts.reporter_authenticated:
        if failed:
            hits += [RuleHit(f"evidence-{c.name}-failed", c.reason) for c in failed]
            hits.append(RuleHit("evidence-inconsistent", "a trusted reporter's evidence does not match our records"))
            return Confirmation.NONE, tuple(hits)
        hits.append(RuleHit("reporter-authenticated", f"authenticated report from {facts.reporter_trusted_as}"))
        return Confirmation.STRONG, tuple(hits + [RuleHit(f"evidence-{c.name}", c.reason) for c in passed])
    if facts.corroborating_reporters >= config.corroboration_reporters:
        hits.append(
            RuleHit(
                "corroborated",
                f"{facts.corroborating_reporters} independent authenticated reporters within"
                f" {config.corroboration_window_hours:g} h",
            )
        )
        return Confirmation.STRONG, tuple(hits)
    if report.reporter_kind == "feedback-loop" and facts.reporter_kind != "feedback-loop":
        hits.append(
            RuleHit("feedback-loop-unauthenticated", "claims to be a feedback loop but is not an authenticated one")
        )
    if independent and not distrusted(facts, config):
        hits += [RuleHit(f"evidence-{c.name}", c.reason) for c in independent]
        return Confirmation.WEAK, tuple(hits)
    hits += [RuleHit(f"evidence-{c.name}-failed", c.reason) for c in failed]
    hits.append(RuleHit("reporter-unverified", _unverified_reason(facts)))
    return Confirmation.NONE, tuple(hits)


def _unverified_reason(facts: Facts) -> str:
    if facts.reporter_trusted_as and not facts.reporter_authenticated:
        return f"claims to be {facts.reporter_trusted_as} but carries no valid aligned DKIM signature"
    return "the reporter is not an authenticated trusted reporter and no evidence could be checked"
