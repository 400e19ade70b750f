"""ARF feedback reports (RFC 5965, 6692, drafts, provider deviations) and Microsoft JMRP complaints.

Tolerates: mixed-case and reordered fields, Version 0.1/1/1.0, Received-Date for Arrival-Date,
a base64 feedback part, misspelled header-only part types, a missing third part, a multipart/mixed
outer type, and Source-IP given only in the human text, the Subject or the reported message.
"""

from __future__ import annotations

import re

from ingest import indicators
from ingest.formats import embedded, incidents
from ingest.formats.draft import Draft, MailMeta, human_text
from ingest.formats.mime import Part, read_headers

Fields = dict[str, list[str]]

_CATEGORIES = {
    "abuse": ("spam", 0.95),
    "fraud": ("phishing", 0.8),
    "virus": ("malware", 0.95),
    "not-spam": ("other", 0.9),
    "opt-out": ("other", 0.9),
    "opt-out-list": ("other", 0.9),
    "unsubscribe": ("other", 0.9),
    "auth-failure": ("other", 0.9),
    "dmarc": ("other", 0.9),
}
_JMRP_SUBJECT_RE = re.compile(r"complaint about message from\s+\[?([0-9a-fA-F.:]{3,45})", re.I)
_FIELD_LIMIT = 64 * 1024


def feedback_part(msg: Part) -> Part | None:
    for part in msg.walk():
        if part.ctype == "message/feedback-report":
            return part
    return None


def read_fields(part: Part) -> Fields:
    """The feedback part's fields by lower-case name (values in order, repeated fields kept)."""
    data = part.decoded()[:_FIELD_LIMIT].lstrip(b"\r\n")
    headers, _ = read_headers(data.replace(b"\r\n", b"\n"))
    fields: Fields = {}
    for name, value in headers:
        fields.setdefault(name, []).append(value.strip())
    return fields


def feedback(msg: Part, meta: MailMeta) -> tuple[Part | None, Fields]:
    """The feedback part and its fields, read once per mail (cached on ``meta``)."""
    if "feedback" not in meta.cache:
        part = feedback_part(msg)
        meta.cache["feedback"] = (part, read_fields(part) if part is not None else {})
    found: tuple[Part | None, Fields] = meta.cache["feedback"]
    return found


def first(fields: Fields, *names: str) -> str:
    for name in names:
        for value in fields.get(name, ()):
            if value:
                return value
    return ""


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    part, fields = feedback(msg, meta)
    if part is None:
        return _jmrp(msg, meta)
    ftype = first(fields, "feedback-type").lower()
    spamcop = (meta.reporter_domain() or "").endswith("spamcop.net")
    draft = Draft(format="spamcop" if spamcop else "arf", automated=True)
    draft.format_version = first(fields, "version") or None
    draft.source_label = ftype or None
    draft.category, draft.category_confidence = _CATEGORIES.get(ftype, ("spam" if spamcop else "other", 0.5))
    draft.reporter_kind = "machine" if spamcop or ftype not in _CATEGORIES else "feedback-loop"
    if not ftype:
        draft.warnings.append("feedback report without Feedback-Type")
    read_common(draft, msg, meta, part, fields)
    return draft


def read_common(draft: Draft, msg: Part, meta: MailMeta, part: Part, fields: Fields) -> None:
    """Indicators shared by ARF and auth-failure reports."""
    draft.add_ips(indicators.find_ips(" ".join(fields.get("source-ip", []))))
    if draft.source_ips:
        draft.source_label = draft.source_label or "arf"
    else:
        text = human_text(msg, stop=part)
        draft.add_ips(indicators.find_ips(text, skip_loopback=True))
        if not draft.source_ips:
            draft.add_ips(indicators.find_ips(meta.subject, skip_loopback=True))
        if draft.source_ips:
            draft.warnings.append("Source-IP missing: IP taken from the report text")
    for value in fields.get("source-port", []):
        draft.add_port(value)
    draft.add_urls([u for u in fields.get("reported-uri", []) if not u.lower().startswith("mailto:")])
    complainant = _complainant_domains(fields, msg)
    for domain in fields.get("reported-domain", []):
        if domain.lower() in complainant:
            draft.warnings.append(f"Reported-Domain {domain} is the complainant's side; not listed")
        else:
            draft.add_domains([domain])
    mail_from = indicators.extract_address(first(fields, "original-mail-from"))
    draft.add_domains([indicators.email_domain(mail_from)])
    draft.add_emails([mail_from])
    draft.set_observed(first(fields, "arrival-date", "received-date"), "Arrival-Date")
    draft.add_evidence(part.decoded()[:2048].decode("utf-8", "replace"))
    reported = embedded.reported_message(msg)
    if reported is not None:
        embedded.read_into(draft, reported, ips=not draft.source_ips)
        draft.add_emails([indicators.extract_address(reported.get("from"))])
    elif not draft.source_ips:
        draft.warnings.append("no source IP found")
    incidents.single_event(draft)


def _complainant_domains(fields: Fields, msg: Part) -> set[str]:
    """Domains of the complaining recipient (Return Path FBLs put them in Reported-Domain)."""
    out: set[str] = set()
    for name in ("original-rcpt-to", "removal-recipient"):
        for value in fields.get(name, []):
            domain = indicators.email_domain(indicators.extract_address(value) or value)
            if domain:
                out.add(domain.lower())
    reported = embedded.reported_message(msg)
    if reported is not None:
        domain = indicators.email_domain(indicators.extract_address(reported.get("to")))
        if domain:
            out.add(domain.lower())
    return out


def _jmrp(msg: Part, meta: MailMeta) -> Draft | None:
    """Microsoft JMRP: multipart/mixed with only the complained message; IP only in the Subject."""
    match = _JMRP_SUBJECT_RE.search(meta.subject)
    reported = embedded.reported_message(msg)
    if not match or reported is None:
        return None
    draft = Draft(format="arf", category="spam", category_confidence=0.9, automated=True)
    draft.source_label = "jmrp"
    draft.reporter_kind = "feedback-loop"
    draft.add_ips(indicators.find_ips(match.group(1)))
    embedded.read_into(draft, reported, ips=True)
    draft.add_emails([indicators.extract_address(reported.get("from"))])
    draft.set_observed(reported.get("date"), "reported message Date")
    incidents.single_event(draft)
    return draft
