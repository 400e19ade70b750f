"""Suspension: backends behind one interface (the built-in ledger first), and the command handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.tables import suspensions
from core.errors import ContractError
from core.messages import LiftSuspension, Message, ServiceLifted, ServiceSuspended, SuspendService, utcnow

log = structlog.get_logger("actions.suspend")

Publish = Callable[[Message], Awaitable[None]]


class SuspensionBackend(Protocol):
    """A place where services are stopped. Both calls are idempotent: 'already done' is success."""

    name: str

    async def suspend(self, command: SuspendService) -> list[str]:
        """Stop the services; returns the ids now suspended by this case."""

    async def lift(self, command: LiftSuspension) -> list[str]:
        """Restore what the case suspended; returns the ids restored."""


class LedgerBackend:
    """The built-in backend: a table of suspended services (what outgoing-mail enforcement reads)."""

    name = "ledger"

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    async def suspend(self, command: SuspendService) -> list[str]:
        async with self.engine.begin() as conn:
            active = {
                r.service_id
                for r in await conn.execute(
                    select(suspensions.c.service_id).where(
                        suspensions.c.service_id.in_(command.service_ids), suspensions.c.lifted_at.is_(None)
                    )
                )
            }
            new = [s for s in command.service_ids if s not in active]
            if new:
                await conn.execute(
                    suspensions.insert(),
                    [
                        {
                            "service_id": s,
                            "customer_id": command.customer_id,
                            "case_id": command.case_id,
                            "scope": command.scope,
                            "backend": self.name,
                            "reason": command.reason[:2000],
                            "command_id": command.message_id,
                            "suspended_at": self.clock(),
                        }
                        for s in new
                    ],
                )
        return sorted(set(command.service_ids))

    async def lift(self, command: LiftSuspension) -> list[str]:
        async with self.engine.begin() as conn:
            where = [suspensions.c.lifted_at.is_(None), suspensions.c.case_id == command.case_id]
            if command.service_ids:
                where.append(suspensions.c.service_id.in_(command.service_ids))
            ids = sorted({r.service_id for r in await conn.execute(select(suspensions.c.service_id).where(*where))})
            await conn.execute(
                update(suspensions).where(*where).values(lifted_at=self.clock(), lift_reason=command.reason[:2000])
            )
        return ids


async def active_suspensions(engine: AsyncEngine) -> list[dict[str, object]]:
    """Every suspension not lifted (ops, tests, outgoing-mail enforcement)."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(suspensions).where(suspensions.c.lifted_at.is_(None)))
        return [dict(r) for r in rows.mappings()]


class SuspendWorker:
    """Handles service.suspend.v1 / service.lift.v1 and publishes what happened."""

    def __init__(self, backend: SuspensionBackend, publish: Publish) -> None:
        self.backend = backend
        self.publish = publish

    async def handle(self, message: Message) -> None:
        if isinstance(message, SuspendService):
            done = await self.backend.suspend(message)
            log.info("actions.suspended", services=done, backend=self.backend.name)
            await self.publish(
                ServiceSuspended(
                    case_id=message.case_id,
                    report_id=message.report_id,
                    customer_id=message.customer_id,
                    service_ids=done,
                    backend=self.backend.name,
                    command_id=message.message_id,
                )
            )
        elif isinstance(message, LiftSuspension):
            done = await self.backend.lift(message)
            log.info("actions.lifted", services=done, backend=self.backend.name)
            await self.publish(
                ServiceLifted(
                    case_id=message.case_id,
                    customer_id=message.customer_id,
                    service_ids=done,
                    backend=self.backend.name,
                    command_id=message.message_id,
                )
            )
        else:
            raise ContractError(f"actions.suspend got {message.type}")
