"""Outgoing-mail limits: recipients per login, mailbox and customer over a sliding window, counted in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.internal_reports import limit_report
from actions.outbound_store import CountStore, Limit, Verdict, count_store
from actions.tables import outbound_reports
from core.action_settings import OutboundConfig

__all__ = [
    "Limit",
    "OutboundCounter",
    "OwnerLookup",
    "SenderOwner",
    "Verdict",
    "count_store",
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
    recipient is answered only after its count is committed. The counting itself is the store's
    (`actions/outbound_store.py`): on SQLite one `BEGIN IMMEDIATE` transaction in a thread of its own; on
    PostgreSQL one call of `outbound_admit()`, which takes an advisory lock per counter in a fixed order, so
    replicas cannot both let the 61st recipient through. Only accepted recipients are counted: a deferred
    one does not extend the penalty. `workers` transactions may run at once (PostgreSQL: each on its own
    connection; locks taken in a fixed order, so they never deadlock).
    """

    def __init__(self, engine: AsyncEngine, config: OutboundConfig, store: CountStore | None = None) -> None:
        self.engine = engine
        self.config = config
        self.window = timedelta(minutes=config.window_minutes)
        self.store = store if store is not None else count_store(engine)
        self._queue: list[_Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._running = 0  # flushers that have not yet found the queue empty
        self._pruned: datetime | None = None

    async def admit(self, limits: Sequence[Limit], now: datetime) -> Verdict:
        """Count one recipient in every counter unless one of them is full."""
        if not limits:
            return Verdict(True)
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(limits, now, future))
        if self._running < self.store.workers:
            self._running += 1  # given back by the flusher itself when it finds the queue empty, not a callback
            task = asyncio.ensure_future(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def close(self) -> None:
        """Let the transactions in flight finish, then close the store's own connections."""
        if self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)
        await self.store.close()

    async def _flush(self) -> None:
        try:
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
        finally:  # in the same step as the empty-queue check: a request queued after it starts a new flusher
            self._running -= 1

    async def _decide(self, batch: list[_Pending]) -> list[Verdict]:
        now = max(p.now for p in batch)
        bucket = now.replace(second=0, microsecond=0)
        since = bucket - self.window + timedelta(minutes=1)
        prune = self._pruned is None or now - self._pruned > timedelta(minutes=5)
        if prune:
            self._pruned = now
        return await self.store.admit([p.limits for p in batch], bucket, since, prune)

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
