"""Category and language vocabularies (FR, EN, DE, ES) for reports without a machine-readable field.

Classification reads at most ``MAX_CLASSIFY`` characters: words are looked up in dictionaries
(one tokenisation pass), multi-word phrases with substring search. Each distinct term counts
once; terms in the subject count three times. Weights favour specific vocabularies (phishing,
copyright, CSAM) over words that also appear in boilerplate (spam in "anti-spam" footers).
"""

from __future__ import annotations

MAX_CLASSIFY = 12 * 1024
SUBJECT_WEIGHT = 3

# word -> (category, weight); a category of None blocks a prefix match (e.g. "spamhaus").
_WORDS: dict[str, tuple[str | None, int]] = {}
_STEMS: dict[str, tuple[str, int]] = {}
_PHRASES: list[tuple[str, str, int]] = []


def _add(category: str | None, weight: int, *terms: str) -> None:
    for term in terms:
        if term.endswith("*"):
            _STEMS[term[:-1]] = (category or "other", weight)
        elif not term.isalnum():
            _PHRASES.append((term, category or "other", weight))
        else:
            _WORDS[term] = (category, weight)


# "category weight: term | term ...": a trailing * makes a prefix (stem); "-" blocks a stem match.
_VOCABULARY = """
phishing 3: phish* | hameçonnage | hameconnage | hameçonner | filoutage | suplantación de identidad
phishing 3: credential harvesting | fake login page | page de connexion frauduleuse
phishing 2: usurpation d'identité | suplantación | identitätsdiebstahl
malware 3: malware* | ransomware | trojan | trojaner | spyware | keylogger | webshell
malware 3: logiciel malveillant | logiciels malveillants | code malveillant | cheval de troie
malware 3: schadsoftware* | schadprogramm* | software malicioso | programa malicioso
malware 3: command and control | c&c server | malicious code | malicious file | malicious content
malware 3: malicious software
malware 2: virus | viruses | sinkhole | infected | infecté | infectée | infectés | infiziert
malware 2: infectado | infección | drone | c2
malware 1: botnet* | infection
spam 3: pourriel* | courriel indésirable | courriels indésirables | courrier indésirable
spam 3: correo no deseado | correo basura | spamtrap | spam trap | spamvertised
spam 2: spam* | unsolicited | uce | ube | unerwünschte | unverlangte | harvesting | non sollicité
spam 2: non sollicités | non sollicitée | no solicitado | no solicitados | werbemail*
- 0: spamhaus | spamcop | antispam | spamassassin | spamexperts
intrusion 3: intrusion | intrusions | intrusión | tentative d'intrusion | tentatives d'intrusion
intrusion 3: piratage | piraté | piratée | brute force | bruteforce | brute-force | force brute
intrusion 3: fuerza bruta | ddos | sql injection | injection sql | einbruch* | eindring* | fail2ban
intrusion 3: hacking | hacked | hackeo | login attack | login-attack | port scan | portscan | wp-login
intrusion 3: xmlrpc.php | angriff* | attaque* | ataque* | attack*
intrusion 2: scan | scanning | scanner | exploit | exploitation | reflection | amplification | sshd
intrusion 2: failed password | log line | log lines | logfile | authentication failure
intrusion 2: tentatives de connexion | compromised | compromis | kompromittiert | comprometido
intrusion 2: compromise
vulnerability 3: vulnerability | vulnerabilities | vulnérabilité | vulnérabilités | vulnerabilidad
vulnerability 3: schwachstelle* | sicherheitslücke* | open resolver | open relay | security issue
vulnerability 3: misconfigured | misconfiguration | cve | faille de sécurité
vulnerability 1: vulnerable | exposed | unpatched
copyright 3: copyright* | infringement | infringing | infringed | dmca | droit d'auteur
copyright 3: droits d'auteur | urheberrecht* | derechos de autor | antipiracy | anti-piracy
copyright 3: contrefaçon | propriété intellectuelle | piracy
illegal-content 3: csam | csem | child abuse | child sexual | pédopornographie* | pedopornographie*
illegal-content 3: pédopornographique* | contenu illicite | contenus illicites | contenu illégal
illegal-content 3: illegal content | kinderporno* | pornografía infantil | apologie du terrorisme
illegal-content 3: terrorist content | contenido ilegal | abuso sexual infantil | sexuellen missbrauch
fraud 1: fraud* | scam | scams | scammer* | escroquerie* | arnaque* | betrug* | estafa* | fake shop
fraud 1: faux site | advance fee | 419
"""
for _line in _VOCABULARY.strip().splitlines():
    _head, _, _terms_text = _line.partition(":")
    _category, _weight = _head.split()
    _add(None if _category == "-" else _category, int(_weight), *(t.strip() for t in _terms_text.split("|")))

_PRIORITY = ("illegal-content", "phishing", "copyright", "malware", "intrusion", "vulnerability", "spam", "fraud")
_SEPARATORS = str.maketrans(dict.fromkeys("!\"#$%()*+,./:;<=>?@[\\]^`{|}~'-_=\n\r\t", " "))
_STEM_INDEX: dict[str, list[str]] = {}
for _stem in sorted(_STEMS, key=len, reverse=True):
    _STEM_INDEX.setdefault(_stem[:4], []).append(_stem)


def tokens(text: str) -> set[str]:
    """Distinct lower-case words of the text (punctuation and white space separate them)."""
    return set(text.lower().translate(_SEPARATORS).split())


_LANG_WORDS: dict[str, frozenset[str]] = {
    "fr": frozenset(
        "le les des est une nous vous avec pour dans sur pas qui votre cette sont été ce du au aux "
        "merci bonjour cordialement ont notre depuis ceci également".split()
    ),
    "en": frozenset(
        "the and is are you your this that with for from have has was been please our we of "
        "to on by which would regards".split()
    ),
    "de": frozenset(
        "der die das und ist nicht sie ihr ihre wir mit von zu den dem ein eine bitte auf für "
        "wurde wurden sehr geehrte grüßen".split()
    ),
    "es": frozenset(
        "el los las que en y es por para con una su sus nos hemos se del al está gracias saludos estimado muy".split()
    ),
}


_STOP_INDEX: dict[str, tuple[str, ...]] = {}
for _lang, _stop in _LANG_WORDS.items():
    for _word in _stop:
        _STOP_INDEX[_word] = (*_STOP_INDEX.get(_word, ()), _lang)


def classify(text: str, subject: str = "") -> tuple[str, float, dict[str, int]]:
    """Best category for the text, a confidence in 0..0.85, and the per-category scores."""
    scores: dict[str, int] = {}
    for source, factor in ((subject.lower(), SUBJECT_WEIGHT), (text[:MAX_CLASSIFY].lower(), 1)):
        for category, weight in _terms(source).items():
            scores[category] = scores.get(category, 0) + weight * factor
    scores.pop("other", None)
    if not scores:
        return "other", 0.0, scores
    best = max(scores, key=lambda c: (scores[c], -_PRIORITY.index(c) if c in _PRIORITY else -99))
    if best == "fraud" and scores.get("phishing"):
        best = "phishing"
    total = sum(scores.values())
    confidence = min(0.85, 0.35 + 0.05 * scores[best]) * (0.6 + 0.4 * scores[best] / total)
    return best, round(confidence, 2), scores


def _terms(text: str) -> dict[str, int]:
    """Distinct terms found in the text, summed per category (each term once)."""
    seen: dict[str, tuple[str, int]] = {}
    words = tokens(text)
    for token in words & _WORDS.keys():
        category, weight = _WORDS[token]
        if category is not None:
            seen[token] = (category, weight)
    for token in words:
        for stem in _STEM_INDEX.get(token[:4], ()):
            if token.startswith(stem) and token not in _WORDS:
                seen[stem] = _STEMS[stem]
                break
    for phrase, category, weight in _PHRASES:
        if phrase in text:
            seen[phrase] = (category, weight)
    out: dict[str, int] = {}
    for category, weight in seen.values():
        out[category] = out.get(category, 0) + weight
    return out


def guess_language(text: str) -> str | None:
    """'fr', 'en', 'de', 'es' or None: stop-word counts over the first 1,500 characters."""
    counts = dict.fromkeys(_LANG_WORDS, 0)
    for word in text[:1500].lower().translate(_SEPARATORS).split():
        for lang in _STOP_INDEX.get(word, ()):
            counts[lang] += 1
    ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    (best, first), (_, second) = ranked[0], ranked[1]
    if first >= 3 and first >= 1.5 * second:
        return best
    return None
