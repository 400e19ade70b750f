"""Which Art. 16(2) DSA notice elements a report carries, and urgent signs. Pure; text bounded to 64 KB.

Urgent signs (FR, EN, DE, ES), read in the notifier's own words: a threat to someone's life or
safety (Art. 18), child sexual abuse material, an order from an authority (court, prosecutor,
police: Art. 9 orders, réquisitions, Anordnungen, órdenes judiciales). Each test is a cheap
substring pre-filter over the lower-cased text, then bounded regexes only when a trigger is there.
"""

from __future__ import annotations

import re
from itertools import islice

from core.report import AbuseReport, NoticeElements

MAX_TEXT = 64 * 1024
MIN_EXPLANATION_WORDS = 12
_WORD = re.compile(r"[^\W\d_]{2,}")
_GOOD_FAITH = (
    "good faith",
    "good-faith",
    "bonne foi",
    "buena fe",
    "guten glauben",
    "nach bestem wissen",
    "accurate and complete",
    "exacte et complète",
    "exactes et complètes",
    "exacts et complets",
    "sincère et véritable",
    "sincères et véritables",
    "sur l'honneur",
    "de buena fe",
    "wahrheitsgemäß",
)
_SEPARATORS = str.maketrans(dict.fromkeys("!\"#$%()*+,./:;<=>?@[\\]^`{|}~'-_=\n\r\t«»“”¿¡", " "))
WINDOW = 120

# Threat to life: an anchor word, then the confirming pattern in a window around it.
_THREAT_ANCHORS = frozenset(
    "kill killing murder death threat threats threaten threatens threatened life lives suicide suicidal harm hurt "
    "bomb shoot shooting stab terror terrorist "
    "tuer tuerai mort menace menaces vie attentat assassiner fusillade danger bombe jours "
    "töten umbringen um morddrohung todesdrohung lebensgefahr selbstmord suizid amoklauf anschlag bombendrohung "
    "erschießen "
    "matar matarte matarlo matarla matarlos matarlas matarme matarnos muerte amenaza amenazas vida peligro "
    "atentado tiroteo bomba".split()
)
_THREAT = re.compile(
    r"threat(?:en(?:s|ed|ing)?)? to (?:kill|harm|hurt|shoot|(?:\w+ )?life)|death threats?|threats? of death"
    r"|(?:life|lives) (?:is |are )?(?:in danger|at risk|threatened)|danger to (?:his|her|their|my|your)? ?life"
    r"|(?:going|gonna|want|wants|will|plan(?:s|ning)? to|threaten(?:s|ed)? to) (?:to )?(?:kill|murder|shoot|stab)"
    r"|kill (?:you|him|her|them|myself|me|us|people|everyone|himself|herself)|murder (?:you|him|her|them)"
    r"|suicid|self[- ]harm|bomb threat|plant(?:ed|ing)? a bomb|shoot(?:ing)? up|school shooting|mass shooting"
    r"|terror(?:ist)? attack"
    r"|menaces? de mort|menace(?:s|r)? de (?:le |la |les |me |te |vous |nous )?tuer|vie est en danger"
    r"|danger de mort|va (?:se |te |le |la |les |vous |nous )?tuer|vais (?:te |le |la |les |vous )tuer"
    r"|veut (?:se |le |la |les |vous |nous |te )?tuer|tuerai|attentat|alerte à la bombe|poser une bombe|fusillade"
    r"|assassiner|mettre fin à (?:ses|mes|tes) jours"
    r"|morddrohung|todesdrohung|lebensgefahr|(?:dich|sie|ihn|euch|mich|uns) (?:zu )?(?:töten|umbringen)"
    r"|bringe? (?:dich|sie|ihn|euch) um|selbstmord|suizid|bombendrohung|anschlag|amoklauf|erschießen"
    r"|amenazas? de muerte|amenaza(?:s|do|n)? con matar|(?:te|lo|la|los|las|os|nos|me) (?:voy a |vamos a |va a )?matar"
    r"|matar(?:te|lo|la|los|las|me|nos)|voy a matar|vamos a matar|su vida (?:corre|está en) peligro"
    r"|peligro de muerte|amenaza de bomba|atentado|tiroteo|quitarse la vida"
)
# CSAM: named outright (words and stems), or a child word with a sexual word around it.
_CSAM_WORDS = frozenset(
    "csam csem cse pedophile pedophiles pedophilia paedophile paedophiles paedophilia pédophile pédophiles "
    "pédophilie pedofilia pedófilo pedófilos pederasta pédopornographie pedopornographie pédopornographique "
    "pédopornographiques pedopornografía pedopornografia kinderpornografie kinderpornographie kinderpornos "
    "kinderporno kinderpornografisch kinderpornografische kinderpornografischen kindesmissbrauch "
    "kindesmissbrauchs missbrauchsdarstellung missbrauchsdarstellungen jugendpornografie".split()
)
_CSAM_STEMS = ("pedoporn", "pédoporn", "kinderporn", "pedophil", "pédophil", "paedophil", "missbrauchsdarstell")
_CHILD_WORDS = frozenset(
    "child children childs kid kids minors underage infant infants toddler toddlers preteen preteens "
    "enfant enfants mineur mineurs mineure mineures fillette fillettes infantile infantiles "
    "kinder kindern kindes minderjährig minderjährige minderjährigen "
    "niño niños niña niñas menores infantil infantiles".split()
)
_SEXUAL_WORDS = frozenset(
    "sexual sexually sex porn porno pornographic pornography nude nudes naked molest molested molestation "
    "sexuel sexuelle sexuels sexuelles pornographique pornographie nus nue nues "
    "sexuell sexuelle sexuellen sexueller nackt nacktbilder pornografisch pornografie pornographie "
    "sexuales desnudo desnudos desnuda desnudas pornográfico pornográfica pornografía".split()
)
_CHILD_ABUSE = re.compile(
    r"child(?:ren)?(?:'s)? (?:sexual )?abuse|abus sexuels? (?:sur|de|d') ?(?:des )?(?:mineur|enfant)"
    r"|abuso sexual (?:infantil|de (?:menores|niñ))|sexuelle[rn]? missbrauch (?:von )?(?:kindern|minderjährigen)"
)
# Authority orders: words that are an order by themselves, or an anchor confirmed by the pattern.
_ORDER_WORDS = frozenset(
    "subpoena subpoenas réquisition réquisitions requisition injonction gerichtsbeschluss durchsuchungsbeschluss "
    "beschlagnahmebeschluss mandamiento".split()
)
_ORDER_ANCHORS = frozenset(
    "order orders warrant injunction court ordonnance décision tribunal parquet procureur rogatoire opj police "
    "anordnung beschluss verfügung staatsanwaltschaft auskunftsersuchen "
    "orden requerimiento auto resolución providencia juzgado fiscalía judicial judiciaire".split()
)
_ORDER = re.compile(
    r"court order|order of the court|judicial order|(?:search|arrest) warrant|warrant (?:issued|no)|injunction"
    r"|law enforcement request|legal order|removal order|production order|preservation order|order to act"
    r"|order issued by|ordonnance (?:du|de|d'un|judiciaire|n°)|par ordonnance|décision (?:de justice|judiciaire)"
    r"|commission rogatoire|officier de police judiciaire|instruction du parquet|procureur de la république"
    r"|ordre de retrait|gerichtliche anordnung|behördliche anordnung|richterliche anordnung"
    r"|anordnung (?:der|des|gemäß|nach)"
    r"|beschluss des (?:amts|land|ober)?gerichts|einstweilige verfügung|auskunftsersuchen|orden judicial"
    r"|requerimiento (?:judicial|de la fiscalía)|auto judicial|resolución judicial|orden del juzgado|orden de retirada"
    r"|providencia judicial"
)

def elements(report: AbuseReport, text: str, own: str | None = None) -> NoticeElements:
    """The notice elements found in the report's fields and in the notifier's text.

    ``own``: the notifier's own words (quoted or forwarded material left out), read for the urgent
    signs so that a forwarded spam or a quoted reply cannot raise them; defaults to ``text``.
    """
    text = text[:MAX_TEXT]
    lower = text.lower()
    own_lower = lower if own is None else own[:MAX_TEXT].lower()
    words = _words(own_lower)
    return NoticeElements(
        explanation=sum(1 for _ in islice(_WORD.finditer(text), MIN_EXPLANATION_WORDS)) >= MIN_EXPLANATION_WORDS,
        location=bool(report.urls or report.source_ips or report.domains or report.emails),
        identity=bool(report.reporter and report.reporter_name),
        good_faith=any(phrase in lower for phrase in _GOOD_FAITH),
        threat_to_life=threat_to_life(own_lower, words),
        csam=csam(own_lower, words),
        authority_order=authority_order(own_lower, words),
    )


def urgent(signs: NoticeElements) -> bool:
    return signs.threat_to_life or signs.csam or signs.authority_order


def threat_to_life(lower: str, words: set[str] | None = None) -> bool:
    """Signs of a threat to someone's life or safety in lower-cased text."""
    words = _words(lower) if words is None else words
    anchors = words & _THREAT_ANCHORS
    return bool(anchors) and _confirmed(lower, anchors, _THREAT)


def csam(lower: str, words: set[str] | None = None) -> bool:
    """Child sexual abuse material named outright, or child and sexual words close together."""
    words = _words(lower) if words is None else words
    if not words.isdisjoint(_CSAM_WORDS) or any(stem in lower for stem in _CSAM_STEMS):
        return True
    for anchor in words & _CHILD_WORDS:
        for window in _windows(lower, anchor):
            if not _words(window).isdisjoint(_SEXUAL_WORDS) or _CHILD_ABUSE.search(window):
                return True
    return False


def authority_order(lower: str, words: set[str] | None = None) -> bool:
    """An order or request from a court, prosecutor or police named in the text."""
    words = _words(lower) if words is None else words
    if not words.isdisjoint(_ORDER_WORDS):
        return True
    anchors = words & _ORDER_ANCHORS
    return bool(anchors) and _confirmed(lower, anchors, _ORDER)


def _words(text: str) -> set[str]:
    return set(text.translate(_SEPARATORS).split())


def _confirmed(lower: str, anchors: set[str], pattern: re.Pattern[str]) -> bool:
    """The pattern matches in a window around an occurrence of one of the anchor words."""
    return any(pattern.search(window) for anchor in anchors for window in _windows(lower, anchor))


def _windows(lower: str, anchor: str, limit: int = 20) -> list[str]:
    out: list[str] = []
    pos = lower.find(anchor)
    while pos != -1 and len(out) < limit:
        out.append(lower[max(0, pos - WINDOW) : pos + len(anchor) + WINDOW])
        pos = lower.find(anchor, pos + len(anchor))
    return out
