"""The policy outbox: commands written with the decision in one transaction, published from there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.messages import Message, decode_message, utcnow
from policy.tables import outbox

Publish = Callable[[Message], Awaitable[None]]


async def add(conn: AsyncConnection, messages: Iterable[Message]) -> None:
    """Queue messages for publishing, inside the caller's transaction."""
    rows = [
        {"message_id": m.message_id, "type": m.type, "body": m.to_bytes().decode(), "created_at": utcnow()}
        for m in messages
    ]
    if rows:
        await conn.execute(outbox.insert(), rows)


async def drain(engine: AsyncEngine, publish: Publish, *, batch: int = 200) -> int:
    """Publish every unpublished command in order; returns how many were published.

    A crash between publish and the update republishes the same message id: consumers are idempotent.
    """
    done = 0
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.body)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return done
        for row in rows:
            await publish(decode_message(row.body.encode()))
            async with engine.begin() as conn:
                await conn.execute(update(outbox).where(outbox.c.id == row.id).values(published_at=utcnow()))
            done += 1


async def pending(engine: AsyncEngine) -> int:
    """How many commands wait to be published."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        return len(rows.all())
