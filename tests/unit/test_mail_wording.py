"""Every template in French and English, in every variant, says only what the facts support, in one language."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest

from actions.render import LANGUAGES, TEMPLATES, render, wire_bytes
from actions.wording import duration
from core.messages import SendNotification
from core.settings import Settings
from policy import statements

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
KINDS = sorted(p.name.removesuffix(".txt.j2") for p in (TEMPLATES / "en").glob("*.txt.j2"))
# Words of one language that never belong in a mail of the other (context values below are neutral on purpose).
ENGLISH = [" the ", " your ", " you ", " and ", " has been ", " have ", " with ", " of ", " is ", " are ", "hello",
           " please ", " will ", " our ", "suspended", " reason", " case ", " report", " hours", " days", "deadline",
           " services suspended", "abuse desk", " to ", " by "]  # fmt: skip
FRENCH = [" le ", " les ", " votre ", " vous ", " des ", " est ", " et ", "bonjour", "dossier", "signalement",
          " nous ", " pour ", " au ", " une ", " sont ", "heures", "jours", "suspendu"]  # fmt: skip
# Proper names quoted in both languages (French law, French bodies), and commands: not prose.
NAMES = re.compile(
    r"`[^`]*`|https?://\S+|www\.\S+|Code de la propriété intellectuelle|Code pénal|tribunal judiciaire|PHAROS"
    r"|internet-signalement\.gouv\.fr|Arcom"
)


def statement(scope: str = "account", origin: str = "notice", automation: str = "fully") -> dict[str, Any]:
    case = {"id": "K1", "category": "phishing", "origin": origin}
    return statements.build(
        case=case,
        services=["S1", "S2"],
        scope=scope,
        facts=["english rule reason that must not reach a French mail"],
        evidence="GET /login.php 200",
        automation=automation,
        statement_url="https://desk.example/s/tok",
        config=Settings().dsa,
        now=NOW,
    )


BASE: dict[str, Any] = {
    "case_id": "K1",
    "organisation": "Acme",
    "support_url": "https://support.example/",
    "customer_name": "Alice",
    "customer_id": "C1",
    "category": "phishing",
    "service_ids": ["S1", "S2"],
    "indicators": ["203.0.113.10"],
    "deadline_at": (NOW + timedelta(hours=48)).isoformat(),
    "sla_due_at": (NOW + timedelta(hours=20)).isoformat(),
    "statement_url": "https://desk.example/s/tok",
    "evidence": "GET /login.php 200",
    "subject": "203.0.113.10",
    "reasons": ["T-4711"],
    "rule_names": ["reporter-authenticated", "first-complaint-warning", "an-unknown-rule"],
    "status": "warned",
    "action": "service.suspend.v1",
    "command_id": "c-1",
    "answer_text": "T-4711",
    "passes": ["https://alice.example/login: 404"],
    "failures": ["https://alice.example/login: 200"],
    "held_at": NOW.isoformat(),
    "review_due_at": NOW.isoformat(),
    "contested_at": NOW.isoformat(),
    "flags": ["art18-suspicion"],
}
VARIANTS: list[dict[str, Any]] = [
    {},
    {"confirmation": "strong", "deadline_hours": 48},
    {"confirmation": "weak", "deadline_hours": 168, "severity": "low"},
    {"confirmation": "none", "urgent": True, "statement_url": None},
    *({"outcome": o, "confirmation": c} for o in ("warn", "suspend", "resolved", "review") for c in ("strong", "weak")),
    *({"outcome": "reject", "rejection_reason": r} for r in ("not-ours", "not-enough-facts", "decided-by-person", "")),
    {"outcome": "resolved", "automation": "partially"},
    {"statement": statement()},
    {"statement": statement("mailbox", "automated-notice", "partially"), "rule_names": []},
    {"statement": statement("domain", "own-initiative"), "rule_names": ["second-complaint"]},
    {"statement": statement("service", "authority-order")},
    {"suspended_services": ["S1", "S2"], "still_suspended": ["S2"], "still_suspended_cases": ["K9"]},
    {"suspended_services": ["S1", "S2", "S3"], "still_suspended": ["S2", "S3"], "still_suspended_cases": ["K9", "K8"]},
    {"contest_outcome": "upheld", "status": "suspended"},
    {"contest_outcome": "upheld", "status": "warned"},
    {"contest_outcome": "reversed", "status": "lifted", "suspended_services": ["S1"], "still_suspended": ["S2"]},
    {"contest_outcome": "reversed", "status": "resolved"},
    {"outcome": "still-failing"},
    {"answer": "contest"},
    {"answer": "fixed"},
    {"answer": "help"},
    {"sla_state": "past"},
    {"missing_elements": ["explanation", "location", "identity", "good_faith"]},
]


def rendered(kind: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    command = SendNotification(case_id="K1", kind=kind, to="someone@example.org", language=language, context=context)
    raw = wire_bytes(render(command, sender="abuse@hosting.example", default_language="fr", now=NOW))
    msg = message_from_bytes(raw, policy=policy.default)
    return str(msg["Subject"]), str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def prose(text: str) -> str:
    return " " + " ".join(NAMES.sub(" ", text).lower().split()) + " "


def test_the_new_kinds_exist() -> None:
    assert {"customer-contest-result", "ops-deadline-held", "ops-contest-overdue", "ops-sla-due"} <= set(KINDS)
    for language in LANGUAGES:
        assert KINDS == sorted(p.name.removesuffix(".txt.j2") for p in (TEMPLATES / language).glob("*.txt.j2"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_template_speaks_one_language(kind: str) -> None:
    for variant in VARIANTS:
        context = BASE | variant
        for language, foreign in (("fr", ENGLISH), ("en", FRENCH)):
            subject, body = rendered(kind, language, context)
            text = prose(subject + "\n" + body)
            found = [w for w in foreign if w in text]
            assert not found, (kind, language, variant, found, text)


def text_of(kind: str, language: str = "en", **context: Any) -> str:
    subject, body = rendered(kind, language, BASE | context)
    return " ".join((subject + "\n" + body).split())


@pytest.mark.parametrize("language", LANGUAGES)
def test_confirmed_is_said_only_when_strong(language: str) -> None:
    word = "confirm" if language == "en" else "confirmé"
    for kind, outcome in (("complainant-result", "warn"), ("complainant-result", "suspend"), ("customer-warning", "")):
        assert word in text_of(kind, language, outcome=outcome, confirmation="strong").lower()
        for level in ("weak", "none"):
            said = text_of(kind, language, outcome=outcome, confirmation=level).lower()
            assert "facts were confirmed" not in said and "faits ont été confirmés" not in said, (kind, level)
            assert "facts are confirmed" not in said and "faits sont confirmés" not in said, (kind, level)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_deadline_is_the_real_one(language: str) -> None:
    week = {"deadline_hours": 168, "deadline_at": (NOW + timedelta(days=7)).isoformat(), "confirmation": "strong"}
    for kind in ("customer-warning", "complainant-result"):
        said = text_of(kind, language, outcome="warn", **week)
        assert duration(168, language) in said and "48" not in said.replace("203.0.113.10", ""), (kind, said)
    assert "48 " in text_of("customer-warning", language, deadline_hours=48)
    assert duration(168, "en") == "7 days (168 hours)" and duration(168, "fr") == "7 jours (168 heures)"


def test_a_rejection_says_why() -> None:
    said = {r: text_of("complainant-result", outcome="reject", rejection_reason=r) for r in ("not-ours",
            "not-enough-facts", "decided-by-person")}  # fmt: skip
    assert "not hosted by us" in said["not-ours"]
    assert "could not establish the facts" in said["not-enough-facts"] and "not hosted" not in said["not-enough-facts"]
    person = said["decided-by-person"]
    assert "A person on our abuse desk examined your report" in person and "not hosted" not in person
    assert "taken by automated means" not in person  # a person decided: never "automated means" alone


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_lift_says_what_stays_suspended_and_why(language: str) -> None:
    partial = text_of(
        "customer-lift", language, suspended_services=["S1", "S2"], still_suspended=["S2"], still_suspended_cases=["K9"]
    )
    assert "S2" in partial and "K9" in partial
    restored = "Being restored now: S1." if language == "en" else "En cours de rétablissement : S1."
    assert restored in partial
    assert ("Your services are being restored" if language == "en" else "Vos services sont") not in partial
    whole = text_of("customer-lift", language)
    assert ("Your services are being restored" if language == "en" else "Vos services sont en cours") in whole


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_customer_is_told_the_contest_outcome(language: str) -> None:
    upheld = text_of("customer-contest-result", language, contest_outcome="upheld", status="suspended")
    reversed_ = text_of("customer-contest-result", language, contest_outcome="reversed", status="resolved")
    assert ("decision upheld" if language == "en" else "décision maintenue") in upheld
    assert ("decision reversed" if language == "en" else "décision annulée") in reversed_


def test_the_french_statement_of_reasons_tells_the_facts_in_french() -> None:
    said = text_of("customer-suspension", "fr", statement=statement(), rule_names=["second-complaint"])
    assert "une nouvelle plainte confirmée après un premier avertissement" in said
    assert "english rule reason" not in said
    assert "Escroquerie (Code pénal, art. 313-1)" in said and "Conditions d'utilisation acceptable, §4" in said
