"""Ops decisions from the pages: what confirm or suspend-now would do (a dry run rolled back), then the real one."""

from __future__ import annotations

import inspect
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.settings import Settings
from policy import ops as policy_ops
from policy import queries
from policy.tables import outbox

PREVIEWED = ("confirm", "suspend-now")  # these may stop services: shown first, asked once more
ALL_ACTIONS = ("confirm", "suspend-now", "reject", "resolve", "lift", "uphold")
_PARAMETERS = inspect.signature(policy_ops.apply).parameters


def available(status: str) -> list[str]:
    """The buttons a case in this status gets (the ones the policy knows and allows)."""
    return [a for a in ALL_ACTIONS if status in policy_ops.ALLOWED.get(a, set())]


async def apply(
    conn: AsyncConnection,
    case_id: str,
    action: str,
    note: str,
    customer_text: str,
    settings: Settings,
    now: datetime,
    *,
    actor: str,
) -> dict[str, Any]:
    """policy.ops.apply with the audit note and, when the policy takes it, the text for the customer apart."""
    extra: dict[str, Any] = {}
    if "customer_text" in _PARAMETERS:
        extra["customer_text"] = customer_text.strip() or None
    return await policy_ops.apply(conn, case_id, action, note, settings, now, actor=actor, **extra)


async def preview(
    engine: AsyncEngine, case_id: str, action: str, note: str, customer_text: str, settings: Settings, now: datetime,
    *, actor: str,
) -> dict[str, Any]:
    """Run the action in a transaction that is rolled back: the status it leads to, what it stops, the mails."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            last = (await conn.execute(select(func.max(outbox.c.id)))).scalar() or 0
            case = await apply(conn, case_id, action, note or "preview", customer_text, settings, now, actor=actor)
            bodies = [json.loads(r.body) for r in await conn.execute(select(outbox.c.body).where(outbox.c.id > last))]
            suspends = [b for b in bodies if b.get("type") == "service.suspend.v1"]
            service_ids = sorted({s for b in suspends for s in b.get("service_ids", [])})
            stopped = await queries.preview_suspension(conn, case_id, service_ids) if suspends else None
            targets = sorted({t for b in suspends for t in b.get("targets", [])})
        finally:
            await transaction.rollback()
    return {
        "status": case["status"],
        "stops": stopped,
        "scopes": sorted({b.get("scope", "account") for b in suspends}),
        "targets": targets,
        "mails": [
            {"kind": b.get("kind"), "to": b.get("to")} for b in bodies if b.get("type") == "notification.send.v1"
        ],
    }
