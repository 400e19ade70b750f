"""Normalize glue: consume raw reports, parse and authenticate them off the event loop, publish AbuseReports."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import structlog

from core.errors import ContractError
from core.messages import Message, Publish, ReportParsed, ReportReceived
from core.report import AbuseReport
from ingest.apart import AT_ONCE, BIG_MAIL, parse_apart
from ingest.authenticate import TxtLookup, authenticate
from ingest.bounces import as_bounce
from ingest.parse import parse_received

log = structlog.get_logger("ingest.normalize")


def normalize(message: ReportReceived, dns_txt: TxtLookup | None) -> AbuseReport:
    """Parse the raw mail and, when a DNS lookup is given, verify its DKIM signatures (blocking: run in a thread)."""
    report = parse_received(message)
    if dns_txt is not None:
        report.auth = authenticate(message.raw, dns_txt)
    return report


class NormalizeWorker:
    """report.received.v1 → report.parsed.v1. The work runs in a worker thread (a big mail's in a child process),
    so heartbeats keep flowing."""

    def __init__(
        self,
        publish: Publish,
        dns_txt: TxtLookup | None = None,
        bounce_address: str = "",
        bounce_peers: Collection[str] = (),
    ) -> None:
        self.publish = publish
        self.dns_txt = dns_txt
        self.bounce_address = bounce_address  # [outbound] bounce_notice_address: DSNs to it are counted, not parsed
        self.bounce_peers = bounce_peers
        self._apart = asyncio.Semaphore(AT_ONCE)  # a prefetch of big feeds does not start a child for each at once

    async def handle(self, message: Message) -> None:
        if not isinstance(message, ReportReceived):
            raise ContractError(f"ingest.normalize got {message.type}")
        if self.bounce_address:
            bounce = await asyncio.to_thread(as_bounce, message, self.bounce_address, self.bounce_peers)
            if bounce is not None:
                log.info("normalize.bounce", sender=bounce.mailbox, hard_failures=len(bounce.failures))
                await self.publish(bounce)
                return
        parsed = await self._parsed(message)
        report = parsed.report
        log.info(
            "normalize.parsed",
            format=report.format,
            category=report.category,
            source_ips=len(report.source_ips),
            warnings=len(report.parse_warnings),
            dkim_pass=report.auth.dkim_pass,
        )
        await self.publish(parsed)

    async def _parsed(self, message: ReportReceived) -> ReportParsed:
        """Parse in a worker thread; a mail over `BIG_MAIL` in a child process (ingest.apart), its DKIM checked here
        first: a thread's second of parsing would hold the GIL that this process's other stages wait for at each
        of their I/O turns (on SQLite, `abuse-desk run` decided nothing while a 100,000-row feed was parsed)."""
        if len(message.raw) > BIG_MAIL:
            auth = None if self.dns_txt is None else await asyncio.to_thread(authenticate, message.raw, self.dns_txt)
            async with self._apart:
                return await parse_apart(message, auth)
        report = await asyncio.to_thread(normalize, message, self.dns_txt)
        return ReportParsed(report_id=report.report_id, report=report)
