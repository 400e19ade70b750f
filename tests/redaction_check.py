"""Check that a text (a customer's mail, statement, page) names none of the identities planted in a report."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]+$")
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s().\-/]+(?=\d)")


def leaks(text: str, planted: Iterable[str]) -> list[str]:
    """The planted strings still found in `text`.

    Case-insensitive. A phone number is also found written with other or no spaces, dots, dashes or
    brackets. A name (letters, spaces, apostrophes, hyphens) counts as a word of its own, not inside
    a host name, a URL or an address, so `carol-shop.example` does not leak "Carol"; anything else (an
    address, a number, a VERP or URL-encoded form) counts wherever it is.
    """
    low = text.lower()
    squeezed = _BETWEEN_DIGITS.sub("", low)
    found = []
    for item in planted:
        needle = item.strip().lower()
        if not needle:
            continue
        if _PHONE_CHARS.match(needle) and sum(c.isdigit() for c in needle) >= 6:
            digits = re.sub(r"\D", "", needle)
            if needle in low or digits in squeezed:
                found.append(item)
        elif any(c.isdigit() for c in needle) or not re.fullmatch(r"[^\W\d_][\w \t'’-]*", needle):
            if needle in low:
                found.append(item)
        else:
            words = r"[ \t\n]+".join(map(re.escape, needle.split()))
            if re.search(r"(?<![\w@./:\-])" + words + r"(?![\w@\-]|\.\w)", low):
                found.append(item)
    return found


def assert_no_identity(text: str, planted: Iterable[str]) -> None:
    """Fail with the leaked strings and where they are when any planted identity is in `text`."""
    found = leaks(text, planted)
    if found:
        places = []
        for item in found:
            pos = text.lower().find(item.lower())
            around = text[max(0, pos - 60) : pos + 60] if pos >= 0 else ""
            places.append(f"{item!r} near {around!r}")
        raise AssertionError("complainant identity reaches the customer: " + "; ".join(places))
