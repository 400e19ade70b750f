"""The policy outbox: commands written with the decision in one transaction, published from there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.messages import ActionFailed, Message, Publish, SendNotification, decode_message, utcnow
from core.settings import Settings
from policy.tables import outbox


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
    unpublished = select(outbox.c.id, outbox.c.body).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
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
        rows = await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        return len(rows.all())


async def alert_ops(conn: AsyncConnection, failed: ActionFailed, settings: Settings) -> bool:
    """Queue a mail to ops about a failed action — unless what failed was itself a mail to ops (no loop)."""
    body = await conn.scalar(select(outbox.c.body).where(outbox.c.message_id == failed.command_id))
    if body is not None and json.loads(body).get("kind", "").startswith("ops-"):
        return False
    alert = SendNotification(
        message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ops-alert:{failed.message_id}")),
        case_id=failed.case_id,
        kind="ops-action-failed",
        to=settings.notify.ops_address,
        language="en",
        context={
            "case_id": failed.case_id,
            "action": failed.action,
            "reason": failed.reason,
            "command_id": failed.command_id,
        },
    )
    if await conn.scalar(select(outbox.c.id).where(outbox.c.message_id == alert.message_id)):
        return False  # a redelivered event: already queued
    await add(conn, [alert])
    return True
