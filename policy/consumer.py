"""Policy glue: consume parsed reports and action events, commit decisions, then publish the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import ContractError
from core.messages import Message, Publish, ReportParsed, utcnow
from core.settings import Settings
from policy import outbox
from policy.events import action_event
from policy.intake import report_arrived
from policy.resolve import Resolver, SystemResolver
from policy.unit import Unit

log = structlog.get_logger("policy.consumer")


class PolicyWorker:
    """Decides reports one at a time per process (cases of one customer must not race) and drains the outbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        publish: Publish,
        clock: Callable[[], datetime] = utcnow,
        resolver: Resolver | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.publish = publish
        self.clock = clock
        trust = settings.trust
        self.resolver = resolver or SystemResolver(trust.hosts, trust.dns_timeout, enabled=trust.resolve_urls)
        self._lock = asyncio.Lock()
        self._drain_lock = asyncio.Lock()

    async def on_report(self, message: Message) -> None:
        """report.parsed.v1 → case + decision + commands (one transaction) → publish."""
        if not isinstance(message, ReportParsed):
            raise ContractError(f"policy.reports got {message.type}")
        async with self._lock:
            decided = await report_arrived(
                self.engine, message.report, self.settings, self.clock(), resolver=self.resolver
            )
            log.info("policy.decided", case_ids=decided[:20], cases=len(decided))
        await self.drain()

    async def on_event(self, message: Message) -> None:
        """Action events → the case (suspended once the platform confirmed; flagged and ops alerted when it failed)."""
        async with self.engine.begin() as conn:
            waiting = await action_event(Unit(conn, self.settings, self.clock()), message)
        if waiting:
            await self.drain()

    async def drain(self) -> int:
        """Publish whatever the outbox holds (after each commit, at start, and periodically)."""
        async with self._drain_lock:  # one drain at a time per process: no message published twice from here
            return await outbox.drain(self.engine, self.publish)

    async def drain_forever(self, interval: float = 5.0) -> None:
        """Background loop: a crash between commit and publish is repaired within `interval` seconds."""
        while True:
            try:
                await self.drain()
            except Exception as exc:  # the broker may be away; try again later
                log.warning("policy.outbox_drain_failed", error=repr(exc))
            await asyncio.sleep(interval)
