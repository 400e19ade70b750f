"""Reading incident timestamps (RFC 2822, ISO 8601, log formats) into timezone-aware UTC datetimes.

A value without a zone is taken as UTC (callers note it in parse_warnings); years outside
1990..2100 are rejected; inputs longer than 200 characters are cut.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_tz

_FORMATS = (
    "%d/%b/%Y:%H:%M:%S %z",  # Apache access log
    "%b %d %Y %H:%M:%S %z",  # pyxarf
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%a %b %d %H:%M:%S %Z %Y",  # date(1): Fri Sep 15 18:55:37 UTC 2023
    "%a %b %d %H:%M:%S %Y",
)
_DATE_IN_TEXT = re.compile(
    r"\b(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?"
    r"|\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"
    r"|(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})?(?: [+-]\d{4}| [A-Z]{2,4})?)"
)


def parse_date(value: str | None) -> tuple[datetime | None, bool]:
    """(UTC datetime or None, whether the zone had to be assumed)."""
    if not value:
        return None, False
    text = " ".join(value.split())[:200]
    text = re.sub(r"\s*\([^)]{0,40}\)\s*$", "", text)  # trailing "(CET)" comments
    parsed, assumed = _parse(text)
    if parsed is None or not 1990 <= parsed.year <= 2100:
        return None, False
    return parsed.astimezone(UTC), assumed


def _parse(text: str) -> tuple[datetime | None, bool]:
    iso = text.replace(" UTC", "Z") if re.match(r"\d{4}-\d{2}-\d{2}", text) else ""
    if iso:
        try:
            dt = datetime.fromisoformat(iso)
            return (dt, False) if dt.tzinfo else (dt.replace(tzinfo=UTC), True)
        except ValueError:
            pass
    if re.search(r"[A-Za-z]{3}", text) or "," in text:
        tup = parsedate_tz(text)
        if tup is not None and tup[0] > 0:
            try:
                dt = datetime(*tup[:6], tzinfo=UTC)
            except ValueError:
                return None, False
            offset = tup[9]
            if offset is None:
                return dt, True
            return datetime.fromtimestamp(dt.timestamp() - offset, UTC), False
    for fmt in _FORMATS:
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (dt, False) if dt.tzinfo else (dt.replace(tzinfo=UTC), True)
    return None, False


def first_date_in(text: str) -> tuple[datetime | None, bool]:
    """The first readable timestamp found in free text (first 16 KB)."""
    for match in _DATE_IN_TEXT.finditer(text[: 16 * 1024]):
        parsed = parse_date(match.group(0))
        if parsed[0] is not None:
            return parsed
    return None, False
