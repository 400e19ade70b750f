"""The words mails share, per language: category names, rule names (the facts), durations. Pure."""

from __future__ import annotations

import functools

from core.settings import DsaConfig

CATEGORIES = {
    "fr": {
        "phishing": "hameçonnage (phishing)",
        "malware": "logiciel malveillant",
        "spam": "envoi de spam",
        "fraud": "fraude",
        "intrusion": "tentatives d'intrusion",
        "illegal-content": "contenu illicite",
        "copyright": "atteinte au droit d'auteur",
        "vulnerability": "service vulnérable",
        "other": "autre abus",
    },
    "en": {
        "phishing": "phishing",
        "malware": "malware",
        "spam": "spam",
        "fraud": "fraud",
        "intrusion": "intrusion attempts",
        "illegal-content": "illegal content",
        "copyright": "copyright infringement",
        "vulnerability": "vulnerable service",
        "other": "other abuse",
    },
}

STATUSES = {
    "fr": {
        "received": "reçu",
        "monitoring": "en observation",
        "needs-review": "à examiner",
        "rejected": "rejeté",
        "warned": "averti",
        "resolved": "résolu",
        "suspended": "suspendu",
        "lifted": "suspension levée",
        "suspending": "suspension en cours",
    },
}

# What a fired rule means for the customer, in their language (the statement of reasons lists the facts).
RULES = {
    "fr": {
        "not-our-resource": "les ressources signalées ne sont pas hébergées chez nous",
        "authority-order": "une injonction d'une autorité publique vise ce contenu",
        "critical-severity": "les faits signalés sont d'une gravité qui impose une suspension immédiate",
        "customer-details-invalid": "les coordonnées du compte ne sont pas valides",
        "new-account-fraud": "le compte, récent, a servi à une fraude",
        "second-complaint": "une nouvelle plainte confirmée après un premier avertissement",
        "first-complaint-warning": "une première plainte confirmée",
        "warning-expired": "le problème était toujours présent à l'échéance de l'avertissement",
        "reporter-authenticated": "le signalement provient d'un émetteur authentifié et reconnu",
        "authority-authenticated": "le signalement provient d'une autorité authentifiée",
        "internal-report": "nos propres contrôles ont constaté les faits",
        "ops-confirmed": "une personne de notre service abus a confirmé les faits",
        "confirmation-not-required": "les faits ne demandaient pas de confirmation supplémentaire",
        "deadline-still-present": "nous avons vérifié à l'échéance : le problème est toujours présent",
    },
    "en": {
        "not-our-resource": "the resources reported are not hosted by us",
        "authority-order": "an order from a public authority concerns this content",
        "critical-severity": "the facts reported are serious enough to require an immediate suspension",
        "customer-details-invalid": "the details of the account are not valid",
        "new-account-fraud": "the account, a recent one, was used for fraud",
        "second-complaint": "a new confirmed complaint after a first warning",
        "first-complaint-warning": "a first confirmed complaint",
        "warning-expired": "the problem was still present when the warning expired",
        "reporter-authenticated": "the report comes from an authenticated, known reporter",
        "authority-authenticated": "the report comes from an authenticated authority",
        "internal-report": "our own checks found the facts",
        "ops-confirmed": "a person on our abuse desk confirmed the facts",
        "confirmation-not-required": "the facts needed no further confirmation",
        "deadline-still-present": "we checked at the deadline: the problem is still there",
    },
}


def category_name(category: str, language: str) -> str:
    """A category in words ('phishing' → 'hameçonnage (phishing)' in French); unknown ones as they are."""
    return CATEGORIES.get(language, CATEGORIES["en"]).get(category, category)


def status_name(status: str, language: str) -> str:
    """A case status in words of the language (the status code itself in English)."""
    return STATUSES.get(language, {}).get(status, status)


def rule_facts(names: list[str], language: str) -> list[str]:
    """The facts behind the fired rules, in the language; rules with nothing to tell the customer are left out."""
    table = RULES.get(language, RULES["en"])
    return [table[name] for name in names if name in table]


def duration(hours: float | int | None, language: str) -> str:
    """'48 hours' / '7 days (168 hours)', in the language: the real length of a deadline, never a fixed one."""
    if hours is None:
        return ""
    whole = int(hours)
    unit_h = "heures" if language == "fr" else "hours"
    if whole >= 72 and whole % 24 == 0:
        days = whole // 24
        unit_d = "jours" if language == "fr" else "days"
        return f"{days} {unit_d} ({whole} {unit_h})"
    if whole == 1:
        return "1 heure" if language == "fr" else "1 hour"
    return f"{whole} {unit_h}"


# The grounds shipped as defaults (core.settings), in French: a provider's own wording is shown as configured.
CLAUSES_FR = {
    "spam": "Conditions d'utilisation acceptable, §3 (envoi massif non sollicité)",
    "phishing": "Conditions d'utilisation acceptable, §4 (fraude et hameçonnage)",
    "fraud": "Conditions d'utilisation acceptable, §4 (fraude et hameçonnage)",
    "malware": "Conditions d'utilisation acceptable, §5 (logiciels malveillants)",
    "intrusion": "Conditions d'utilisation acceptable, §6 (attaques contre d'autres systèmes)",
    "vulnerability": "Conditions d'utilisation acceptable, §7 (sécurité des services hébergés)",
    "copyright": "Conditions d'utilisation acceptable, §8 (droits des tiers)",
    "illegal-content": "Conditions d'utilisation acceptable, §2 (contenus illicites)",
    "other": "Conditions d'utilisation acceptable, §1 (obligations générales)",
}
LEGAL_FR = {
    "illegal-content": "Contenu manifestement illicite en droit français, notifié au titre de l'article 16 du DSA"
    " (règlement (UE) 2022/2065) et de l'article 6 de la LCEN",
    "copyright": "Atteinte aux droits de propriété intellectuelle (Code de la propriété intellectuelle)",
    "phishing": "Escroquerie (Code pénal, art. 313-1) et collecte illicite de données personnelles",
    "malware": "Atteintes aux systèmes de traitement automatisé de données (Code pénal, art. 323-1 et suivants)",
    "intrusion": "Atteintes aux systèmes de traitement automatisé de données (Code pénal, art. 323-1 et suivants)",
}


@functools.cache
def _shipped() -> DsaConfig:
    return DsaConfig()  # the shipped defaults, to recognise them


def ground(text: str | None, category: str, kind: str, language: str) -> str:
    """A legal or contractual ground in the reader's language when it is the shipped default, else as configured."""
    if not text or language != "fr":
        return text or ""
    defaults = _shipped()
    if kind == "legal":
        return LEGAL_FR.get(category, text) if text == defaults.legal_grounds.get(category) else text
    clause, sep, rest = text.partition(" — ")
    if clause in defaults.clauses.values():
        english = {v: k for k, v in defaults.clauses.items()}
        return f"{CLAUSES_FR.get(english[clause], clause)}{sep}{rest}"
    return text
