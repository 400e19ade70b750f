"""SpamCop reports in plain form (per-message and spamvertised-site reports, summaries).

SpamCop reports in ARF form are read by the ARF parser (format set to ``spamcop`` there).
Only the first 256 KB of the body are scanned; the pasted spam after "[ Offending message ]"
is read for its headers only.
"""

from __future__ import annotations

import re

from ingest import indicators
from ingest.formats import dates, embedded, incidents
from ingest.formats.draft import Draft, MailMeta
from ingest.formats.mime import Part, split_headers

_SUBJECT_RE = re.compile(r"\[SpamCop \(([^)\s]{3,2048})\) id:(\d{1,20})\]", re.I)
_EMAIL_FROM_RE = re.compile(r"^Email from ([0-9A-Fa-f.:]{3,45}) / (.{6,80})$", re.M)
_SPAMVERTISED_RE = re.compile(r"^Spamvertised web site: (\S{4,2048})", re.M)
_OFFENDING = re.compile(r"^\[ Offending message \]|^Offending message:", re.M)


def is_spamcop(meta: MailMeta, text: str) -> bool:
    domain = meta.reporter_domain() or ""
    return (
        domain.endswith("spamcop.net")
        or bool(_SUBJECT_RE.search(meta.subject))
        or "[ SpamCop V" in text[:2048]
        or "- SpamCop V" in text[:2048]
    )


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    text = meta.first_text[: 256 * 1024]
    if not is_spamcop(meta, text):
        return None
    draft = Draft(format="spamcop", category="spam", category_confidence=0.95, automated=True, reporter_kind="machine")
    summary = (meta.reporter or "").lower().startswith("summaries@") or "summary report" in meta.subject.lower()
    draft.source_label = "summary" if summary else "spam-report"
    version = re.search(r"SpamCop V([\d.]{1,20})", text[:2048])
    draft.format_version = version.group(1) if version else None
    offending = _OFFENDING.search(text)
    head = text[: offending.start()] if offending else text
    events: list[tuple[str | None, str | None, str]] = []  # (ip, url, its own line)
    if summary:
        ips = indicators.find_ips(head, skip_loopback=True)
        draft.add_ips(ips)
        events.extend((ip, None, _line_of(head, ip)) for ip in ips)
    for match in _EMAIL_FROM_RE.finditer(head):
        draft.add_ips([match.group(1)])
        draft.set_observed(match.group(2), "SpamCop date")
        events.append((match.group(1), None, match.group(0)))
    for match in _SPAMVERTISED_RE.finditer(head):
        draft.source_label = "spamvertised"
        draft.add_urls([match.group(1)])
        events.append((None, match.group(1), match.group(0)))
    subject = _SUBJECT_RE.search(meta.subject)
    if subject and not draft.source_ips:
        value = subject.group(1)
        if "://" in value:
            draft.add_urls([value])
        else:
            draft.add_ips(indicators.find_ips(value))
    if offending:
        spam = text[offending.end() :].lstrip("\n").encode("utf-8", "replace")
        block, _ = split_headers(spam)
        reported = Part(block, b"", 1)
        embedded.read_into(draft, reported, ips=not draft.source_ips)
        auth = " ".join(reported.get_all("authentication-results"))
        for address in re.findall(r"smtp\.mailfrom=(\S{3,254})", auth)[:2]:
            draft.add_domains([indicators.email_domain(address.rstrip(";"))])
    draft.add_evidence(head[:2048])
    if not draft.source_ips and not draft.urls:
        draft.warnings.append("no source IP or URL found")
    _incidents(draft, events)
    return draft


def _incidents(draft: Draft, events: list[tuple[str | None, str | None, str]]) -> None:
    """One incident per reported IP (and spamvertised URL), each with its own line and time."""
    if not events:
        incidents.single_event(draft)
        return
    seen: set[tuple[str | None, str | None]] = set()
    for ip, url, line in events:
        if (ip, url) in seen:
            continue
        seen.add((ip, url))
        observed, _ = dates.first_date_in(line)
        draft.add_incident(
            ip=ip,
            url=url,
            observed_at=observed or draft.observed_at,
            tag=draft.source_label,
            email=next(iter(draft.emails), None) if ip and not url else None,
            evidence=line,
        )


def _line_of(text: str, needle: str) -> str:
    pos = text.find(needle)
    if pos == -1:
        return needle
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end != -1 else len(text)][:1024]
