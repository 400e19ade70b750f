"""Which side of a complaint an address in free text is on (FR, EN, DE, ES): the offender's or the victim's.

"Your server 203.0.113.10 is attacking us", "attaque depuis", "Angriff von", "desde" name the
offending side; "our server 198.51.100.7", "notre serveur", "unser Server", "nuestro servidor"
name the victim's. The label nearest before the address (within its clause, never reaching back
past the previous address) decides; failing that, the words right after it ("... is attacking",
"... wurde angegriffen"). An address listed right after another ("from A, B and C") shares its side.
"""

from __future__ import annotations

import re
from typing import Literal

from ingest import indicators

Side = Literal["source", "victim", "neutral"]

WINDOW = 60
_SOURCE_RE = re.compile(
    r"source|offend|attack|attaqu|\bfrom\b|depuis|provenant|provenance|origin|angreifer|angriff\w* von|von der|\bvon\b|"
    r"desde|atacante|procedente|infringer|abuser|spammer|\byour (?:server|servers|ip|ips|host|machine|network|"
    r"customer|client|site|website|system|vps|address)|\bvotre (?:serveur|client|machine|ip|adresse|site|réseau|vps|"
    r"hébergement)|\bvos (?:serveurs|clients|machines|adresses)|\bihre?[mn]? (?:server|kunde\w*|rechner|netz\w*|ip|"
    r"system\w*|vps)|\bsus? (?:servidor\w*|cliente\w*|red|ip|máquina\w*|vps)|\btu servidor|\boffender|\bcoupable",
    re.I,
)
# address nouns: a source label only when no victim word comes before them ("notre adresse IP" is the victim's)
_WEAK_SOURCE_RE = re.compile(r"ip address|adresse|ip-adresse|dirección ip|host\b|ip/cidr|\bip:|\bip :", re.I)
_VICTIM_RE = re.compile(
    r"\bvictim\w*|\btarget\w*|\bour (?:server|servers|network|ip|ips|block|site|website|host|hosts|machine|system|"
    r"systems|customer|infrastructure|honeypot|mail server|firewall|vps)\b|\bmy (?:server|site|ip|host|network|"
    r"website|machine)\b|\bnotre\b|\bnos\b|\bmon (?:serveur|site|réseau)|\bma machine|\bcible\w*|\bunser\w*|"
    r"\bmein\w* (?:server|rechner|seite|netz\w*)|\bnuestr[oa]s?\b|\bmi (?:servidor|red|sitio|web)|víctima|"
    r"\bhoneypot|\bdestination|\bdst\b|\bto our|for records|\bvers\b|\btowards\b|\bagainst\b|\bgegen\b|\bcontra\b|"
    r"\bauf (?:unser|unsere\w*)\b|\bsur (?:notre|nos)\b",
    re.I,
)
_AFTER_VICTIM_RE = re.compile(
    r"^\s*(?:\([^)\n]{0,60}\)\s*)?(?:(?:is|was|has been|have been|were|are|is being)\s+)?"
    r"(?:attacked|targeted|under attack|hit by|est attaqué|a été attaqué|sont attaqué|subit|wird angegriffen|"
    r"wurde angegriffen|wurden angegriffen|está siendo atacad|fue atacad|ha sido atacad|recibe)",
    re.I,
)
_AFTER_SOURCE_RE = re.compile(
    r"^\s*(?:\([^)\n]{0,60}\)\s*)?(?:(?:is|has been|was|keeps|are|were|is still)\s+)?"
    r"(?:attacking|scanning|sending|spamming|hosting|brute[- ]?forcing|probing|flooding|attaque|attaquent|scanne|"
    r"envoie|héberge|a attaqué|greift|scannt|sendet|hostet|ataca|está atacando|escanea|envía|aloja)",
    re.I,
)
_CLAUSE_END_RE = re.compile(r"[.!?;](?:\s|$)")
_LIST_GAP_RE = re.compile(r"^[\s,;/&]*(?:(?:and|et|und|y|or|ou|oder|o)\s*)?[\s,;/&]*$", re.I)


def classify(text: str) -> list[tuple[str, Side]]:
    """(canonical IP, side) for every non-loopback address of the text, in order of appearance."""
    out: list[tuple[str, Side]] = []
    prev_end = 0
    prev_side: Side = "neutral"
    for pos, ip in indicators.iter_ips(text):
        start = max(text.rfind("\n", 0, pos) + 1, pos - WINDOW, prev_end)
        gap = text[start:pos]
        end = _match_end(text, pos)
        if out and start == prev_end and _LIST_GAP_RE.match(gap):
            side = prev_side
        else:
            side = _side(_CLAUSE_END_RE.split(gap)[-1], text[end : end + WINDOW])
        prev_end, prev_side = end, side
        if not indicators.is_loopback(ip):
            out.append((ip, side))
    return out


def _side(before: str, after: str) -> Side:
    victim = _last_end(_VICTIM_RE, before)
    source = _last_end(_SOURCE_RE, before)
    if victim > source:
        return "victim"
    if source > victim:
        return "source"
    if _WEAK_SOURCE_RE.search(before):
        return "source"
    after = _CLAUSE_END_RE.split(after, maxsplit=1)[0]
    if _AFTER_VICTIM_RE.match(after):
        return "victim"
    if _AFTER_SOURCE_RE.match(after):
        return "source"
    return "neutral"


def _last_end(pattern: re.Pattern[str], text: str) -> int:
    end = -1
    for match in pattern.finditer(text):
        end = match.end()
    return end


def _match_end(text: str, pos: int) -> int:
    """End of the address written at ``pos`` (IPv4 or IPv6 characters)."""
    end = pos
    limit = min(len(text), pos + 45)
    while end < limit and (text[end].isalnum() or text[end] in ".:"):
        end += 1
    while end > pos and text[end - 1] in ".:":
        end -= 1
    return end


def victim_before(text: str, pos: int) -> bool:
    """The clause right before ``pos`` labels what follows as the victim's (``our domain x.example``)."""
    start = max(text.rfind("\n", 0, pos) + 1, pos - WINDOW)
    before = _CLAUSE_END_RE.split(text[start:pos])[-1]
    return _last_end(_VICTIM_RE, before) > _last_end(_SOURCE_RE, before)
