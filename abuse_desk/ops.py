"""What the ops subcommands do: open the database (and the broker when commands must go out), act, close."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from core.broker import Broker
from core.db import create_engine
from core.errors import AbuseDeskError, TransientError
from core.messages import utcnow
from core.settings import Settings
from policy import inventory, outbox, queries
from policy import ops as policy_ops
from policy.scheduler import fire_due


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database, migrated to the latest schema."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def broker(settings: Settings, attempts: int = 3) -> AsyncIterator[Broker]:
    """A broker connection for one command."""
    b = Broker(settings.amqp_url, settings.prefix)
    await b.connect(attempts=attempts, delay=1.0)
    try:
        yield b
    finally:
        await b.close()


async def publish_outbox(settings: Settings, engine: AsyncEngine) -> int:
    """Publish commands an ops action queued; if the broker is away the running policy worker will."""
    try:
        async with broker(settings) as b:
            return await outbox.drain(engine, b.publish)
    except TransientError:
        return -1


async def import_inventory(
    settings: Settings, path: str, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    data = inventory.load_inventory_file(path)
    listed = data.get("resources") if isinstance(data, dict) else None
    total = len(listed) if isinstance(listed, list) else 0
    step = (lambda done: progress(done, total)) if progress else None
    async with database(settings) as engine, engine.begin() as conn:
        return await inventory.import_inventory(conn, data, progress=step)


async def list_cases(settings: Settings, status: str | None, sla: str | None = None) -> list[dict[str, Any]]:
    async with database(settings) as engine, engine.connect() as conn:
        return await queries.list_cases(conn, status, sla=sla)


async def show_case(settings: Settings, case_id: str) -> dict[str, Any]:
    async with database(settings) as engine, engine.connect() as conn:
        case = await queries.show_case(conn, case_id)
    if case is None:
        raise AbuseDeskError(f"no case {case_id}")
    return case


async def case_action(settings: Settings, case_id: str, action: str, reason: str) -> dict[str, Any]:
    async with database(settings) as engine:
        async with engine.begin() as conn:
            case = await policy_ops.apply(conn, case_id, action, reason, settings, utcnow())
        await publish_outbox(settings, engine)
        return case


async def transparency(settings: Settings, year: int) -> dict[str, Any]:
    from policy import transparency as figures

    async with database(settings) as engine, engine.connect() as conn:
        return await figures.report(conn, year)


async def tick(settings: Settings, now: datetime) -> list[str]:
    async with database(settings) as engine:
        fired = await fire_due(engine, settings, now)
        await publish_outbox(settings, engine)
        return fired


async def queue_stats(settings: Settings) -> list[dict[str, Any]]:
    async with broker(settings) as b:
        return [asdict(s) for s in await b.stats()]


async def dead_list(settings: Settings, queue: str) -> list[dict[str, Any]]:
    _known_queue(queue)
    async with broker(settings) as b:
        letters = await b.dead_letters(queue)
    return [asdict(d) | {"body": d.body[:2000].decode("utf-8", "replace")} for d in letters]


async def dead_replay(
    settings: Settings, queue: str, progress: Callable[[int, int], None] | None = None, *, batch: int = 100
) -> int:
    """Replay every dead letter of a queue, in batches, reporting (moved, total) after each batch."""
    _known_queue(queue)
    async with broker(settings) as b:
        total = {s.queue: s.dead for s in await b.stats()}[queue]
        moved = 0
        while moved < total:
            step = await b.replay(queue, limit=min(batch, total - moved))
            if step == 0:
                break
            moved += step
            if progress:
                progress(moved, total)
        return moved


async def db_upgrade(settings: Settings) -> None:
    async with database(settings):
        return None


def _known_queue(queue: str) -> None:
    from core.topology import QUEUES_BY_NAME

    if queue not in QUEUES_BY_NAME:
        raise AbuseDeskError(f"unknown queue {queue!r}: one of {', '.join(QUEUES_BY_NAME)}")
