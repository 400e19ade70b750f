"""Which Art. 16(2) DSA notice elements a report carries, and Art. 18 warning signs. Pure; text bounded to 64 KB."""

from __future__ import annotations

import re

from core.report import AbuseReport, NoticeElements

MAX_TEXT = 64 * 1024
MIN_EXPLANATION_WORDS = 12
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_GOOD_FAITH = re.compile(
    r"good[ -]faith|bonne foi|buena fe|guten glaubens?|nach bestem wissen|accurate and complete"
    r"|exactes? et compl[eè]tes?|sinc[eè]res? et v[ée]ritables?|sur l'honneur",
    re.IGNORECASE,
)
_THREAT = re.compile(
    r"threat(?:en(?:s|ed|ing)?)? to (?:kill|(?:\w+ )?life)|death threats?|life is in danger"
    r"|kill (?:you|him|her|them|myself)"
    r"|suicid|bomb threat|terror(?:ist)? attack|menaces? de mort|menace de tuer|vie est en danger|va (?:se )?tuer"
    r"|attentat|amenazas? de muerte|morddrohung|lebensgefahr",
    re.IGNORECASE,
)


def elements(report: AbuseReport, text: str) -> NoticeElements:
    """The notice elements found in the report's fields and in the notifier's own text."""
    text = text[:MAX_TEXT]
    return NoticeElements(
        explanation=len(_WORD.findall(text)) >= MIN_EXPLANATION_WORDS,
        location=bool(report.urls or report.source_ips or report.domains or report.emails),
        identity=bool(report.reporter and report.reporter_name),
        good_faith=bool(_GOOD_FAITH.search(text)),
        threat_to_life=bool(_THREAT.search(text)),
    )
