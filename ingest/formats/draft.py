"""The mutable draft a format parser fills, and the facts about the abuse mail itself (MailMeta)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.report import AbuseReport, Envelope, Incident
from ingest import indicators
from ingest.formats import dates
from ingest.formats.decoding import decode_words
from ingest.formats.mime import Part

MAX_EVIDENCE = 4096
MAX_SOURCE_IPS = 200_000
MAX_LIST = 1000
MAX_RECEIVED = 30
MAX_INCIDENTS = 200_000
MAX_INCIDENT_EVIDENCE = 2048
_INCIDENT_FIELDS = set(Incident.model_fields)


@dataclass
class Draft:
    """What a format parser found; ``to_report`` turns it into an AbuseReport."""

    format: str = "freetext"
    format_version: str | None = None
    category: str = "other"
    category_confidence: float = 0.0
    source_label: str | None = None
    source_ips: dict[str, None] = field(default_factory=dict)
    source_ports: dict[int, None] = field(default_factory=dict)
    domains: dict[str, None] = field(default_factory=dict)
    urls: dict[str, None] = field(default_factory=dict)
    emails: dict[str, None] = field(default_factory=dict)
    reporter: str | None = None
    reporter_name: str | None = None
    reporter_kind: str = "unknown"
    automated: bool = False
    observed_at: datetime | None = None
    reported_message_id: str | None = None
    reported_received: list[str] = field(default_factory=list)
    evidence: str = ""
    warnings: list[str] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    incidents_cut: bool = False
    strings: dict[str, str] = field(default_factory=dict)

    def add_ips(self, ips: list[str] | tuple[str, ...]) -> None:
        for ip in ips:
            norm = indicators.normalize_ip(ip)
            if norm and len(self.source_ips) < MAX_SOURCE_IPS:
                self.source_ips[norm] = None

    def add_ip(self, value: str) -> str | None:
        """Add one address; return its canonical form (None when it is not an address)."""
        norm = indicators.normalize_ip(value) if value else None
        if norm and len(self.source_ips) < MAX_SOURCE_IPS:
            self.source_ips[norm] = None
        return norm

    def add_port(self, value: object) -> None:
        port = _port(value)
        if port is not None and len(self.source_ports) < MAX_LIST:
            self.source_ports[port] = None

    def add_urls(self, urls: list[str]) -> None:
        for url in urls:
            url = indicators.clean_url(url.strip())
            if "://" in url and len(self.urls) < MAX_LIST:
                self.urls[url] = None
                host_ip = indicators.url_ip(url)
                if host_ip:  # http://203.0.113.10/login: the address serves the content
                    self.add_ips([host_ip])
                else:
                    self.add_domains([indicators.url_host(url) or ""])

    def add_domains(self, domains: list[str | None]) -> None:
        for domain in domains:
            host = indicators.clean_domain(domain or "")
            if host and len(self.domains) < MAX_LIST:
                self.domains[host] = None

    def add_emails(self, emails: list[str | None]) -> None:
        for address in emails:
            if address and "@" in address and len(self.emails) < MAX_LIST:
                self.emails[address.strip("<> ")] = None

    def add_incident(
        self,
        *,
        ip: str | None = None,
        port: object = None,
        protocol: str | None = None,
        observed_at: datetime | None = None,
        tag: str | None = None,
        category: str | None = None,
        url: str | None = None,
        domain: str | None = None,
        email: str | None = None,
        evidence: str = "",
    ) -> None:
        """One incident, with only what its own row/event says (values cleaned, evidence bounded)."""
        if len(self.incidents) >= MAX_INCIDENTS:
            if not self.incidents_cut:
                self.incidents_cut = True
                self.warnings.append(f"more than {MAX_INCIDENTS} incidents; the rest are not listed")
            return
        norm_ip = indicators.normalize_ip(ip) if ip else None
        clean = indicators.clean_url(url.strip()) if url and "://" in url else None
        if clean and norm_ip is None:
            norm_ip = indicators.url_ip(clean)
        host = indicators.clean_domain(domain) if domain else None
        if host is None and clean:
            host = indicators.url_host(clean)
        mailbox = email.strip("<> ") if email and "@" in email else None
        if not (norm_ip or clean or host or mailbox):
            return
        if len(evidence) > MAX_INCIDENT_EVIDENCE:
            evidence = evidence[: MAX_INCIDENT_EVIDENCE - 6] + "\n[...]"
        incident = Incident(
            ip=norm_ip,
            port=_port(port),
            protocol=self._intern((protocol or "").strip().lower()[:16]),
            observed_at=observed_at,
            tag=self._intern((tag or "").strip()[:128]),
            category=category if category and category != "other" else None,
            url=clean,
            domain=host,
            email=mailbox,
            evidence=evidence,
        )
        # one shared fields-set instead of a 700-byte set per incident (100,000-row feeds)
        object.__setattr__(incident, "__pydantic_fields_set__", _INCIDENT_FIELDS)
        self.incidents.append(incident)

    def _intern(self, value: str) -> str | None:
        """One string object per distinct tag/protocol value (they repeat on every row of a feed)."""
        if not value:
            return None
        return self.strings.setdefault(value, value) if len(self.strings) < MAX_LIST else value

    def set_observed(self, value: str | None, label: str = "date") -> None:
        if self.observed_at is not None:
            return
        parsed, assumed = dates.parse_date(value)
        if parsed is not None:
            self.observed_at = parsed
            if assumed:
                self.warnings.append(f"{label} has no time zone; UTC assumed")

    def add_evidence(self, text: str) -> None:
        """Append an excerpt; the whole evidence stays within MAX_EVIDENCE bytes (UTF-8)."""
        chunk = text.strip()
        used = len(self.evidence.encode("utf-8"))
        room = MAX_EVIDENCE - used - (1 if used else 0)
        if room <= 80 or not chunk:
            return
        data = chunk.encode("utf-8")
        if len(data) > room:
            chunk = data[: room - 6].decode("utf-8", "ignore") + "\n[...]"
        self.evidence = f"{self.evidence}\n{chunk}" if self.evidence else chunk


def _port(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 65536 else None
    try:
        port = int(str(value).strip().split()[0].split(",")[0])
    except (ValueError, IndexError):
        return None
    return port if 0 < port < 65536 else None


@dataclass
class MailMeta:
    """Facts about the abuse mail itself: subject, sender, ticket wrappers, automation signals."""

    msg: Part
    subject: str = ""
    from_address: str | None = None
    from_name: str | None = None
    reporter: str | None = None
    reporter_name: str | None = None
    message_id: str | None = None
    automated: bool = False
    has_headers: bool = True
    cache: dict[str, Any] = field(default_factory=dict)  # per-mail results shared between families

    @classmethod
    def read(cls, msg: Part) -> MailMeta:
        meta = cls(msg=msg, has_headers=bool(msg.block.strip()))
        meta.subject = " ".join(decode_words(msg.get("subject") or "").split())[:998]
        raw_from = decode_words(msg.get("from") or msg.get("resent-from") or msg.get("sender") or "")
        meta.from_address = indicators.extract_address(raw_from)
        meta.from_name = _display_name(raw_from)
        meta.reporter, meta.reporter_name = meta.from_address, meta.from_name
        originator = indicators.extract_address(msg.get("x-rt-originator"))
        if originator and (" via rt" in raw_from.lower() or not meta.from_address):
            meta.reporter, meta.reporter_name = originator, None
        message_id = (msg.get("message-id") or "").strip()
        meta.message_id = message_id or None
        meta.automated = _automated(msg)
        return meta

    def reporter_domain(self) -> str | None:
        return indicators.email_domain(self.reporter)

    @property
    def first_text(self) -> str:
        """The first human-readable text part of the mail (cached)."""
        if "first_text" not in self.cache:
            self.cache["first_text"] = human_text(self.msg)
        text: str = self.cache["first_text"]
        return text


def human_text(msg: Part, stop: Part | None = None) -> str:
    """Text of the human-readable part(s) before the machine part (or the first text part)."""
    chunks: list[str] = []
    for part in msg.walk():
        if part is stop:
            break
        if part.ctype in ("text/plain", "text/html") and not part.is_attachment and not part.children:
            chunks.append(part.text()[:16384])
            if stop is None:
                break
    return "\n".join(chunks)


def _display_name(value: str) -> str | None:
    if "<" not in value:
        return None
    name = value[: value.rfind("<")].strip().strip('"').strip()
    return name or None


def _automated(msg: Part) -> bool:
    auto = (msg.get("auto-submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    if (msg.get("precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return True
    if msg.get("list-id") is not None:
        return True
    return_path = msg.get("return-path")
    return return_path is not None and return_path.strip() in ("<>", "")


def to_report(
    draft: Draft, meta: MailMeta | None, language: str | None, envelope: Envelope | None, report_id: str
) -> AbuseReport:
    """Assemble the AbuseReport (validated by pydantic); ``meta`` is None for bare files."""
    automated = draft.automated or (meta.automated if meta else False)
    if envelope is not None and envelope.mail_from.strip() in ("", "<>"):
        automated = True
    fields: dict[str, Any] = {
        "report_id": report_id,
        "format": draft.format,
        "format_version": draft.format_version,
        "category": draft.category,
        "category_confidence": max(0.0, min(1.0, draft.category_confidence)),
        "source_label": draft.source_label,
        "source_ips": list(draft.source_ips),
        "source_ports": list(draft.source_ports),
        "domains": list(draft.domains),
        "urls": list(draft.urls),
        "emails": list(draft.emails),
        "reporter": draft.reporter if draft.reporter else (meta.reporter if meta else None),
        "reporter_name": draft.reporter_name or (meta.reporter_name if meta else None),
        "reporter_kind": draft.reporter_kind,
        "automated": automated,
        "subject": meta.subject if meta else "",
        "message_id": meta.message_id if meta else None,
        "reported_message_id": draft.reported_message_id,
        "reported_received": draft.reported_received[:MAX_RECEIVED],
        "observed_at": draft.observed_at,
        "language": language,
        "evidence": draft.evidence,
        "parse_warnings": draft.warnings[:50],
        "incidents": draft.incidents,
    }
    if envelope is not None:
        fields["envelope"] = envelope
        fields["received_at"] = envelope.received_at
    return AbuseReport(**fields)
