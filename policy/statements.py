"""Statements of reasons (Art. 17 DSA): every element, built from the case and its decision. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.settings import DsaConfig

ORIGIN_TEXT = {
    "notice": "a notice sent to our abuse desk by a third party",
    "automated-notice": "an automated report from a third party (feedback loop, blocklist, CERT)",
    "own-initiative": "our own monitoring",
    "authority-order": "an order from a public authority",
}
MEASURES = {
    "account": "suspension of the services of the account",
    "service": "suspension of a service",
    "mailbox": "block of outgoing mail for one mailbox",
    "domain": "block of outgoing mail for one domain",
}


def ground_for(category: str, config: DsaConfig) -> tuple[str, str | None, str]:
    """(ground type, legal ground, contractual ground) for a category of abuse."""
    legal = config.legal_grounds.get(category)
    clause = config.clauses.get(category) or config.clauses.get("other", "Acceptable use policy")
    return ("both" if legal else "contractual"), legal, f"{clause} — {config.terms_url}"


def build(
    *,
    case: dict[str, Any],
    services: list[str],
    scope: str,
    facts: list[str],
    evidence: str,
    automation: str,
    statement_url: str | None,
    config: DsaConfig,
    now: datetime,
) -> dict[str, Any]:
    """The machine-readable statement of reasons; the mail renders every key of it."""
    ground, legal, contractual = ground_for(str(case["category"]), config)
    origin = str(case.get("origin") or "notice")
    return {
        "case_id": case["id"],
        "issued_at": now.isoformat(),
        "restriction": {
            "measure": MEASURES.get(scope, MEASURES["account"]),
            "scope": scope,
            "services": services,
            "territorial_scope": "worldwide (the services are hosted in our network)",
            "duration": "until the cause is removed and the suspension is lifted",
            "effective_at": now.isoformat(),
        },
        "facts": {
            "category": case["category"],
            "circumstances": facts,
            "evidence": evidence,
            "triggered_by": origin,
            "triggered_by_text": ORIGIN_TEXT.get(origin, origin),
            "notifier_identity": "withheld (not necessary to establish the facts)",
        },
        "automation": {
            "detection": "automated" if origin in ("automated-notice", "own-initiative") else "notice from a person",
            "decision": automation,
            "text": (
                "The decision was taken by automated means applying our published policy."
                if automation == "fully"
                else "The decision was confirmed by a person on our abuse desk."
            ),
        },
        "grounds": {"type": ground, "legal": legal, "contractual": contractual},
        "redress": {
            "contest": statement_url or "reply to this message, keeping the case reference",
            "internal_review": "a person on our abuse desk reviews every contest",
            "courts": "the competent court (tribunal judiciaire)",
            "regulator": "a complaint to Arcom, the Digital Services Coordinator for France (Art. 53 DSA)",
        },
        "lifting": {
            "how": "remove the cause, then answer through the link (or contact support) with what you did",
            "link": statement_url,
            "repeat_rule": "a further confirmed complaint leads to suspension without warning",
        },
        "data_access": "your data is kept during the suspension; contact support to download it",
    }
