"""Authentication/DMARC failure reports (RFC 6591, 7489 section 7.3, 9991), ARF-shaped or plain text.

Category is ``other`` (a failure report is evidence, not a complaint) unless the report's own
text, or its decoded DKIM-Canonicalized-Body, calls the content phishing, malware or fraud.
"""

from __future__ import annotations

import re

from ingest import indicators, vocabulary
from ingest.formats import embedded, incidents
from ingest.formats.arf import Fields, feedback, first, read_common
from ingest.formats.decoding import decode_charset, decode_transfer
from ingest.formats.draft import Draft, MailMeta, human_text
from ingest.formats.mime import Part

_AUTH_FIELDS = ("auth-failure", "identity-alignment", "dkim-domain", "dkim-canonicalized-body", "spf-dns")
_PLAIN_RE = re.compile(r"dmarc (?:forensic|failure|ruf)|failed the published dmarc policy|forensic report", re.I)
_LABELLED_IP_RE = re.compile(r"(?:sender|source)[ -]ip(?: address)?\s*:\s*([0-9A-Fa-f.:]{3,45})", re.I)
_LABELLED_DOMAIN_RE = re.compile(r"sender domain\s*:\s*(\S{3,253})", re.I)
_CONTENT_CATEGORIES = ("phishing", "malware", "fraud")


def is_auth_failure(fields: Fields) -> bool:
    ftype = first(fields, "feedback-type").lower()
    return ftype == "auth-failure" or (ftype in ("", "dmarc") and any(f in fields for f in _AUTH_FIELDS))


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    part, fields = feedback(msg, meta)
    if part is not None:
        if not is_auth_failure(fields):
            return None
        draft = _draft(first(fields, "version"), first(fields, "auth-failure") or "auth-failure")
        read_common(draft, msg, meta, part, fields)
        body = decode_transfer(" ".join(fields.get("dkim-canonicalized-body", [])).encode(), "base64")
        text = human_text(msg, stop=part) + "\n" + decode_charset(body[:16384], "utf-8")
        _content_category(draft, text, meta.subject)
        return draft
    text = meta.first_text
    if not _PLAIN_RE.search(meta.subject) and not ("dmarc" in text[:4096].lower() and _PLAIN_RE.search(text[:4096])):
        return None
    draft = _draft(None, "dmarc-plain-text")
    match = _LABELLED_IP_RE.search(text)
    draft.add_ips(indicators.find_ips(match.group(1) if match else meta.subject))
    domain = _LABELLED_DOMAIN_RE.search(text)
    draft.add_domains([domain.group(1) if domain else None])
    draft.set_observed(_after(text, "received date:"), "Received date")
    reported = embedded.reported_message(msg)
    if reported is not None:
        embedded.read_into(draft, reported, ips=True)
    draft.add_evidence(text[:4096])
    _content_category(draft, text, meta.subject)
    if not draft.source_ips:
        draft.warnings.append("no source IP found")
    incidents.single_event(draft)
    return draft


def _draft(version: str | None, label: str) -> Draft:
    return Draft(
        format="dmarc-failure",
        format_version=version or None,
        category="other",
        category_confidence=0.9,
        source_label=label,
        automated=True,
        reporter_kind="machine",
    )


def _content_category(draft: Draft, text: str, subject: str) -> None:
    category, confidence, scores = vocabulary.classify(text)
    if category in _CONTENT_CATEGORIES and scores.get(category, 0) >= 3:
        draft.category, draft.category_confidence = category, min(confidence, 0.7)
        draft.warnings.append(f"auth-failure report whose text describes {category}")


def _after(text: str, label: str) -> str | None:
    pos = text.lower().find(label)
    if pos == -1:
        return None
    return text[pos + len(label) :].split("\n", 1)[0].strip()
