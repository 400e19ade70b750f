"""X-ARF 0.1 / 0.2: YAML report part (report.txt) in a multipart/mixed mail, or a bare report file.

Tolerant: missing X-ARF/X-XARF header or Version, keys in any order and any case, two spaces
after colons, ``Ports`` for ``Port``, masked sources (``91.78.17.xxx``, ``XXX``) which are not
listed as IPs. Only the first 64 KB of the report part are read.
"""

from __future__ import annotations

import re

from ingest import indicators
from ingest.formats import incidents
from ingest.formats.draft import Draft, MailMeta, human_text
from ingest.formats.mime import Part

_LINE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,40})\s*:[ \t]*(.*?)\s*$")
_REPORT_TYPES = {
    "login-attack": "intrusion",
    "bruteforce": "intrusion",
    "brute-force": "intrusion",
    "portscan": "intrusion",
    "port-scan": "intrusion",
    "ddos": "intrusion",
    "dos": "intrusion",
    "exploit": "intrusion",
    "hacking": "intrusion",
    "intrusion": "intrusion",
    "sql-injection": "intrusion",
    "malware-attack": "malware",
    "malware": "malware",
    "botnet": "malware",
    "virus": "malware",
    "phishing": "phishing",
    "fraud": "fraud",
    "scam": "fraud",
    "spam": "spam",
    "regbot": "spam",
    "comment-spam": "spam",
    "uce": "spam",
    "harvesting": "other",
    "info": "other",
    "copyright": "copyright",
    "child-abuse": "illegal-content",
    "vulnerability": "vulnerability",
    "open-service": "vulnerability",
}
_CATEGORY_DEFAULTS = {"fraud": "fraud", "abuse": "other", "info": "other", "auth": "other", "private": "other"}
_MAX_REPORT = 64 * 1024
_IP_HOST_RE = re.compile(r"([0-9A-Fa-f.:]{3,45})\*? \(([A-Za-z0-9][A-Za-z0-9.-]{2,252})\)")


def read_yaml_fields(text: str) -> dict[str, str]:
    """Flat 'Key: value' YAML as written by X-ARF senders (lower-case keys, quotes removed)."""
    fields: dict[str, str] = {}
    for line in text[:_MAX_REPORT].splitlines():
        match = _LINE_RE.match(line)
        if match:
            fields.setdefault(match.group(1).lower(), match.group(2).strip("'\""))
    return fields


def is_report(fields: dict[str, str]) -> bool:
    return (
        "reported-from" in fields
        and ("report-type" in fields or "category" in fields)
        and ("source" in fields or "source-type" in fields)
    )


def find_report_part(msg: Part) -> Part | None:
    """The YAML report part: named report.txt, or any text part holding X-ARF fields."""
    for part in msg.walk():
        if part.children or not part.ctype.startswith("text/"):
            continue
        name = part.filename.lower()
        if name.endswith("report.txt") or name.endswith(".yaml") or part.is_attachment:
            head = part.decoded()[:4096]
            if b"Reported-From" in head or b"reported-from" in head.lower():
                return part
    return None


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    marked = msg.get("x-xarf") is not None or msg.get("x-arf") is not None
    part = find_report_part(msg)
    fields = read_yaml_fields(part.text()) if part is not None else {}
    if part is None:
        # a bare report file reads as a header block, or as body text when it starts with '---'
        if msg.get("reported-from") is not None:
            fields = dict(reversed(msg.headers))
        elif not msg.block.strip():
            fields = read_yaml_fields(msg.text())
        part = msg
        if not is_report(fields) and marked:
            body = next((p for p in msg.walk() if p.ctype == "text/plain" and not p.children), None)
            if body is not None:
                fields, part = read_yaml_fields(body.text()), body
    if not is_report(fields):
        return None
    return build(fields, msg, meta, part)


def build(fields: dict[str, str], msg: Part, meta: MailMeta, part: Part) -> Draft:
    draft = Draft(format="xarf-v0", automated=True, reporter_kind="machine")
    draft.format_version = fields.get("version") or None
    report_type = fields.get("report-type", "").lower()
    category = fields.get("category", "").lower()
    draft.source_label = "/".join(x for x in (category, report_type) if x) or None
    draft.category = _REPORT_TYPES.get(report_type) or _CATEGORY_DEFAULTS.get(category, "other")
    draft.category_confidence = 0.95 if report_type in _REPORT_TYPES else 0.6
    draft.reporter = indicators.extract_address(fields.get("reported-from")) or None
    hosting = _add_source(draft, fields)
    _add_ports(draft, fields, hosting)
    _add_from_text(draft, msg, meta, part)
    draft.set_observed(fields.get("date"), "X-ARF Date")
    draft.add_evidence("\n".join(f"{k}: {v}" for k, v in fields.items()))
    for log in msg.walk():
        if log is not part and log.is_attachment and log.ctype == "text/plain" and not log.children:
            draft.add_evidence(log.text()[:4096])
            break
    incidents.single_event(draft)
    return draft


def _add_source(draft: Draft, fields: dict[str, str]) -> bool:
    """The Source (a URL or an IP), download links and the domain; whether the source hosts content."""
    source = fields.get("source", "")
    source_type = fields.get("source-type", "").lower()
    if source_type == "uri" or "://" in source:
        draft.add_urls([source])
    else:
        ips = indicators.find_ips(source)
        draft.add_ips(ips)
        if not ips and source:
            draft.warnings.append(f"X-ARF Source {source!r} is masked or not an IP; not listed")
    for key in ("download-link", "url"):
        if "://" in fields.get(key, ""):
            draft.add_urls([fields[key]])
    draft.add_domains([fields.get("domain")])
    return source_type == "uri" or "://" in source or "download-link" in fields


def _add_ports(draft: Draft, fields: dict[str, str], hosting: bool) -> None:
    # Port/Ports name the service: on the offending host when it hosts content (uri source,
    # download links), on the victim for attacks (login-attack on 22): only the former is a source port.
    for key in ("source-port", "port", "ports", "download-port"):
        values = [v for v in fields.get(key, "").replace(";", ",").split(",") if v.strip()]
        if key == "source-port" or hosting:
            for value in values:
                draft.add_port(value)
        elif values:
            draft.warnings.append(f"X-ARF {key} {','.join(values)} is the attacked service port; not a source port")


def _add_from_text(draft: Draft, msg: Part, meta: MailMeta, part: Part) -> None:
    """What the mail's own text adds: a source IP the fields lack, the Subject's URL, the host named by an IP."""
    if not draft.source_ips and meta.has_headers:
        text = human_text(msg, stop=part) + "\n" + meta.subject
        draft.add_ips(indicators.find_ips(text, skip_loopback=True))
        if draft.source_ips:
            draft.warnings.append("source IP taken from the report text")
    for url in indicators.find_urls(indicators.refang(meta.subject)):
        # the Subject's URL when the fields name no URL or name its host (not another host of the site)
        host = indicators.url_host(url)
        if not draft.urls or (host and host in draft.domains) or indicators.url_ip(url) in draft.source_ips:
            draft.add_urls([url])
    if draft.source_ips and meta.has_headers:
        for ip, host in _IP_HOST_RE.findall(human_text(msg, stop=part)[:65536]):
            if indicators.normalize_ip(ip) in draft.source_ips:
                draft.add_domains([host])
