"""The passes of `core.redact` over numbers: phone numbers (checked with phonenumbers) and postal addresses."""

from __future__ import annotations

import re

import phonenumbers

from core import redact_lexicon as lx
from core.redact_text import Masks, split_quote, wipe

MARK = lx.MARK


def phones(text: str) -> str:
    """Phone numbers (checked with phonenumbers); IP addresses, dates, times, ports and log numbers hidden first."""
    temp = Masks("\ue002")
    hidden = lx.NOT_PHONE_RE.sub(lambda m: temp.hide(m.group(0)), text)

    def run(m: re.Match[str]) -> str:
        labeled = lx.PHONE_LABEL_RE.search(hidden[max(0, m.start() - 40) : m.start()]) is not None
        return _phone_run(m.group(0), labeled)

    return temp.restore(lx.PHONE_RUN_RE.sub(run, hidden))


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
    text = lx.US_CITY_ZIP_RE.sub(MARK, lx.UK_POSTCODE_RE.sub(MARK, text))
    lines = text.split("\n")
    for n, line in enumerate(lines):
        quote, body = split_quote(line)
        cr = "\r" if body.endswith("\r") else ""
        body = body[:-1] if cr else body
        if body.strip() and len(body) <= 500 and (
            lx.POSTCODE_CITY_RE.match(body) or any(r.search(body) for r in lx.STREET_RES)
        ):
            lines[n] = quote + wipe(body.strip()) + cr
    return "\n".join(lines)

