"""The policy outbox: commands written with the decision in one transaction, published from there."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.messages import Message, Publish, decode_message, utcnow
from policy.tables import outbox


async def add(
    conn: AsyncConnection, messages: Iterable[Message], *, case_id: str | None = None, held: bool = False
) -> None:
    """Queue messages for publishing, inside the caller's transaction (held ones wait for `release`)."""
    rows = [
        {
            "message_id": m.message_id,
            "type": m.type,
            "body": m.to_bytes().decode(),
            "created_at": utcnow(),
            "case_id": case_id or m.case_id,
            "held": held,
        }
        for m in messages
    ]
    if rows:
        await conn.execute(outbox.insert(), rows)


async def release(conn: AsyncConnection, case_id: str) -> int:
    """Let a case's held messages go (the platform confirmed its suspension); returns how many."""
    result = await conn.execute(
        update(outbox).where(outbox.c.case_id == case_id, outbox.c.held.is_(True)).values(held=False)
    )
    return int(result.rowcount or 0)


async def held(conn: AsyncConnection, case_id: str) -> list[str]:
    """Kinds or types of the messages a case holds until its suspension is confirmed."""
    rows = await conn.execute(select(outbox.c.body, outbox.c.type).where(outbox.c.case_id == case_id, outbox.c.held))
    return [json.loads(r.body).get("kind") or r.type for r in rows]


async def drain(engine: AsyncEngine, publish: Publish, *, batch: int = 200) -> int:
    """Publish every unpublished command in order; returns how many were published.

    A crash between publish and the update republishes the same message id: consumers are idempotent.
    """
    done = 0
    unpublished = (
        select(outbox.c.id, outbox.c.body)
        .where(outbox.c.published_at.is_(None), outbox.c.held.is_(False))
        .order_by(outbox.c.id)
    )
    while True:
        if engine.dialect.name == "postgresql":
            # Several drainers (policy and scheduler replicas): each row is claimed by one of them, so a
            # command is published once, not once per replica. Rolled back on failure: published again later.
            async with engine.begin() as conn:
                rows = (await conn.execute(unpublished.limit(batch).with_for_update(skip_locked=True))).all()
                for row in rows:
                    await publish(decode_message(row.body.encode()))
                    await conn.execute(update(outbox).where(outbox.c.id == row.id).values(published_at=utcnow()))
                    done += 1
            if not rows:
                return done
            continue
        async with engine.connect() as conn:
            rows = (await conn.execute(unpublished.limit(batch))).all()
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
        rows = await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None), outbox.c.held.is_(False)))
        return len(rows.all())


async def is_ops_mail(conn: AsyncConnection, command_id: str) -> bool:
    """True when a command was itself a mail to ops (its failure must not alert ops again: no loop)."""
    body = await conn.scalar(select(outbox.c.body).where(outbox.c.message_id == command_id))
    return body is not None and str(json.loads(body).get("kind", "")).startswith("ops-")
