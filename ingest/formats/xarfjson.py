"""XARF JSON: v4 (flat, ``xarf_version``) and legacy Abusix v1-v3 (``Version``/``ReporterInfo``/``Report``).

Found as a bare JSON file, as the part following ``Feedback-Type: xarf`` in an ARF envelope, or as
an ``xarf.json`` / ``application/json`` attachment. JSON larger than ``MAX_JSON`` is not read;
nesting beyond Python's recursion limit is caught like any other decoding error.
"""

from __future__ import annotations

import json
from typing import Any

from ingest import indicators
from ingest.formats import incidents
from ingest.formats.arf import feedback, first
from ingest.formats.draft import Draft, MailMeta
from ingest.formats.mime import Part

MAX_JSON = 5 * 1024 * 1024

_V4_TYPES = {
    "infected_host": "malware",
    "botnet": "malware",
    "compromised_server": "intrusion",
    "phishing": "phishing",
    "malware": "malware",
    "fraud": "fraud",
    "csam": "illegal-content",
    "csem": "illegal-content",
    "exposed_data": "vulnerability",
    "brand_infringement": "copyright",
    "suspicious_registration": "fraud",
    "remote_compromise": "intrusion",
}
_V4_CATEGORIES = {
    "messaging": "spam",
    "connection": "intrusion",
    "copyright": "copyright",
    "vulnerability": "vulnerability",
    "infrastructure": "intrusion",
    "content": "other",
    "reputation": "other",
}
_THREATS = {
    "command_and_control": "malware",
    "malware": "malware",
    "botnet": "malware",
    "spam": "spam",
    "phishing": "phishing",
    "scanner": "intrusion",
    "brute_force": "intrusion",
}
_V3_TYPES = {
    "spam": "spam",
    "loginattack": "intrusion",
    "portscan": "intrusion",
    "dos": "intrusion",
    "ddos": "intrusion",
    "exploit": "intrusion",
    "malware": "malware",
    "webcrawler": "intrusion",
    "harassment": "other",
    "potentiallycompromisedaccount": "intrusion",
    "phishing": "phishing",
    "copyright": "copyright",
    "trademark": "copyright",
    "childabuse": "illegal-content",
    "botnet": "malware",
    "openservice": "vulnerability",
    "fraud": "fraud",
}


def load(data: bytes) -> dict[str, Any] | None:
    """The JSON object if it is an XARF report (any version), else None."""
    if len(data) > MAX_JSON:
        return None
    try:
        obj = json.loads(data.decode("utf-8-sig", "replace"))
    except (ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and ("xarf_version" in obj or ("Report" in obj and "ReporterInfo" in obj)):
        return obj
    return None


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    fb, fields = feedback(msg, meta)
    fb_version = None
    if fb is not None:
        if first(fields, "feedback-type").lower() != "xarf":
            return None
        fb_version = first(fields, "version")
    for part in msg.walk():
        if part.children or part is fb:
            continue
        if part.ctype in ("application/json", "text/json") or part.filename.lower().endswith(".json"):
            obj = load(part.decoded())
            if obj is not None:
                draft = build(obj)
                if fb is not None:
                    draft.warnings.append(f"XARF carried in ARF (Feedback-Type: xarf, Version {fb_version})")
                return draft
    if fb is not None:
        draft = Draft(format="xarf-v4", format_version=fb_version, automated=True, reporter_kind="machine")
        draft.warnings.append("Feedback-Type xarf without a readable JSON part")
        return draft
    return None


def build(obj: dict[str, Any]) -> Draft:
    """Map an XARF JSON object (v4 or legacy v1-v3) onto a draft."""
    draft = Draft(format="xarf-v4", automated=True, reporter_kind="machine")
    if "xarf_version" in obj:
        _v4(draft, obj)
    else:
        _legacy(draft, obj)
    draft.add_evidence(json.dumps(_without_payloads(obj), ensure_ascii=False)[:4096])
    incidents.single_event(draft)
    return draft


def _v4(draft: Draft, obj: dict[str, Any]) -> None:
    draft.format_version = _s(obj.get("xarf_version")) or None
    category, kind = _s(obj.get("category")).lower(), _s(obj.get("type")).lower()
    draft.source_label = f"{category}/{kind}"
    mapped = _V4_TYPES.get(kind) or _V4_CATEGORIES.get(category, "other")
    if category == "reputation":
        mapped = _THREATS.get(_s(obj.get("threat_type")).lower(), "other")
    draft.category, draft.category_confidence = mapped, 0.95
    reporter = _obj(obj.get("reporter"))
    draft.reporter = indicators.extract_address(_s(reporter.get("contact"))) or None
    draft.reporter_name = _s(reporter.get("org")) or None
    _source(draft, _s(obj.get("source_identifier")))
    draft.add_port(obj.get("source_port"))
    draft.add_urls([_s(obj.get(k)) for k in ("url", "infringing_url", "source_url") if obj.get(k)])
    draft.add_domains([_s(obj.get("domain")) or None])
    smtp_from = indicators.extract_address(_s(obj.get("smtp_from")))
    draft.add_domains([indicators.email_domain(smtp_from)])
    draft.add_emails([smtp_from])
    draft.set_observed(_s(obj.get("timestamp") or obj.get("first_seen")), "XARF timestamp")


def _legacy(draft: Draft, obj: dict[str, Any]) -> None:
    draft.format_version = _s(obj.get("Version")) or None
    info, report = _obj(obj.get("ReporterInfo")), _obj(obj.get("Report"))
    rclass, rtype = _s(report.get("ReportClass")), _s(report.get("ReportType"))
    draft.source_label = f"{rclass}/{rtype}"
    draft.category = _V3_TYPES.get(rtype.lower().replace("_", ""), "other")
    draft.category_confidence = 0.95 if rtype.lower() in _V3_TYPES else 0.5
    email = info.get("ReporterOrgEmail") or info.get("ReporterContactEmail")
    draft.reporter = indicators.extract_address(_s(email)) or None
    draft.reporter_name = _s(info.get("ReporterOrg")) or None
    _source(draft, _s(report.get("SourceIp")))
    draft.add_port(report.get("SourcePort"))
    if report.get("SourceUrl"):
        draft.add_urls([_s(report.get("SourceUrl"))])
    mail_from = indicators.extract_address(_s(report.get("SmtpMailFromAddress")))
    draft.add_domains([indicators.email_domain(mail_from)])
    draft.add_emails([mail_from])
    draft.set_observed(_s(report.get("Date") or report.get("FirstSeen")), "XARF Date")


def _source(draft: Draft, value: str) -> None:
    if indicators.normalize_ip(value):
        draft.add_ips([value])
    elif "://" in value:
        draft.add_urls([value])
    elif value:
        draft.add_domains([value])


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: object) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _without_payloads(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for key in ("evidence", "Samples", "Sample"):
        if key in out:
            out[key] = "[omitted]"
    return out
