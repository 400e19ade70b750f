"""Incidents of reports whose parser names one event (ARF, XARF) or a person's indicators (free text).

``single_event``: the report is one event: one incident with its own address, port, URL, domain,
mailbox and time (one more per further address, each with only its own address).
``per_indicator``: a person's complaint: one incident per offending indicator (URL, IP, domain,
mailbox), each with the text lines that name it as evidence (at most ``MAX_LINES`` lines).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ingest import indicators
from ingest.formats import dates
from ingest.formats.draft import Draft

MAX_LINES = 5
MAX_SCAN_LINES = 20_000


def single_event(draft: Draft, *, tag: str | None = None, evidence: str | None = None) -> None:
    """One incident for a one-event report (the draft's own indicators), more only for extra addresses."""
    ips = list(draft.source_ips)
    urls = list(draft.urls)
    ports = list(draft.source_ports)
    url = urls[0] if urls else None
    url_ip = indicators.url_ip(url) if url else None
    domain = next(iter(draft.domains), None)
    email = next(iter(draft.emails), None)
    text = draft.evidence if evidence is None else evidence
    label = tag if tag is not None else draft.source_label
    port = ports[0] if len(ports) == 1 else None
    first_ip = url_ip or (ips[0] if ips else None)
    draft.add_incident(
        ip=first_ip,
        port=port,
        observed_at=draft.observed_at,
        tag=label,
        url=url,
        domain=domain if not url else None,
        email=email,
        evidence=text,
    )
    for ip in ips:
        if ip != first_ip:
            draft.add_incident(ip=ip, observed_at=draft.observed_at, tag=label, evidence=_lines_naming(text, ip))
    for other in urls[1:]:
        draft.add_incident(url=other, observed_at=draft.observed_at, tag=label, evidence=_lines_naming(text, other))


def per_indicator(draft: Draft, text: str) -> None:
    """One incident per offending indicator of a person's complaint, with the lines naming it."""
    lines = text.split("\n", MAX_SCAN_LINES)[:MAX_SCAN_LINES]
    label = draft.source_label
    covered_ips, covered_domains = _url_incidents(draft, lines)
    for ip in draft.source_ips:
        if ip in covered_ips:
            continue
        own = _matching(lines, ip)
        port = next(iter(draft.source_ports)) if len(draft.source_ports) == 1 else None
        draft.add_incident(ip=ip, port=port, observed_at=_time(draft, own), tag=label, evidence=own)
    mail_domains = _mail_domains(draft.emails)
    for domain in draft.domains:
        key = domain.lower()
        if key in covered_domains or key in mail_domains:
            continue
        own = _matching(lines, domain)
        draft.add_incident(domain=domain, observed_at=_time(draft, own), tag=label, evidence=own)
    for address in draft.emails:
        own = _matching(lines, address)
        mailbox_domain = indicators.email_domain(address)
        draft.add_incident(email=address, domain=mailbox_domain, observed_at=_time(draft, own), tag=label, evidence=own)


def _url_incidents(draft: Draft, lines: list[str]) -> tuple[set[str], set[str]]:
    """One incident per URL; the IPs and (lower-case) hosts the URLs cover."""
    covered_ips: set[str] = set()
    covered_domains: set[str] = set()
    for url in draft.urls:
        ip = indicators.url_ip(url)
        host = indicators.url_host(url)
        if ip:
            covered_ips.add(ip)
        if host:
            covered_domains.add(host.lower())
        own = _matching(lines, url)
        draft.add_incident(ip=ip, observed_at=_time(draft, own), tag=draft.source_label, url=url, evidence=own)
    return covered_ips, covered_domains


def _mail_domains(emails: Iterable[str]) -> set[str]:
    """The (lower-case) domains of the mail addresses: covered by the addresses' own incidents."""
    return {domain.lower() for address in emails if (domain := indicators.email_domain(address))}


def _matching(lines: list[str], needle: str) -> str:
    out: list[str] = []
    for line in lines:
        if needle in line and _names(line, needle):
            out.append(line.strip()[:1024])
            if len(out) >= MAX_LINES:
                break
    return "\n".join(out)


def _names(line: str, needle: str) -> bool:
    """The line names the needle as a whole token (1.2.3.4 is not named by 11.2.3.45)."""
    pos = line.find(needle)
    while pos != -1:
        end = pos + len(needle)
        if (pos == 0 or not line[pos - 1].isalnum()) and (end == len(line) or not line[end].isalnum()):
            return True
        pos = line.find(needle, pos + 1)
    return False


def _lines_naming(text: str, needle: str) -> str:
    return _matching(text.split("\n", MAX_SCAN_LINES)[:MAX_SCAN_LINES], needle)


def _time(draft: Draft, evidence: str) -> datetime | None:
    """The incident's own time (first timestamp on its lines), else the report's."""
    if evidence:
        found, _ = dates.first_date_in(evidence)
        if found is not None:
            return found
    return draft.observed_at
