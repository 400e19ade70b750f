"""The passes of `core.redact` over numbers: phone numbers (checked with phonenumbers) and postal addresses."""

from __future__ import annotations

import bisect
import itertools
import re

import phonenumbers

from core import redact_lexicon as lx
from core.redact_text import split_quote, wipe

MARK = lx.MARK


def phones(text: str) -> str:
    """Phone numbers (checked with phonenumbers); IP addresses, dates, times, ports and log numbers are not."""
    out, last, hidden_lines = [], 0, {}
    for m in lx.PHONE_RUN_RE.finditer(text):
        if sum(c.isdigit() for c in m[0]) < 8 or lx.PLAIN_NOT_PHONE_RE.fullmatch(m[0]):
            continue
        begin = text.rfind("\n", 0, m.start()) + 1
        if begin not in hidden_lines:
            stop = text.find("\n", m.end())
            hidden_lines[begin] = _hide_not_phones(text[begin : stop if stop >= 0 else len(text)])
        hidden = hidden_lines[begin]
        for sub in lx.PHONE_RUN_RE.finditer(hidden, m.start() - begin, m.end() - begin):
            labeled = lx.PHONE_LABEL_RE.search(hidden[max(0, sub.start() - 40) : sub.start()]) is not None
            replaced = _phone_run(sub[0], labeled)
            if replaced != sub[0]:
                out += [text[last : begin + sub.start()], replaced]
                last = begin + sub.end()
    return "".join([*out, text[last:]])


def _hide_not_phones(line: str) -> str:
    """The line with its dates, times, IP addresses, ports and log numbers blanked out (same length)."""
    parts, last = [], 0
    for m in lx.NOT_PHONE_RE.finditer(line):
        parts += [line[last : m.start()], "\ue002" * (m.end() - m.start())]
        last = m.end()
    return "".join([*parts, line[last:]])


def _phone_run(run: str, labeled: bool) -> str:
    """A run of digits and separators with every phone number in it (one or several) replaced."""
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
    out, last, s = [], 0, 0
    while s < len(groups):
        begin = groups[s][0] - (1 if groups[s][0] > 0 and run[groups[s][0] - 1] in "+(" else 0)
        for e in range(min(len(groups), s + 10) - 1, s - 1, -1):
            if _is_phone(run[begin : groups[e][1]], labeled):
                out += [run[last:begin], MARK]
                last, s = groups[e][1], e + 1
                break
        else:
            s += 1
    return "".join([*out, run[last:]])


def _is_phone(candidate: str, labeled: bool) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if not 8 <= len(digits) <= 15:
        return False
    plain = candidate.replace("(0)", "")
    separated = re.search(r"[ \t.\-/()]", candidate.lstrip("+(")) is not None
    if candidate.startswith("+") or candidate.startswith("00"):
        return _valid("+" + re.sub(r"\D", "", plain)[(0 if candidate.startswith("+") else 2) :], None, possible=True)
    if labeled:
        return True
    if digits.startswith("0"):
        return (separated or len(digits) == 10) and any(_valid(plain, region) for region in lx.TRUNK_REGIONS)
    if not separated:
        return False
    if lx.US_PHONE_RE.fullmatch(candidate) and _valid(candidate, "US"):
        return True
    return digits[0] in "6789" and len(digits) == 9 and len(re.findall(r"[ .\-]", candidate)) >= 2 and _valid(
        candidate, "ES"
    )


def _valid(number: str, region: str | None, *, possible: bool = False) -> bool:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) or (possible and phonenumbers.is_possible_number(parsed))


def postal(text: str) -> str:
    """Street lines (number + street word) and postcode + city lines, UK and US postcodes."""
    lines = text.split("\n")
    spaced = [n for n, line in enumerate(lines) if " " in line or "\t" in line]  # a CSV row has no address
    prose = "\n".join(lines[n] for n in spaced)
    low = prose.lower()
    patterns = [r for r, hints in zip(lx.STREET_RES, lx.STREET_HINTS, strict=True) if lx.holds(low, hints)]
    patterns += [lx.POSTCODE_LINE_RE, lx.UK_POSTCODE_RE]
    patterns += [lx.US_CITY_ZIP_RE] if lx.US_ZIP_HINT_RE.search(prose) else []
    starts = [m.start() for pattern in patterns for m in pattern.finditer(prose)]
    if not starts:
        return text
    offsets = list(itertools.accumulate(len(lines[n]) + 1 for n in spaced))
    for n in sorted({spaced[bisect.bisect_right(offsets, s)] for s in starts}):
        line = lx.US_CITY_ZIP_RE.sub(MARK, lx.UK_POSTCODE_RE.sub(MARK, lines[n]))
        quote, body = split_quote(line)
        cr = "\r" if body.endswith("\r") else ""
        body = body[:-1] if cr else body
        if body.strip() and len(body) <= 500 and (
            lx.POSTCODE_CITY_RE.match(body) or any(r.search(body) for r in lx.STREET_RES)
        ):
            line = quote + wipe(body.strip()) + cr
        lines[n] = line
    return "\n".join(lines)

