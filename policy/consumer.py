"""Policy glue: consume parsed reports and action events, commit decisions, then publish the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import ContractError
from core.messages import (
    ActionFailed,
    Message,
    NotificationSent,
    Publish,
    ReportParsed,
    ServiceLifted,
    ServiceSuspended,
    utcnow,
)
from core.settings import Settings
from policy import outbox
from policy.cases import add_history, handle_report
from policy.resolve import Resolver, SystemResolver
from policy.tables import cases

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
            async with self.engine.begin() as conn:
                case_id = await handle_report(conn, message.report, self.settings, self.clock(), resolver=self.resolver)
            log.info("policy.decided", case_id=case_id)
        await self.drain()

    async def on_event(self, message: Message) -> None:
        """Action events → the case's history (and a flag for ops when an action failed)."""
        if message.case_id is None:
            return
        detail = message.model_dump(mode="json", exclude={"context"})
        alert = False
        async with self.engine.begin() as conn:
            if isinstance(message, ActionFailed):
                await conn.execute(update(cases).where(cases.c.id == message.case_id).values(needs_attention=True))
                alert = await outbox.alert_ops(conn, message, self.settings)
            elif not isinstance(message, ServiceSuspended | ServiceLifted | NotificationSent):
                raise ContractError(f"policy.events got {message.type}")
            await add_history(conn, message.case_id, self.clock(), "action", message.type, [], detail)
        if alert:
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
