"""Incidents of a report (pure): what each one asks the inventory, and the part of a report one customer may see."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from core.report import AbuseReport, Incident

EXCERPT_ROWS = 20  # incidents quoted in the mail itself; more go to the CSV attachment
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")


def host_of(url: str) -> str | None:
    """The host of a URL (a name in lower case, or an address literal without brackets)."""
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def address(text: str | None) -> str | None:
    """The canonical form of an IP address, or None when the text is not one."""
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]")).compressed
    except ValueError:
        return None


def incidents_of(report: AbuseReport) -> list[Incident]:
    """The report's incidents; a report without any (schema v1) has one per indicator it names."""
    if report.incidents:
        return list(report.incidents)
    at = report.observed_at
    out = [Incident(ip=ip, observed_at=at, tag=report.source_label) for ip in report.source_ips]
    url_hosts = set()
    for url in report.urls:
        host = host_of(url)
        url_hosts.add(host)
        out.append(Incident(url=url, domain=None if address(host) else host, ip=address(host), observed_at=at))
    out += [Incident(domain=d.lower(), observed_at=at) for d in report.domains if d.lower() not in url_hosts]
    out += [Incident(email=e.lower(), observed_at=at) for e in report.emails]
    return out


def lookups(incident: Incident) -> list[tuple[str, str]]:
    """What to ask the inventory about one incident, most telling first: (kind, value) with kind ip/domain/mailbox."""
    asks: list[tuple[str, str]] = []
    if ip := address(incident.ip):
        asks.append(("ip", ip))
    host = host_of(incident.url) if incident.url else None
    if host and (ip := address(host)) and ("ip", ip) not in asks:
        asks.append(("ip", ip))
    for name in (incident.domain, None if address(host) else host):
        if name and ("domain", name.lower()) not in asks:
            asks.append(("domain", name.lower()))
    if incident.email and "@" in incident.email:
        asks.append(("mailbox", incident.email.lower()))
    return asks


def incident_time(incident: Incident, fallback: datetime) -> datetime:
    """When an incident happened: its own time if plausible (not in the future), else the report's."""
    at = incident.observed_at
    if at is None or at.tzinfo is None or at > fallback + timedelta(hours=1):
        return fallback
    return at


def scrub_foreign(text: str, keep: Iterable[str]) -> str:
    """Replace every IP address in `text` that is not in `keep` (other customers', third parties')."""
    kept = {a for a in (address(k) for k in keep) if a}

    def sub(match: re.Match[str]) -> str:
        found = address(match.group(0))
        return match.group(0) if found is None or found in kept else "[other address]"

    return _IPV6.sub(sub, _IPV4.sub(sub, text))


def part_for(report: AbuseReport, mine: Sequence[Incident], *, whole: bool) -> AbuseReport:
    """The part of a report that concerns one customer: their incidents and indicators only.

    `whole` (the report concerns this customer alone, nothing else in it): the report's own text stays as evidence.
    Otherwise the evidence is their incidents' own lines, with any other address replaced. Built from the
    customer's incidents alone (never a pass over the whole report per customer: bulk feeds have thousands).
    """
    ips: dict[str, None] = {}
    for i in mine:
        for found in (address(i.ip), address(host_of(i.url)) if i.url else None):
            if found:
                ips[found] = None
    urls = list(dict.fromkeys(i.url for i in mine if i.url))
    domains = list(dict.fromkeys(i.domain for i in mine if i.domain))
    emails = list(dict.fromkeys(i.email for i in mine if i.email))
    if whole:
        evidence = report.evidence
    else:
        lines = [i.evidence for i in mine[:EXCERPT_ROWS] if i.evidence]
        evidence = scrub_foreign("\n".join(dict.fromkeys(lines)), ips)[:4000]
    return report.model_copy(
        update={
            "source_ips": list(ips),
            "urls": urls,
            "domains": domains,
            "emails": emails,
            "evidence": evidence,
            "incidents": list(mine),
        }
    )
