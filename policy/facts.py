"""The investigation: gather the facts decide() needs from the inventory and the case store."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport
from core.settings import PolicyConfig
from policy import inventory
from policy.customer_checks import detail_problems
from policy.model import CONFIRMED_STATUSES, OPEN_STATUSES, CustomerFacts, Facts
from policy.tables import case_reports, cases


def incident_time(report: AbuseReport, now: datetime) -> datetime:
    """When the incident happened: the report's own time if plausible, else when we received it."""
    received = report.received_at or now
    observed = report.observed_at
    if observed is None or observed > received + timedelta(hours=1):
        return received
    return observed


def url_hosts(urls: list[str]) -> list[str]:
    """Host names of the reported URLs."""
    hosts = []
    for url in urls:
        try:
            host = urlsplit(url if "://" in url else "http://" + url).hostname
        except ValueError:
            continue
        if host:
            hosts.append(host)
    return hosts


async def gather(conn: AsyncConnection, report: AbuseReport, config: PolicyConfig, now: datetime) -> Facts:
    """Facts for one report: who held each indicator at incident time, the customer file, earlier cases."""
    at = incident_time(report, now)
    domains = [*report.domains, *url_hosts(report.urls)]
    has_indicators = bool(report.source_ips or domains or report.emails)
    matches = await inventory.lookup(conn, ips=report.source_ips, domains=domains, mailboxes=report.emails, at=at)
    if not matches:
        return Facts(now=now, has_indicators=has_indicators)
    by_customer: dict[str, int] = {}
    for m in matches:
        by_customer[m.customer_id] = by_customer.get(m.customer_id, 0) + 1
    customer_id = max(sorted(by_customer), key=lambda c: by_customer[c])
    mine = [m for m in matches if m.customer_id == customer_id]
    row = await inventory.customer_row(conn, customer_id)
    customer = CustomerFacts(
        id=customer_id,
        created_at=row["created_at"] if row else None,
        detail_problems=detail_problems(row, config) if row else ("customer file missing",),
        language=(row or {}).get("language"),
    )
    open_case = (
        await conn.execute(
            select(cases.c.id, cases.c.status)
            .where(
                cases.c.customer_id == customer_id,
                cases.c.category == report.category,
                cases.c.status.in_(sorted(OPEN_STATUSES)),
            )
            .order_by(cases.c.opened_at.desc())
            .limit(1)
        )
    ).first()
    window_start = now - timedelta(days=config.repeat_window_days)
    confirmed_q = select(func.count()).where(
        cases.c.customer_id == customer_id,
        cases.c.status.in_(sorted(CONFIRMED_STATUSES)),
        cases.c.opened_at >= window_start,
    )
    if open_case is not None:
        confirmed_q = confirmed_q.where(cases.c.id != open_case.id)
    confirmed = int(await conn.scalar(confirmed_q) or 0)
    fbl = 0
    if report.reporter_kind == "feedback-loop":
        fbl_since = now - timedelta(hours=config.fbl_window_hours)
        fbl = 1 + int(
            await conn.scalar(
                select(func.count())
                .select_from(case_reports.join(cases, cases.c.id == case_reports.c.case_id))
                .where(
                    cases.c.customer_id == customer_id,
                    case_reports.c.reporter_kind == "feedback-loop",
                    case_reports.c.received_at >= fbl_since,
                )
            )
            or 0
        )
    return Facts(
        now=now,
        matched_services=tuple(sorted({m.service_id for m in mine})),
        matched_indicators=tuple(sorted({m.indicator for m in mine})),
        customer=customer,
        account_services=tuple(await inventory.account_services(conn, customer_id)),
        open_case_id=open_case.id if open_case else None,
        open_case_status=open_case.status if open_case else None,
        confirmed_cases_in_window=confirmed,
        feedback_loop_volume=fbl,
        has_indicators=has_indicators,
    )
