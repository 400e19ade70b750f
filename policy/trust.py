"""Who is believed (pure): trusted reporters by exact identity and format, authorities, replies, Received headers.

A trusted reporter is an exact identity (its sender addresses, or DKIM d= domains only it signs with)
*and* the formats it sends: a person writing from a mailbox provider is a person, and a CERT's analyst
writing a free-text mail is not the CERT's feed. "Authenticated" means an aligned DKIM signature of the
header From (DMARC relaxed alignment over the Public Suffix List) or an SPF pass for an envelope domain
aligned with it; nothing else a sender writes into a mail proves anything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from core import domains
from core.report import AbuseReport
from core.settings import Authority, TrustConfig, TrustedReporter
from policy.model import EvidenceCheck

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Identity:
    """How a report matches one trusted-reporter entry: it claims to be it; `proven` if the mail proves it."""

    entry: TrustedReporter
    proven: bool
    how: str


def author_domain(report: AbuseReport) -> str | None:
    """The header From domain: as authenticated by ingest when it checked, else the reporter's domain."""
    if report.auth.checked:
        return domains.normalize_domain(report.auth.from_domain) or None
    return domains.domain_of(report.reporter)


def from_authenticated(report: AbuseReport) -> bool:
    """The header From domain is proven: an aligned DKIM pass, or SPF pass for an aligned envelope domain."""
    author = author_domain(report)
    if not report.auth.checked or not author:
        return False
    if report.auth.dkim_aligned and any(domains.aligned(d, author) for d in report.auth.dkim_pass):
        return True
    envelope = domains.domain_of(report.envelope.mail_from)
    return report.auth.spf == "pass" and domains.aligned(envelope, author)


def _reporter_is_author(report: AbuseReport) -> bool:
    """The reporter address is the header From address (not, say, a ticket system's X-RT-Originator)."""
    author = author_domain(report)
    return bool(author) and domains.domain_of(report.reporter) == author


def identity_of(report: AbuseReport, entry: TrustedReporter) -> Identity | None:
    """Whether the report claims to come from `entry` (exact address, exclusive DKIM d=, or listed domain)."""
    signed = {domains.normalize_domain(d) for d in report.auth.dkim_pass}
    if signed & set(entry.dkim_domains):
        return Identity(entry, True, "signed by " + ", ".join(sorted(signed & set(entry.dkim_domains))))
    authenticated = from_authenticated(report)
    reporter = (report.reporter or "").strip().lower()
    if reporter and reporter in entry.addresses and _reporter_is_author(report):
        return Identity(entry, authenticated, f"sent from {reporter}")
    author = author_domain(report)
    if author and not domains.is_mailbox_provider(author):
        for domain in entry.domains:
            if author == domain or author.endswith("." + domain):
                return Identity(entry, authenticated, f"sent from the domain {domain}")
    claimed = {domains.normalize_domain(d) for d in report.auth.dkim_fail} | {author or ""}
    if claimed & set(entry.dkim_domains):
        return Identity(entry, False, "claims a signature it does not carry")
    return None


def trusted_reporter(report: AbuseReport, trust: TrustConfig) -> tuple[str | None, bool]:
    """(name of the trusted-reporter entry the report matches, whether the mail proves it).

    A match needs the entry's identity and one of its formats. A proven match wins over a claimed one;
    with `require_authentication = false` a claim is taken as proof (tests, closed networks).
    """
    claimed: str | None = None
    for entry in trust.reporters:
        if report.format not in entry.accepted_formats:
            continue
        found = identity_of(report, entry)
        if found is None:
            continue
        if found.proven or not trust.require_authentication:
            return entry.name, True
        claimed = claimed or entry.name
    return claimed, False


def authority_of(report: AbuseReport, authorities: list[Authority]) -> Authority | None:
    """The authority an order comes from: authenticated mail from its domains, or an order entered by ops."""
    if report.reporter_kind == "internal" and (report.source_label or "").startswith("authority-order:"):
        name = (report.source_label or "").split(":", 1)[1]
        return next((a for a in authorities if a.name == name), None)
    author = author_domain(report)
    if not author or not from_authenticated(report) or domains.is_mailbox_provider(author):
        return None
    for authority in authorities:
        for domain in (domains.normalize_domain(d) for d in authority.domains):
            if author == domain or author.endswith("." + domain):
                return authority
    return None


def may_join_case(report: AbuseReport, case_reporter: str | None) -> bool:
    """A reply quoting a case reference joins that case only when it comes from the case's reporter.

    Either the header From *and* the envelope sender are the case's reporter, or the From is the reporter
    and authenticated (aligned DKIM), or the From is authenticated for the reporter's own organization
    (a colleague; never for a mailbox provider's domain, where anybody has an address). Anything else —
    a stranger quoting the reference — is a fresh report.
    """
    if not case_reporter or not report.reporter:
        return False
    same_from = domains.same_address(report.reporter, case_reporter)
    authenticated = from_authenticated(report) and _reporter_is_author(report)
    if same_from and (domains.same_address(report.envelope.mail_from, case_reporter) or authenticated):
        return True
    reporter_org = domains.organizational_domain(domains.domain_of(case_reporter))
    if not authenticated or reporter_org is None or domains.is_mailbox_provider(reporter_org):
        return False
    return domains.organizational_domain(author_domain(report)) == reporter_org


_IPV6_TAG = re.compile(r"\bIPv6:", re.I)
_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*(?![\w:])")
_BY = re.compile(r"\bby\b", re.I)


def received_addresses(header: str) -> list[IpAddress]:
    """The IP addresses written in the 'from' clause of a Received field (IPv4-mapped IPv6 as IPv4)."""
    text = _IPV6_TAG.sub(" ", header[:4000])
    start = re.search(r"\bfrom\b", text, re.I)
    if start:
        text = text[start.end() :]
        end = _BY.search(text)
        text = text[: end.start()] if end else text
    found: list[IpAddress] = []
    for token in _CANDIDATE.findall(text):
        try:
            address = ipaddress.ip_address(token.strip(".").split("%")[0])
        except ValueError:
            continue
        address = _unmapped(address)
        if not address.is_unspecified and address not in found:
            found.append(address)
    return found


def _our_addresses(ours: Iterable[str]) -> list[IpAddress]:
    out: list[IpAddress] = []
    for text in ours:
        try:
            address = ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            continue
        out.append(_unmapped(address))
    return out


def _unmapped(address: IpAddress) -> IpAddress:
    """::ffff:203.0.113.10 is 203.0.113.10."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def received_check(report: AbuseReport, our_ips: Iterable[str]) -> EvidenceCheck | None:
    """Does the reporter's own (top) Received field show the hand-off from one of our addresses?

    Addresses are parsed and compared as addresses: 203.0.113.1 does not match inside 203.0.113.10, and
    only the field's 'from' clause counts (the 'by' clause names the reporter's own server).
    """
    ours = _our_addresses(our_ips)
    if not report.reported_received or not ours:
        return None
    seen = received_addresses(report.reported_received[0])
    hit = next((a for a in seen if a in ours), None)
    if hit is not None:
        return EvidenceCheck("received-chain", True, f"the reporter's own Received header shows {hit}", False)
    return EvidenceCheck("received-chain", False, "the reporter's own Received header does not show our address", False)
