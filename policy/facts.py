"""The investigation: gather the facts decide() needs from the inventory, the case store and our own checks."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport
from core.settings import Authority, PolicyConfig, TrustConfig
from policy import inventory
from policy.case import CONFIRMED, JOINABLE, Status
from policy.customer_checks import detail_problems
from policy.model import CustomerFacts, EvidenceCheck, Facts
from policy.resolve import Resolver, StaticResolver
from policy.tables import case_reports, cases
from policy.trust import authority_of, received_check, trusted_reporter


def incident_time(report: AbuseReport, now: datetime) -> datetime:
    """When the incident happened: the report's own time if plausible, else when we received it."""
    received = report.received_at or now
    observed = report.observed_at
    if observed is None or observed > received + timedelta(hours=1):
        return received
    return observed


def url_hosts(urls: list[str]) -> list[str]:
    """Host names (or address literals) of the reported URLs."""
    hosts = []
    for url in urls:
        try:
            host = urlsplit(url if "://" in url else "http://" + url).hostname
        except ValueError:
            continue
        if host:
            hosts.append(host.lower().rstrip("."))
    return hosts


def indicator_lookups(report: AbuseReport) -> tuple[list[str], list[str]]:
    """(addresses, names) a report points at: its source IPs and IP-literal URL hosts; its domains and URL hosts."""
    hosts = url_hosts(report.urls)
    ips = list(dict.fromkeys([*report.source_ips, *(h.strip("[]") for h in hosts if _is_ip(h.strip("[]")))]))
    names = list(dict.fromkeys([*report.domains, *(h for h in hosts if not _is_ip(h.strip("[]")))]))
    return ips, names


def origin_of(report: AbuseReport, facts: Facts) -> str:
    """Where a case comes from, as the transparency report counts it."""
    if facts.authority:
        return "authority-order"
    if report.reporter_kind == "internal":
        return "own-initiative"
    return "notice" if facts.reporter_kind in ("person", "unknown") else "automated-notice"


def effective_kind(report: AbuseReport, trust: TrustConfig) -> str:
    """The reporter kind we accept: an unauthenticated 'feedback loop' is not one."""
    if report.reporter_kind == "feedback-loop":
        name, authenticated = trusted_reporter(report, trust)
        if not (name and authenticated):
            return "unknown"
    return report.reporter_kind


async def _url_check(
    conn: AsyncConnection,
    report: AbuseReport,
    at: datetime,
    customer_id: str,
    resolver: Resolver,
    held: Collection[str] = (),
) -> EvidenceCheck | None:
    """Does a reported URL point at the customer's services? `held`: the report's indicators already found to be
    the customer's at that time (an address URL among them needs no second lookup)."""
    hosts = sorted(set(url_hosts(report.urls)))[:20]
    if not hosts:
        return None
    for host in hosts:
        try:
            address = ipaddress.ip_address(host.strip("[]")).compressed
            if address in held:
                return EvidenceCheck("url-on-our-resource", True, f"{host} is {address}, the customer's")
            addresses = [address]
            how = "is"
        except ValueError:
            configured = await inventory.lookup(conn, domains=[host], at=at)
            if any(m.customer_id == customer_id for m in configured):
                return EvidenceCheck("url-on-our-resource", True, f"{host} is configured on the customer's service")
            addresses = await resolver.resolve(host)
            how = "resolves to"
        if addresses:
            found = await inventory.lookup(conn, ips=addresses, at=at)
            ours = sorted({m.indicator for m in found if m.customer_id == customer_id})
            if ours:
                return EvidenceCheck("url-on-our-resource", True, f"{host} {how} {', '.join(ours)}, the customer's")
    return EvidenceCheck("url-on-our-resource", False, f"none of {', '.join(hosts)} points at the customer's services")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# The investigation's reads, built once with bind parameters: a decision executes them without building an
# expression or its cache key again (SQLAlchemy memoises both on the statement object).
_REPORTER_HISTORY = (
    select(cases.c.status, func.count())
    .where(func.lower(cases.c.reporter) == bindparam("reporter"))  # ix_cases_reporter_lower
    .group_by(cases.c.status)
)
# A customer's cases that bear on a decision, in one read: the open ones of the report's category (the newest is
# the case to join or escalate) and the confirmed ones of the repeat window (earlier offences).
_CUSTOMER_CASES = select(cases.c.id, cases.c.status, cases.c.category, cases.c.opened_at).where(
    cases.c.customer_id == bindparam("customer_id"),
    ((cases.c.category == bindparam("category")) & cases.c.status.in_(sorted(JOINABLE)))
    | (cases.c.status.in_(sorted(CONFIRMED)) & (cases.c.opened_at >= bindparam("since"))),
)
_REPORTS_OF_CUSTOMER = case_reports.join(cases, cases.c.id == case_reports.c.case_id)
_FEEDBACK_LOOP_REPORTS = (
    select(func.count())
    .select_from(_REPORTS_OF_CUSTOMER)
    .where(
        cases.c.customer_id == bindparam("customer_id"),
        case_reports.c.reporter_kind == "feedback-loop",
        case_reports.c.received_at >= bindparam("since"),
    )
)
_SIGNING_DOMAINS = (
    select(case_reports.c.dkim_domain)
    .distinct()
    .select_from(_REPORTS_OF_CUSTOMER)
    .where(
        cases.c.customer_id == bindparam("customer_id"),
        case_reports.c.received_at >= bindparam("since"),
        case_reports.c.dkim_domain.is_not(None),
    )
)


@dataclass(frozen=True)
class CustomerCases:
    """What the case store says about a customer for one decision: the case a report joins, earlier offences."""

    open_case_id: str | None
    open_case_status: str | None
    confirmed_in_window: int


async def customer_cases(
    conn: AsyncConnection, customer_id: str, category: str, since: datetime, notice_categories: Collection[str]
) -> CustomerCases:
    """The newest open case of `category`, and the confirmed cases opened since `since` (another than that open
    one; a notice is not an accusation, so notice categories do not count)."""
    rows = (
        await conn.execute(_CUSTOMER_CASES, {"customer_id": customer_id, "category": category, "since": since})
    ).all()
    joinable = [r for r in rows if r.category == category and r.status in JOINABLE]
    newest = max(joinable, key=lambda r: r.opened_at) if joinable else None
    confirmed = sum(
        1
        for r in rows
        if r.status in CONFIRMED
        and r.opened_at >= since
        and r.category not in notice_categories
        and (newest is None or r.id != newest.id)
    )
    return CustomerCases(newest.id if newest else None, newest.status if newest else None, confirmed)


@dataclass
class Known:
    """What several decisions of one transaction share (a bulk report's customers, fetched in one query each)."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, list[str]] = field(default_factory=dict)
    reporters: dict[str, dict[str, int]] = field(default_factory=dict)

    async def customer(self, conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
        """The customer's row (from the batch when it was fetched)."""
        if customer_id not in self.customers:
            row = await inventory.customer_row(conn, customer_id)
            if row is None:
                return None
            self.customers[customer_id] = row
        return self.customers[customer_id]

    async def account_services(self, conn: AsyncConnection, customer_id: str) -> list[str]:
        """Every service of the customer's account."""
        if customer_id not in self.services:
            self.services[customer_id] = await inventory.account_services(conn, customer_id)
        return self.services[customer_id]

    async def prefetch(self, conn: AsyncConnection, customer_ids: Sequence[str]) -> None:
        """Fetch these customers' rows and services in one query each (what this transaction has not read yet)."""
        if rows := sorted({c for c in customer_ids if c not in self.customers}):
            self.customers |= await inventory.customers_rows(conn, rows)
        if services := sorted({c for c in customer_ids if c not in self.services}):
            self.services |= await inventory.account_services_many(conn, services)

    async def history(self, conn: AsyncConnection, reporter: str) -> dict[str, int]:
        """A reporter's earlier cases: how many were confirmed, how many rejected."""
        if reporter not in self.reporters:
            counts = {"confirmed": 0, "rejected": 0}
            for status, count in await conn.execute(_REPORTER_HISTORY, {"reporter": reporter}):
                key = "confirmed" if status in CONFIRMED else "rejected" if status == Status.REJECTED else None
                if key:
                    counts[key] += int(count)
            self.reporters[reporter] = counts
        return self.reporters[reporter]


async def gather(
    conn: AsyncConnection,
    report: AbuseReport,
    config: PolicyConfig,
    now: datetime,
    *,
    trust: TrustConfig | None = None,
    resolver: Resolver | None = None,
    authorities: list[Authority] | None = None,
    customer_id: str | None = None,
    matches: Sequence[inventory.Match] | None = None,
    known: Known | None = None,
) -> Facts:
    """Facts for one report (or the part of it about `customer_id`): who held each indicator at incident time, the
    customer file, earlier cases, trust."""
    trust = trust or TrustConfig()
    resolver = resolver or StaticResolver(trust.hosts)
    at = incident_time(report, now)
    ips, domains = indicator_lookups(report)
    has_indicators = bool(ips or domains or report.emails)
    if matches is None:  # the caller may have looked them up already (a report split by customer)
        matches = await inventory.lookup(conn, ips=ips, domains=domains, mailboxes=report.emails, at=at)
    trusted_as, authenticated = trusted_reporter(report, trust)
    known = known or Known()
    reporter = report.reporter.lower() if report.reporter else None
    history = await known.history(conn, reporter) if reporter else {"confirmed": 0, "rejected": 0}
    common = {
        "now": now,
        "has_indicators": has_indicators,
        "reporter_trusted_as": trusted_as,
        "reporter_authenticated": authenticated,
        "reporter_confirmed": history["confirmed"],
        "reporter_rejected": history["rejected"],
        "reporter_kind": effective_kind(report, trust),
    }
    authority = authority_of(report, authorities or [])
    if authority is not None:
        common |= {"authority": authority.name, "authority_deadline_hours": authority.deadline_hours}
    if not matches:
        return Facts(**common)  # type: ignore[arg-type]
    by_customer: dict[str, int] = {}
    for m in matches:
        by_customer[m.customer_id] = by_customer.get(m.customer_id, 0) + 1
    customer_id = (
        customer_id
        if customer_id is not None and customer_id in by_customer
        else max(sorted(by_customer), key=lambda c: by_customer[c])
    )
    mine = [m for m in matches if m.customer_id == customer_id]
    row = await known.customer(conn, customer_id)
    customer = CustomerFacts(
        id=customer_id,
        created_at=row["created_at"] if row else None,
        detail_problems=detail_problems(row, config) if row else ("customer file missing",),
        language=(row or {}).get("language"),
    )
    window_start = now - timedelta(days=config.repeat_window_days)
    earlier = await customer_cases(conn, customer_id, report.category, window_start, config.notice_categories)
    fbl = 0
    if common["reporter_kind"] == "feedback-loop":
        since = now - timedelta(hours=config.fbl_window_hours)
        fbl = 1 + int(await conn.scalar(_FEEDBACK_LOOP_REPORTS, {"customer_id": customer_id, "since": since}) or 0)
    held = {m.indicator for m in mine}  # the indicators found to be the customer's
    evidence = [
        c
        for c in (
            received_check(report, held),
            await _url_check(conn, report, at, customer_id, resolver, held),
        )
        if c is not None
    ]
    return Facts(
        matched_services=tuple(sorted({m.service_id for m in mine})),
        matched_indicators=tuple(sorted({m.indicator for m in mine})),
        customer=customer,
        account_services=tuple(await known.account_services(conn, customer_id)),
        open_case_id=earlier.open_case_id,
        open_case_status=earlier.open_case_status,
        confirmed_cases_in_window=earlier.confirmed_in_window,
        feedback_loop_volume=fbl,
        evidence=tuple(evidence),
        corroborating_reporters=await _corroboration(conn, report, customer_id, config, now),
        **common,  # type: ignore[arg-type]
    )


async def _corroboration(
    conn: AsyncConnection, report: AbuseReport, customer_id: str, config: PolicyConfig, now: datetime
) -> int:
    """Independent authenticated reporters (distinct aligned-DKIM domains) about this customer in the window."""
    since = now - timedelta(hours=config.corroboration_window_hours)
    rows = await conn.execute(_SIGNING_DOMAINS, {"customer_id": customer_id, "since": since})
    domains: set[str | None] = {r.dkim_domain for r in rows}
    if report.auth.dkim_aligned:
        domains.add(report.auth.from_domain)
    domains.discard(None)
    return max(1, len(domains))
