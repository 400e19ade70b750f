"""Receipts are rate-limited per complainant address and per domain (a flood of forged complaints cannot make
the desk mail one victim, or one domain, over and over). Counters in the database: one row per key and hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core import domains
from core.settings import ReceiptLimits
from policy.tables import receipt_counts


def _keys(address: str) -> tuple[str, str]:
    lowered = address.strip().lower()
    return f"address:{lowered}"[:330], f"domain:{domains.domain_of(lowered) or ''}"[:330]


_COUNT = select(func.coalesce(func.sum(receipt_counts.c.count), 0)).where(  # built once, values bound per call
    receipt_counts.c.key == bindparam("key"), receipt_counts.c.bucket >= bindparam("since")
)


async def _count(conn: AsyncConnection, key: str, since: datetime) -> int:
    total = await conn.execute(_COUNT, {"key": key, "since": since})
    return int(total.scalar_one())


async def take_receipt(
    conn: AsyncConnection, address: str, now: datetime, limits: ReceiptLimits | None = None
) -> tuple[bool, str]:
    """Count one mail to `address` if both its limits allow it: (allowed, why not in plain words).

    Call it in the transaction that queues the mail; a refusal counts nothing. Several policy replicas may
    each pass the last allowed mail at the same instant: the limit is a flood guard, not an exact quota.
    """
    limits = limits or ReceiptLimits()
    window = timedelta(hours=limits.window_hours)
    since = (now - window).replace(minute=0, second=0, microsecond=0)
    bucket = now.replace(minute=0, second=0, microsecond=0)
    by_address, by_domain = _keys(address)
    if await _count(conn, by_address, since) >= limits.per_address:
        return False, f"{limits.per_address} mails to this address within {limits.window_hours:g} h already"
    if await _count(conn, by_domain, since) >= limits.per_domain:
        return False, f"{limits.per_domain} mails to this domain within {limits.window_hours:g} h already"
    for key in (by_address, by_domain):
        await conn.execute(_increment(conn, key, bucket))
    await conn.execute(
        delete(receipt_counts).where(receipt_counts.c.key.in_((by_address, by_domain)), receipt_counts.c.bucket < since)
    )
    return True, ""


def _increment(conn: AsyncConnection, key: str, bucket: datetime) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(receipt_counts)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(receipt_counts)
    stmt = stmt.values(key=key, bucket=bucket, count=1)
    return stmt.on_conflict_do_update(index_elements=["key", "bucket"], set_={"count": receipt_counts.c.count + 1})
