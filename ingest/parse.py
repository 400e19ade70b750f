"""Turn one raw abuse mail (or bare report file) into a normalized AbuseReport; never raises.

Pure: no I/O, no environment. Bounds per report: input cut at ``MAX_RAW`` bytes; MIME tree of at
most 200 parts and 8 levels, 64 KB of header block per part (``formats.mime``); 256 KB of text
scanned for indicators (``indicators``); 20 MB decompressed from zip attachments, 32 entries, no
nested archives (``formats.archive``); 5 MB of JSON (``formats.xarfjson``); 4 KB of evidence.
Any internal error yields a ``freetext`` report with ``parse_warnings`` and what could be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.messages import ReportReceived
from core.report import AbuseReport, Envelope
from ingest import indicators, notice, vocabulary
from ingest.formats import (
    archive,
    arf,
    dmarc,
    freetext,
    incidents,
    mime,
    providers,
    shadowserver,
    spamcop,
    xarf0,
    xarfjson,
)
from ingest.formats.draft import Draft, MailMeta, to_report

MAX_RAW = 64 * 1024 * 1024
URGENT_CONFIDENCE = 0.85
# formats written by people (or relayed for them): their words can make a report urgent
_PERSON_FORMATS = frozenset({"freetext", "other"})
_CSV_HEADER_RE = re.compile(rb'^[\w" ]{1,64}(?:,[\w" .-]{0,64}){2,}$')

# Most specific first: the first family that recognises the mail wins; free text is the fallback.
FAMILIES: tuple[Callable[[mime.Part, MailMeta], Draft | None], ...] = (
    xarfjson.parse,
    dmarc.parse,
    arf.parse,
    xarf0.parse,
    spamcop.parse,
    shadowserver.parse,
    providers.parse,
)


def parse_received(message: ReportReceived) -> AbuseReport:
    """`parse_report` of a mail as the listener took it (its envelope and report id)."""
    return parse_report(message.raw, envelope=message.envelope, report_id=message.report_id or "")


def parse_report(raw: bytes, *, envelope: Envelope | None = None, report_id: str = "") -> AbuseReport:
    """Parse raw mail bytes into an AbuseReport. Never raises."""
    try:
        return _parse(raw, envelope, report_id)
    except Exception as exc:  # the contract: odd input becomes a report with warnings
        return _fallback(raw, envelope, report_id, exc)


def _parse(raw: bytes, envelope: Envelope | None, report_id: str) -> AbuseReport:
    raw, warnings = _bounded(raw)
    draft = _bare_file(raw)
    if draft is not None:
        draft.warnings[:0] = warnings
        _ensure_incidents(draft, "")
        return to_report(draft, None, None, envelope, report_id)
    budget = mime.Budget()
    msg = mime.parse_message(raw, budget=budget)
    meta = MailMeta.read(msg)
    draft = _family_draft(msg, meta)
    if budget.truncated:
        warnings.append(f"MIME tree cut at {mime.MAX_PARTS} parts / depth {mime.MAX_DEPTH}")
    if not meta.has_headers:
        warnings.append("no mail header block found")
    draft.warnings[:0] = warnings
    _ensure_incidents(draft, meta.first_text)
    language = vocabulary.guess_language(meta.subject + "\n" + meta.first_text[:3000])
    report = to_report(draft, meta, language, envelope, report_id)
    _read_notice(report, meta)
    return report


def _bounded(raw: bytes) -> tuple[bytes, list[str]]:
    """The input as bytes cut at MAX_RAW, with the warning saying so."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    warnings: list[str] = []
    if len(raw) > MAX_RAW:
        warnings.append(f"input of {len(raw)} bytes cut at {MAX_RAW}")
        raw = raw[:MAX_RAW]
    return raw, warnings


def _bare_file(raw: bytes) -> Draft | None:
    """A report that is not a mail: an X-ARF JSON document or a bare CSV file naming an IP column."""
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        obj = xarfjson.load(raw)
        return xarfjson.build(obj) if obj is not None else None
    if _CSV_HEADER_RE.match(head.split(b"\n", 1)[0].rstrip(b"\r")) and shadowserver_columns(head):
        return shadowserver.parse_bare(raw)
    return None


def _family_draft(msg: mime.Part, meta: MailMeta) -> Draft:
    """The draft of the first format family that recognises the mail, else the free-text reading."""
    for family in FAMILIES:
        draft = family(msg, meta)
        if draft is not None:
            return draft
    return freetext.parse(msg, meta)


def _read_notice(report: AbuseReport, meta: MailMeta) -> None:
    """The notice's elements (DSA Art. 16), and the urgent signs read again in the notifier's own words."""
    text = meta.subject + "\n" + meta.first_text
    report.notice = notice.elements(report, text)
    if notice.urgent(report.notice):  # read again in the notifier's own words (no quoted or forwarded text)
        own, _ = freetext.split_own_text(meta.first_text)
        report.notice = notice.elements(report, text, meta.subject + "\n" + own)
        _urgent(report)


def _ensure_incidents(draft: Draft, text: str) -> None:
    """Every report with an indicator has incidents, even when its family did not list them."""
    if draft.incidents or not (draft.source_ips or draft.urls or draft.domains or draft.emails):
        return
    if draft.format == "freetext":
        incidents.per_indicator(draft, text + "\n" + draft.evidence)
    else:
        incidents.single_event(draft)


def _urgent(report: AbuseReport) -> None:
    """A threat to life, child sexual abuse material or an authority order is the most severe category."""
    signs = report.notice
    if report.format not in _PERSON_FORMATS or not (signs.threat_to_life or signs.csam or signs.authority_order):
        return
    if report.category != "illegal-content":
        reason = "threat to life" if signs.threat_to_life else "child sexual abuse material" if signs.csam else ""
        report.parse_warnings.append(
            f"urgent ({reason or 'authority order'}): category {report.category} raised to illegal-content"
        )
    report.category = "illegal-content"
    report.category_confidence = max(report.category_confidence, URGENT_CONFIDENCE)


def shadowserver_columns(head: bytes) -> bool:
    """A header line naming an IP column (bare CSV files: Shadowserver and alike)."""
    return archive.ip_column(head.split(b"\n", 1)[0].decode("utf-8", "replace")) is not None


def _fallback(raw: object, envelope: Envelope | None, report_id: str, exc: Exception) -> AbuseReport:
    warning = f"parser error {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        text = indicators.refang(data[: indicators.MAX_SCAN].decode("utf-8", "replace"))
        draft = Draft(format="freetext", warnings=[warning, "fallback extraction over the raw text"])
        draft.add_ips(indicators.find_ips(text, skip_loopback=True)[:50])
        draft.add_urls(indicators.find_urls(text)[:50])
        incidents.per_indicator(draft, text)
        return to_report(draft, None, None, envelope, report_id)
    except Exception as second:
        fields: dict[str, object] = {
            "report_id": str(report_id),
            "format": "other",
            "parse_warnings": [warning, f"fallback failed: {second.__class__.__name__}"],
        }
        if isinstance(envelope, Envelope):
            fields["envelope"] = envelope
        return AbuseReport(**fields)
