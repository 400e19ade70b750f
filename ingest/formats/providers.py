"""Provider templates that become format ``other``: fixed layouts from known kinds of senders.

Google Safe Browsing XML, ACNS copyright notices, CSV feeds from CERTs and sharing platforms
(AbuseHub, PROKI, ...), key-value report attachments (Cyscon), and automatic mail that is not a
report at all (unsubscribe requests, auto-replies). XML is read with bounded regexes over the
first 256 KB (no XML parser, no entity expansion).
"""

from __future__ import annotations

import re

from ingest import indicators, vocabulary
from ingest.formats import archive, csvrows, incidents
from ingest.formats.draft import Draft, MailMeta
from ingest.formats.mime import Part

_SCAN = 256 * 1024
_GSB_TYPE_RE = re.compile(r'\s*type="(\d{1,2})"')
_GSB_URL_RE = re.compile(r'<url_info\s+url="([^"]{1,2048})"(?:\s+ip="([^"]{1,64})")?')
_GSB_TYPES = {"1": "phishing", "2": "malware", "0": "intrusion"}
_ACNS_RE = re.compile(r"<Infringement\b[^>]{0,1000}acns", re.I)
_XML_FIELD_RE = re.compile(r"<(IP_Address|Port|TimeStamp|URL|Type)>\s*([^<]{1,2048}?)\s*</\1>")
_KV_LINE_RE = re.compile(r"^([a-z][a-z0-9_]{0,30}):[ \t]+(\S.{0,2047})$", re.M)
_NOT_REPORT_SUBJECTS = re.compile(
    r"^(?:unsubscribe|désabonnement|desabonnement|abbestellen|darse de baja|out of office|"
    r"automatic reply|réponse automatique|abwesenheitsnotiz|respuesta automática)\b",
    re.I,
)


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    leaves = [p for p in msg.walk() if not p.children and p.ctype.startswith(("text/", "application/xml"))]
    if any(b"<notification_message" in p.decoded()[:_SCAN] or b"<Infringement" in p.decoded()[:_SCAN] for p in leaves):
        text = "\n".join(p.text()[:_SCAN] for p in leaves)
        if "<notification_message" in text:
            return _safe_browsing(text)
        if _ACNS_RE.search(text):
            return _acns(text)
    draft = _csv_feed(msg, meta) or _key_value(msg, meta)
    if draft is not None:
        return draft
    if msg.get("x-apple-unsubscribe") is not None or _NOT_REPORT_SUBJECTS.match(meta.subject):
        draft = Draft(format="other", category="other", category_confidence=0.8, automated=True)
        draft.source_label = "not-a-report"
        draft.warnings.append("automatic mail that is not an abuse report (unsubscribe/auto-reply)")
        return draft
    return None


def _safe_browsing(text: str) -> Draft:
    draft = Draft(format="other", source_label="google-safe-browsing", automated=True, reporter_kind="machine")
    found: set[str] = set()
    events: list[tuple[str, str | None, str | None, str]] = []
    for chunk in text.split("<list")[1:]:
        kind = _GSB_TYPE_RE.match(chunk)
        found.add(kind.group(1) if kind else "")
        body = chunk.split("</list>", 1)[0]
        for match in _GSB_URL_RE.finditer(body):
            url, ip = match.groups()
            draft.add_urls([url])
            draft.add_ips([ip] if ip else [])
            host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
            draft.add_ips([host] if indicators.normalize_ip(host) else [])
            line_end = body.find(">", match.end())
            events.append((url, ip, _GSB_TYPES.get(kind.group(1) if kind else ""), body[match.start() : line_end + 1]))
    draft.category = next((c for t, c in _GSB_TYPES.items() if t in found), "other")
    draft.category_confidence = 0.9
    date = re.search(r'<notification_message[^>]{0,500}date="([^"]{4,40})"', text)
    draft.set_observed(date.group(1) if date else None, "notification date")
    for url, ip, category, line in events:
        draft.add_incident(
            ip=ip, url=url, observed_at=draft.observed_at, tag=draft.source_label, category=category, evidence=line
        )
    draft.add_evidence(text[:4096])
    return draft


def _acns(text: str) -> Draft:
    draft = Draft(
        format="other",
        source_label="acns",
        category="copyright",
        category_confidence=0.95,
        automated=True,
        reporter_kind="machine",
    )
    start = _ACNS_RE.search(text)
    xml = text[start.start() if start else 0 :]
    for name, value in _XML_FIELD_RE.findall(xml[:_SCAN]):
        if name == "IP_Address":
            draft.add_ips(indicators.find_ips(value))
        elif name == "Port":
            draft.add_port(value)
        elif name == "TimeStamp":
            draft.set_observed(value, "ACNS TimeStamp")
        elif name == "URL" and "://" in value:
            draft.add_urls([value])
        elif name == "Type" and draft.source_label == "acns":
            draft.source_label = f"acns/{value}"
    draft.add_evidence(xml[:4096])
    incidents.single_event(draft)
    return draft


def _csv_feed(msg: Part, meta: MailMeta) -> Draft | None:
    """CSV attachments (plain or zipped) with an IP column; category from the rows' vocabulary."""
    draft = Draft(format="other", automated=True, reporter_kind="machine")
    words: list[str] = []
    found = False
    for part in msg.walk():
        name = part.filename.lower()
        if part.children or not (name.endswith((".csv", ".zip")) or part.ctype in ("text/csv", "application/zip")):
            continue
        for file_name, text in archive.csv_files(part.filename or "attachment.csv", part.decoded(), draft.warnings):
            found = True
            draft.source_label = draft.source_label or file_name
            for row in archive.csv_rows(text, draft.warnings):  # lazy: stops after the first rows
                if len(words) >= 200:
                    break
                words.extend(v for k, v in row.items() if "type" in k or "feed" in k or "infection" in k)
            csvrows.read(draft, text, tag=file_name, row_category=_row_category)
            draft.add_evidence(text[:2048])
    if not found:
        return None
    category, confidence, _ = vocabulary.classify(" ".join(words) + "\n" + meta.first_text, meta.subject)
    draft.category, draft.category_confidence = category, min(confidence + 0.1, 0.85)
    return draft


def _row_category(tag: str) -> str | None:
    category, _, _ = vocabulary.classify(tag.replace("-", " ").replace("_", " "))
    return None if category == "other" else category


def _key_value(msg: Part, meta: MailMeta) -> Draft | None:
    """A 'name-report.txt'-style attachment of lower-case 'key: value' lines naming ip/uri/domain."""
    for part in msg.walk():
        if part.children or not part.is_attachment or not part.ctype.startswith("text/"):
            continue
        fields = {k: v.strip() for k, v in _KV_LINE_RE.findall(part.text()[:65536])}
        if not ({"ip", "uri", "url"} & fields.keys()):
            continue
        draft = Draft(format="other", automated=True, reporter_kind="machine", source_label=part.filename or None)
        draft.add_ips(indicators.find_ips(fields.get("ip", "")))
        draft.add_urls([fields[k] for k in ("uri", "url") if "://" in fields.get(k, "")])
        draft.add_domains([fields.get("domain")])
        draft.set_observed(fields.get("first_seen") or fields.get("last_seen"), "first_seen")
        label = " ".join([part.filename.replace("-", " ").replace("_", " "), fields.get("signature", "")])
        category, confidence, _ = vocabulary.classify(label + "\n" + meta.first_text, meta.subject)
        draft.category, draft.category_confidence = category, confidence
        draft.add_evidence(part.text()[:4096])
        incidents.single_event(draft)
        return draft
    return None
