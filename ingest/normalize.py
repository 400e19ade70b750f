"""Normalize glue: consume raw reports, parse them off the event loop, publish AbuseReports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from core.errors import ContractError
from core.messages import Message, ReportParsed, ReportReceived
from ingest.parse import parse_report

log = structlog.get_logger("ingest.normalize")

Publish = Callable[[Message], Awaitable[None]]


class NormalizeWorker:
    """report.received.v1 → report.parsed.v1. Parsing runs in a worker thread so heartbeats keep flowing."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish

    async def handle(self, message: Message) -> None:
        if not isinstance(message, ReportReceived):
            raise ContractError(f"ingest.normalize got {message.type}")
        report = await asyncio.to_thread(
            parse_report, message.raw, envelope=message.envelope, report_id=message.report_id or ""
        )
        log.info(
            "normalize.parsed", format=report.format, category=report.category,
            source_ips=len(report.source_ips), warnings=len(report.parse_warnings),
        )
        await self.publish(ReportParsed(report_id=report.report_id, report=report))
