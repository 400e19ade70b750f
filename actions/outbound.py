"""Outgoing-mail limits: recipients per login, mailbox and customer over a sliding window, counted in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.internal_reports import limit_report
from actions.tables import outbound_counts, outbound_reports
from core.action_settings import OutboundConfig

__all__ = [
    "Limit",
    "OutboundCounter",
    "OwnerLookup",
    "SenderOwner",
    "Verdict",
    "dialect_insert",
    "limit_for",
    "limit_report",
]

MAX_BATCH = 500  # requests decided in one transaction


@dataclass(frozen=True)
class SenderOwner:
    """Whose a sending mailbox is, per the inventory: the customer, the services it belongs to, their plans."""

    customer_id: str
    service_ids: tuple[str, ...] = ()
    plans: tuple[str, ...] = field(default_factory=tuple)


OwnerLookup = Callable[[str], Awaitable[SenderOwner | None]]


@dataclass(frozen=True)
class Limit:
    """One counter a recipient is added to: its key in `outbound_counts`, its limit, how the 450 names it."""

    key: str  # a mailbox or login address, "login:NAME" (a login without "@"), "customer:ID"
    limit: int
    who: str


@dataclass(frozen=True)
class Verdict:
    """Accepted (and counted in every counter), or the first counter that is full."""

    accepted: bool
    over: Limit | None = None
    total: int = 0


def _plan_or_customer(owner: SenderOwner | None, config: OutboundConfig) -> int | None:
    if owner is None:
        return None
    if owner.customer_id in config.per_customer:
        return config.per_customer[owner.customer_id]
    plans = [config.per_plan[p] for p in owner.plans if p in config.per_plan]
    return max(plans) if plans else None


def limit_for(sender: str, owner: SenderOwner | None, config: OutboundConfig) -> int:
    """One login's or mailbox's limit: per sender, then its domain, then customer, then plan, then the default."""
    domain = sender.rpartition("@")[2]
    for key in (sender, domain):
        if key in config.per_sender:
            return config.per_sender[key]
    override = _plan_or_customer(owner, config)
    return override if override is not None else config.recipients_per_hour


def customer_limit(owner: SenderOwner, config: OutboundConfig) -> int:
    """The limit of the sum over all of a customer's mailboxes and domains."""
    override = _plan_or_customer(owner, config)
    if override is not None:
        return override
    return config.customer_recipients_per_hour or config.recipients_per_hour


def limits_for(login: str, mailbox: str, owners: Sequence[SenderOwner], config: OutboundConfig) -> list[Limit]:
    """Every counter a recipient counts in; each must have room (so the smallest limit applies)."""
    owner = owners[0] if owners else None
    found: dict[str, Limit] = {}
    if login:
        key = login if "@" in login else f"login:{login}"
        found[key] = Limit(key, limit_for(login, owner, config), login)
    if "@" in mailbox and mailbox not in found:
        found[mailbox] = Limit(mailbox, limit_for(mailbox, owners[-1] if owners else None, config), mailbox)
    for o in owners:
        key = f"customer:{o.customer_id}"
        found.setdefault(key, Limit(key, customer_limit(o, config), f"the account of {mailbox or login}"))
    return list(found.values())


def dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    """INSERT with ON CONFLICT for the connection's dialect (PostgreSQL or SQLite)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


@dataclass
class _Pending:
    limits: Sequence[Limit]
    now: datetime
    future: asyncio.Future[Verdict]


class OutboundCounter:
    """Per-minute rows summed over the window; shared by replicas through the database, kept over restarts.

    Requests that arrive while a transaction runs are decided together in the next one (group commit): a
    recipient is answered only after its count is committed. Each counter's `outbound_reports` row is locked
    first (FOR UPDATE in key order on PostgreSQL; on SQLite the first statement is a write, which takes the
    database's write lock), so replicas cannot both let the 61st recipient through. Only accepted recipients
    are counted: a deferred one does not extend the penalty. On PostgreSQL the counting transactions commit
    without waiting for the WAL flush (synchronous_commit off): replicas see the counts at once, a restart
    of the service keeps them; only a crash of PostgreSQL itself can lose the last fraction of a second.
    """

    def __init__(self, engine: AsyncEngine, config: OutboundConfig) -> None:
        self.engine = engine
        self.config = config
        self.window = timedelta(minutes=config.window_minutes)
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._known: set[str] = set()  # keys whose outbound_reports row exists (rows are never deleted)
        self._pruned: datetime | None = None

    async def admit(self, limits: Sequence[Limit], now: datetime) -> Verdict:
        """Count one recipient in every counter unless one of them is full."""
        if not limits:
            return Verdict(True)
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(limits, now, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                verdicts = await self._decide(batch)
            except Exception as exc:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, verdict in zip(batch, verdicts, strict=True):
                if not p.future.done():  # the client may have gone
                    p.future.set_result(verdict)

    async def _decide(self, batch: list[_Pending]) -> list[Verdict]:
        now = max(p.now for p in batch)
        bucket = now.replace(second=0, microsecond=0)
        since = bucket - self.window + timedelta(minutes=1)
        keys = sorted({limit.key for p in batch for limit in p.limits})
        async with self.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:  # visible to every replica at commit; only a PostgreSQL crash may lose the last ~0.6 s
                await conn.execute(text("SET LOCAL synchronous_commit = off"))
            new = [k for k in keys if k not in self._known] or ([] if postgres else keys[:1])
            if new:  # SQLite: this write comes first, so the whole batch holds the write lock
                stmt = dialect_insert(conn, outbound_reports).on_conflict_do_nothing()
                await conn.execute(stmt, [{"sender": k} for k in new])
            if postgres:
                lock = select(outbound_reports.c.sender).where(outbound_reports.c.sender.in_(keys))
                await conn.execute(lock.order_by(outbound_reports.c.sender).with_for_update())
            sums = await conn.execute(
                select(outbound_counts.c.sender, func.sum(outbound_counts.c.count))
                .where(outbound_counts.c.sender.in_(keys), outbound_counts.c.bucket >= since)
                .group_by(outbound_counts.c.sender)
            )
            totals = dict.fromkeys(keys, 0) | {str(s): int(n) for s, n in sums}
            added: dict[str, int] = {}
            verdicts: list[Verdict] = []
            for p in batch:
                over = next((limit for limit in p.limits if totals[limit.key] >= limit.limit), None)
                if over is not None:
                    verdicts.append(Verdict(False, over, totals[over.key]))
                    continue
                for key in {limit.key for limit in p.limits}:
                    totals[key] += 1
                    added[key] = added.get(key, 0) + 1
                verdicts.append(Verdict(True, None, max(totals[limit.key] for limit in p.limits)))
            if added:
                ins = dialect_insert(conn, outbound_counts)
                upsert = ins.on_conflict_do_update(
                    index_elements=["sender", "bucket"], set_={"count": outbound_counts.c.count + ins.excluded.count}
                )
                await conn.execute(upsert, [{"sender": k, "bucket": bucket, "count": added[k]} for k in sorted(added)])
            if self._pruned is None or now - self._pruned > timedelta(minutes=5):
                await conn.execute(delete(outbound_counts).where(outbound_counts.c.bucket < since))
                self._pruned = now
        self._known.update(keys)
        return verdicts

    async def claim_report(self, sender: str, report_id: str, now: datetime) -> bool:
        """True for the first crossing in a window: only then is a report published."""
        async with self.engine.begin() as conn:
            await conn.execute(dialect_insert(conn, outbound_reports).values(sender=sender).on_conflict_do_nothing())
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
