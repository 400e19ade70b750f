"""Normalize glue: consume raw reports, parse and authenticate them off the event loop, publish AbuseReports."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import structlog

from core.errors import ContractError
from core.messages import Message, Publish, ReportParsed, ReportReceived
from core.report import AbuseReport
from ingest.authenticate import TxtLookup, authenticate
from ingest.bounces import as_bounce
from ingest.parse import parse_report

log = structlog.get_logger("ingest.normalize")


def normalize(message: ReportReceived, dns_txt: TxtLookup | None) -> AbuseReport:
    """Parse the raw mail and, when a DNS lookup is given, verify its DKIM signatures (blocking: run in a thread)."""
    report = parse_report(message.raw, envelope=message.envelope, report_id=message.report_id or "")
    if dns_txt is not None:
        report.auth = authenticate(message.raw, dns_txt)
    return report


class NormalizeWorker:
    """report.received.v1 → report.parsed.v1. The work runs in a worker thread so heartbeats keep flowing."""

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

    async def handle(self, message: Message) -> None:
        if not isinstance(message, ReportReceived):
            raise ContractError(f"ingest.normalize got {message.type}")
        if self.bounce_address:
            bounce = await asyncio.to_thread(as_bounce, message, self.bounce_address, self.bounce_peers)
            if bounce is not None:
                log.info("normalize.bounce", sender=bounce.mailbox, hard_failures=len(bounce.failures))
                await self.publish(bounce)
                return
        report = await asyncio.to_thread(normalize, message, self.dns_txt)
        log.info(
            "normalize.parsed",
            format=report.format,
            category=report.category,
            source_ips=len(report.source_ips),
            warnings=len(report.parse_warnings),
            dkim_pass=report.auth.dkim_pass,
        )
        await self.publish(ReportParsed(report_id=report.report_id, report=report))
