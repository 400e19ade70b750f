"""Re-checking a case when the customer says it is fixed: new reports since the warning, and the reported URLs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport
from policy import inventory
from policy.cases import reports_since
from policy.facts import url_hosts
from policy.resolve import Resolver

GONE = (404, 410, 451)
MAX_URLS = 10


class Fetcher(Protocol):
    """HTTP status of a URL fetched from one given address (None when it cannot be reached)."""

    async def status(self, url: str, address: str) -> int | None: ...


def fetchable(address: str) -> bool:
    """An address a re-check may fetch from: globally reachable, or this machine (a local test site)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return ip.is_global or ip.is_loopback


class HttpFetcher:
    """A GET to the address we checked is the customer's (never a new DNS answer: no rebinding), with the URL's
    Host, no redirects and a short timeout. TLS names are not verified: only the status code is read."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    async def status(self, url: str, address: str) -> int | None:
        if not fetchable(address):
            return None  # inconclusive: never a request into a documentation, private or reserved range
        parts = httpx.URL(url)
        target = parts.copy_with(host=address)
        headers = {"Host": parts.netloc.decode("ascii", "replace"), "User-Agent": "abuse-desk re-check"}
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, follow_redirects=False, trust_env=False, verify=False
            ) as client:
                return (await client.get(target, headers=headers)).status_code
        except (httpx.HTTPError, ValueError):
            return None


@dataclass
class Recheck:
    """The outcome of a re-check, in words the customer can act on."""

    passed: bool = True
    passes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # URLs that answered "not found" / "gone" from the customer's address
    unreachable: list[str] = field(default_factory=list)  # URLs that did not answer at all (inconclusive)

    @property
    def proven_gone(self) -> bool:
        """Every URL we could fetch answered that it is gone, and nothing new was reported: the problem is fixed."""
        return self.passed and bool(self.gone) and not self.unreachable

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "passes": self.passes, "failures": self.failures}


async def recheck(
    conn: AsyncConnection,
    case: dict[str, Any],
    report: AbuseReport | None,
    *,
    fetcher: Fetcher | None,
    resolver: Resolver,
    now: datetime,
) -> Recheck:
    """Run the case's checks again. URLs are fetched only when they resolve to the customer's own addresses
    (never wherever a complainant or a customer's DNS points: no request forgery into our network)."""
    result = Recheck()
    since = case["warned_at"] or case["opened_at"]
    new = await reports_since(conn, case["id"], since)
    if new:
        result.failures.append(f"{new} new report(s) about the same problem arrived after the warning")
    else:
        result.passes.append("no new report since the warning")
    for url in (report.urls if report else [])[:MAX_URLS]:
        if fetcher is None:
            break
        address = await _ours(conn, url, case, resolver, now)
        if address is None:
            continue
        status = await fetcher.status(url, address)
        if status is None or status in GONE:
            result.passes.append(f"{url} is no longer served ({status or 'unreachable'})")
            (result.unreachable if status is None else result.gone).append(url)
        else:
            result.failures.append(f"{url} still answers HTTP {status}")
    result.passed = not result.failures
    return result


async def _ours(conn: AsyncConnection, url: str, case: dict[str, Any], resolver: Resolver, now: datetime) -> str | None:
    """The customer's address the URL's host points at, or None."""
    hosts = url_hosts([url])
    if not hosts:
        return None
    host = hosts[0].strip("[]")
    addresses = [host] if any(ch.isdigit() for ch in host.split(".")[-1]) or ":" in host else []
    addresses = addresses or await resolver.resolve(host)
    found = await inventory.lookup(conn, ips=addresses, at=now)  # addresses, not names: the DNS is the customer's
    return next((m.indicator for m in found if m.customer_id == case["customer_id"]), None)
