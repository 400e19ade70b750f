"""The passes of `core.redact` over mail text: header fields, reply-chain attributions, signature blocks."""

from __future__ import annotations

import re
from collections.abc import Iterable

from core import redact_lexicon as lx

MARK = lx.MARK
_DATE_NUMBER_RE = re.compile(r"[\d:./+\-]+(?:h\d*|am|pm|uhr|st|nd|rd|th|er)?|(?:gmt|utc)[+\-]\d{1,2}(?::?\d{2})?")
_QUOTE_RE = re.compile(lx.QUOTE)
_NAMED_ADDRESS_RE = re.compile(
    r"(?:\"(?P<quoted>[^\"\n]{2,80})\"|(?<![^,;:\s])(?P<plain>[^\",;:<>@\[\]\s][^\",;:<>@\[\]\n]{1,79}?))"
    r"[ \t]*[<(](?P<address>[^>)\n]{0,300})[>)]"
)


def display_names(value: str) -> list[str]:
    """The display names of the addresses in a header value ("Roux, Jeanne" <...>, Ann Lee <...>), except
    those of a kept address (the customer's own)."""
    return [
        (m["quoted"] or m["plain"]).strip()
        for m in _NAMED_ADDRESS_RE.finditer(value)
        if not lx.MASK_RE.search(m["address"]) and (m["quoted"] or m["plain"]).strip()
    ]


def fields(lines: list[str]) -> Iterable[tuple[str, str]]:
    """Every header field of the lines (name in lower case, value with its continuation lines)."""
    for i, line in enumerate(lines):
        m = lx.HEADER_RE.match(line)
        if m is not None:
            j = field_end(lines, i, m["q"])
            yield m["name"].lower(), "\n".join([m["value"], *lines[i + 1 : j]])


def field_end(lines: list[str], i: int, quote: str) -> int:
    """The index of the first line after the field that starts at line `i` (its continuation lines)."""
    j = i + 1
    while j < len(lines) and j - i < 50:
        rest = lines[j][len(quote) :] if lines[j].startswith(quote) else ""
        if not (rest[:1] in (" ", "\t") and rest.strip()):
            break
        j += 1
    return j



class Masks:
    """Text hidden behind private-use characters while the passes run, put back at the end."""

    def __init__(self, opener: str) -> None:
        self.opener = opener
        self.saved: list[str] = []
        self.pattern = re.compile(re.escape(opener) + "[\ue100-\ue1ff]+" + lx.MASK_CLOSE)

    def hide(self, value: str) -> str:
        n, digits = len(self.saved), ""
        self.saved.append(value)
        while True:
            n, d = divmod(n, 256)
            digits = chr(lx.MASK_BASE + d) + digits
            if n == 0:
                return self.opener + digits + lx.MASK_CLOSE

    def restore(self, text: str) -> str:
        for _ in range(4):  # a hidden value may hold a mask hidden before it
            if not self.saved or not self.pattern.search(text):
                break
            text = self.pattern.sub(lambda m: self._value(m.group(0)[1:-1]), text)
        return text

    def _value(self, digits: str) -> str:
        n = 0
        for c in digits:
            n = n * 256 + ord(c) - lx.MASK_BASE
        return self.saved[n] if n < len(self.saved) else ""



def wipe(segment: str) -> str:
    """`[redacted]` for a segment, the kept values in it put back in front."""
    kept = lx.MASK_RE.findall(segment)
    if not re.search(r"[^\W_]", lx.MASK_RE.sub("", segment)):
        return segment
    return ", ".join([*kept, MARK])


def split_quote(line: str) -> tuple[str, str]:
    """The quote marks ("> > ") of a line and the rest."""
    if not line.startswith(">"):
        return "", line
    m = _QUOTE_RE.match(line)
    end = m.end() if m else 0
    return line[:end], line[end:]


def headers(text: str, masks: Masks, found: set[str]) -> str:
    """Recipient fields wiped, sender fields without a kept value wiped, message ids shielded."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = lx.HEADER_RE.match(lines[i])
        name = m["name"].lower() if m else ""
        if m is None or not (
            name in lx.RECIPIENT_FIELDS or name in lx.SENDER_FIELDS or name in lx.ID_FIELDS or name == "received"
        ):
            out.append(lines[i])
            i += 1
            continue
        j = field_end(lines, i, m["q"])
        value = "\n".join([m["value"], *lines[i + 1 : j]])
        head, cr = lines[i][: m.start("value")], "\r" if lines[j - 1].endswith("\r") else ""
        if name in lx.ID_FIELDS:
            out.append(head + masks.hide(value))
        elif name == "received":
            out.append(head + lx.RECEIVED_FOR_RE.sub("for " + MARK, value))
        elif re.search(r"[^\W_]", lx.MASK_RE.sub("", value)) and (
            name in lx.RECIPIENT_FIELDS or not lx.MASK_RE.search(value)
        ):
            if name in lx.RECIPIENT_FIELDS or _quoted_header(lines, j, m["q"]):
                found |= {n for n in display_names(value) if not lx.MASK_RE.search(n)}
            out.append(head + " " + wipe(value.strip()) + cr)
        else:
            out.append("\n".join(lines[i:j]))
        i = j
    return "\n".join(out)


def _quoted_header(lines: list[str], j: int, quote: str) -> bool:
    """A From line of a quoted reply header (Outlook: From / Sent, De / Envoyé, Von / Gesendet, De / Enviado)."""
    sent = re.compile(re.escape(quote) + r"[ \t]*(?:sent|envoyé|gesendet|enviado(?: el)?|fecha|date)[ \t]*:", re.I)
    return any(sent.match(line) for line in lines[j : j + 3])


def attributions(text: str, found: set[str]) -> str:
    """"On <date>, <person> wrote:" and its FR/DE/ES forms: the person wiped, the date kept."""
    if not lx.holds(text.lower(), lx.VERB_HINTS):
        return text
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        new = _attribution(lines[i], found) if len(lines[i]) <= 600 and lx.VERB_RE.search(lines[i]) else None
        if new is None and i + 1 < len(lines) and _wrapped(lines[i], lines[i + 1]):
            joined = _attribution(lines[i].rstrip("\r") + " " + split_quote(lines[i + 1])[1], found)
            if joined is not None:
                out.append(joined)
                i += 2
                continue
        out.append(lines[i] if new is None else new)
        i += 1
    return "\n".join(out)


def _wrapped(first: str, second: str) -> bool:
    """Whether two lines are one attribution wrapped in two ("On ..., Alice Martin <" / "alice@x> wrote:")."""
    rest = split_quote(second)[1]
    return (
        len(second) < 300
        and lx.ATTRIBUTION_START_RE.match(first) is not None
        and not lx.VERB_RE.search(first)
        and lx.VERB_RE.search(rest) is not None
        and not lx.ATTRIBUTION_START_RE.match(rest)
        and not lx.HEADER_RE.match(second)
    )


def _attribution(line: str, found: set[str]) -> str | None:
    cr = "\r" if line.endswith("\r") else ""
    s = line[:-1] if cr else line
    for pattern in (lx.ATTRIBUTION_MID_RE, lx.ATTRIBUTION_POST_RE):
        m = pattern.match(s)
        if m is not None:
            return s[: m.start("person")] + _person(m["person"], found) + s[m.end("person") :] + cr
    m = lx.ATTRIBUTION_END_RE.match(s)
    if m is None:
        return None
    body = m["body"]
    intro = lx.INTRO_RE.match(body)
    cut, dated = _date_prefix(body, intro.end() if intro else 0)
    if not intro or not dated:
        cut = 0
    person = body[cut:]
    bare = lx.MASK_RE.sub("", person).strip()
    if not bare or (not (intro and dated) and "@" not in person and "<" not in person and not _name_like(bare)):
        return None
    return s[: m.start("body") + cut] + _person(person, found) + s[m.end("body") :] + cr


def _date_prefix(body: str, pos: int) -> tuple[int, bool]:
    """Where the date part of an attribution line ends, and whether it had a digit."""
    dated = False
    for m in lx.DATE_TOKEN_RE.finditer(body, pos):
        tok = m.group(1).strip("().").lower()
        if m.start() != pos or not (
            tok in (",", "") or tok in lx.DATE_WORDS or _DATE_NUMBER_RE.fullmatch(tok)
        ):
            break
        pos, dated = m.end(), dated or any(c.isdigit() for c in tok)
    return pos, dated


def _name_like(value: str) -> bool:
    words = value.replace('"', " ").split()
    return 1 <= len(words) <= 4 and all(w[:1].isupper() and w[:1].isalpha() for w in words)


def _person(person: str, found: set[str]) -> str:
    lead = person[: len(person) - len(person.lstrip())]
    name = re.sub(r"<[^>]*>|\([^)]*\)|\S+@\S+|\[redacted\]|[\"']", " ", lx.MASK_RE.sub(" ", person))
    if _name_like(name.strip(" ,")):
        found.add(" ".join(name.split()).strip(" ,"))
    return lead + wipe(person.strip())


def signatures(text: str) -> str:
    """A sign-off ("-- ", Regards, Cordialement, Mit freundlichen Grüßen, Saludos...) and the lines under it."""
    if not lx.holds(text.lower(), lx.SIGNOFF_HINTS) or not lx.ANY_SIGNOFF_RE.search(text):
        return text
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        quote, body = split_quote(lines[i])
        b = body.strip()
        if not (b == "--" or lx.SIGNOFF_RE.match(b) or lx.SIGNOFF_LONG_RE.match(b)):
            out.append(lines[i])
            i += 1
            continue
        j, blank, last = i + 1, 0, i
        while j < len(lines) and j - i <= 12:
            q2, body2 = split_quote(lines[j])
            s2 = body2.strip()
            if q2.replace(" ", "") != quote.replace(" ", "") or _ends_signature(s2):
                break
            blank = blank + 1 if not s2 else 0
            if blank >= 2:
                break
            last = j if s2 else last
            j += 1
        block = "\n".join(split_quote(line)[1] for line in lines[i : last + 1])
        out.append(quote + wipe(block.strip()) + ("\r" if lines[last].endswith("\r") else ""))
        i = last + 1
    return "\n".join(out)


def _ends_signature(line: str) -> bool:
    if lx.MASK_RE.search(line) or lx.FORWARD_RE.match(line) or lx.EVIDENCE_LINE_RE.search(line):
        return True
    if lx.ATTRIBUTION_END_RE.match(line) or lx.ATTRIBUTION_MID_RE.match(line):
        return True
    m = lx.HEADER_RE.match(line)
    return m is not None and (m["name"].lower() in lx.MAIL_HEADER_NAMES or m["name"].lower().startswith("x-"))


