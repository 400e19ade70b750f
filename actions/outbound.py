"""Outgoing-mail limits: recipients per sending mailbox over a sliding hour, in the database, and the report."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.tables import outbound_counts, outbound_reports
from core.action_settings import OutboundConfig
from core.report import AbuseReport


@dataclass(frozen=True)
class SenderOwner:
    """Whose a sending mailbox is, per the inventory: the customer, the services it belongs to, their plans."""

    customer_id: str
    service_ids: tuple[str, ...] = ()
    plans: tuple[str, ...] = field(default_factory=tuple)


OwnerLookup = Callable[[str], Awaitable[SenderOwner | None]]


def limit_for(sender: str, owner: SenderOwner | None, config: OutboundConfig) -> int:
    """The recipients-per-window limit: per sender, then its domain, then customer, then plan, then default."""
    domain = sender.rpartition("@")[2]
    for key in (sender, domain):
        if key in config.per_sender:
            return config.per_sender[key]
    if owner is not None:
        if owner.customer_id in config.per_customer:
            return config.per_customer[owner.customer_id]
        plans = [config.per_plan[p] for p in owner.plans if p in config.per_plan]
        if plans:
            return max(plans)
    return config.recipients_per_hour


def _insert(conn: AsyncConnection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


class OutboundCounter:
    """Per-minute rows summed over the window; shared by replicas through the database, kept over restarts.

    Only accepted recipients are counted: a deferred one does not extend the sender's penalty. The sender's
    row in `outbound_reports` is locked first (FOR UPDATE on PostgreSQL; SQLite serializes writers), so two
    replicas cannot both let the 61st recipient through.
    """

    def __init__(self, engine: AsyncEngine, config: OutboundConfig) -> None:
        self.engine = engine
        self.config = config
        self.window = timedelta(minutes=config.window_minutes)
        self._lock = asyncio.Lock()
        self._pruned: datetime | None = None

    async def admit(self, sender: str, limit: int, now: datetime) -> tuple[bool, int]:
        """Count one recipient unless the window is full; returns (accepted, recipients in the window)."""
        bucket = now.replace(second=0, microsecond=0)
        since = bucket - self.window + timedelta(minutes=1)
        async with self._lock, self.engine.begin() as conn:
            await conn.execute(_insert(conn, outbound_reports).values(sender=sender).on_conflict_do_nothing())
            lock = select(outbound_reports.c.sender).where(outbound_reports.c.sender == sender)
            if conn.dialect.name == "postgresql":
                await conn.execute(lock.with_for_update())
            total = (
                await conn.execute(
                    select(func.coalesce(func.sum(outbound_counts.c.count), 0)).where(
                        outbound_counts.c.sender == sender, outbound_counts.c.bucket >= since
                    )
                )
            ).scalar_one()
            if int(total) >= limit:
                return False, int(total)
            stmt = _insert(conn, outbound_counts).values(sender=sender, bucket=bucket, count=1)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["sender", "bucket"], set_={"count": outbound_counts.c.count + 1}
                )
            )
            if self._pruned is None or now - self._pruned > timedelta(minutes=5):
                await conn.execute(delete(outbound_counts).where(outbound_counts.c.bucket < since))
                self._pruned = now
        return True, int(total) + 1

    async def claim_report(self, sender: str, report_id: str, now: datetime) -> bool:
        """True for the first crossing in a window: only then is a report published."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(outbound_reports)
                .where(
                    outbound_reports.c.sender == sender,
                    (outbound_reports.c.reported_at.is_(None)) | (outbound_reports.c.reported_at <= now - self.window),
                )
                .values(reported_at=now, report_id=report_id)
            )
            return bool(result.rowcount)

    async def release_report(self, sender: str, report_id: str) -> None:
        """The report could not be published: let the next deferred recipient try again."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbound_reports)
                .where(outbound_reports.c.sender == sender, outbound_reports.c.report_id == report_id)
                .values(reported_at=None, report_id=None)
            )


def limit_report(mailbox: str, *, limit: int, window_minutes: int, now: datetime, attrs: dict[str, str]) -> AbuseReport:
    """The internal report published when a mailbox crosses its limit (the policy decides as for a complaint)."""
    window_start = now.replace(second=0, microsecond=0) - timedelta(minutes=window_minutes)
    report_id = hashlib.sha256(f"outbound-limit\n{mailbox}\n{window_start.isoformat()}".encode()).hexdigest()
    evidence = "\n".join(
        f"{name}: {attrs[name]}"
        for name in ("sasl_username", "sender", "client_address", "client_name", "helo_name", "queue_id")
        if attrs.get(name)
    )
    return AbuseReport(
        report_id=report_id,
        format="outbound-limit",
        category="spam",
        category_confidence=1.0,
        source_label="recipients-per-hour",
        emails=[mailbox],
        reporter=None,
        reporter_kind="internal",
        automated=True,
        subject=f"{mailbox} sent to more than {limit} recipients in {window_minutes} minutes",
        observed_at=now,
        received_at=now,
        evidence=f"More than {limit} recipients within {window_minutes} minutes (limit reached at {now.isoformat()}).\n"
        + evidence,
    )
