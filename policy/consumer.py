"""Policy glue: consume parsed reports and action events, commit decisions, then publish the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import ContractError
from core.messages import Message, Publish, ReportParsed, decode_message, utcnow
from core.report import AbuseReport
from core.settings import Settings
from policy import outbox
from policy.events import action_event
from policy.incidents import incidents_of
from policy.intake import bulk_arrived, report_arrived, reports_arrived
from policy.resolve import Resolver, SystemResolver
from policy.tables import outbox as outbox_table
from policy.unit import Unit

log = structlog.get_logger("policy.consumer")
_UNPUBLISHED = (
    select(outbox_table.c.id, outbox_table.c.body)
    .where(outbox_table.c.published_at.is_(None), outbox_table.c.held.is_(False))
    .order_by(outbox_table.c.id)
)

PARALLEL = 8  # PostgreSQL: reports decided at once per process (each holds a pooled connection)
BULK_TURN = 10  # customers of a bulk report per transaction (an ordinary report waits one short transaction at most)
BULK_WAIT = 1.0  # seconds a bulk report's next step waits for ordinary reports to be decided, at most
BULK_GRACE = 0.02  # seconds without an ordinary report before a bulk report's step goes
BULK_SHARE = 0.2  # of a worker that ordinary reports keep busy, at most this share goes to forced bulk steps
UPSTREAM_TIMEOUT = 0.1  # seconds the broker may take to say how many reports wait; then it is not known


@dataclass
class _Waiting:
    """A small report waiting for its turn in a batch, and the cases it was decided into once committed."""

    report: AbuseReport
    decided: asyncio.Future[list[str]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class PolicyWorker:
    """Decides reports and drains the outbox; two reports about one customer never decide at once.

    PostgreSQL: several reports at once (the transaction locks the customers it decides, in one order, as
    replicas do). SQLite (one writer): the process's writes take turns on one lock; small reports that wait
    for it are decided together in one transaction, in order of arrival, each acked only after that commit (a
    batch that fails is decided again one by one, so one bad report fails alone). A bulk report (more
    incidents than `policy.group_batch`) goes in steps, each once no ordinary report is being decided (see
    `_turn`): its split asks the inventory in chunks, its decisions go `BULK_TURN` customers per transaction,
    so a 100,000-row feed does not hold the complaints behind it for the minute it takes.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        publish: Publish,
        clock: Callable[[], datetime] = utcnow,
        resolver: Resolver | None = None,
        upstream: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.engine = engine
        self.upstream = upstream  # reports waiting in the broker for this worker (or for normalize, before it)
        self.settings = settings
        self.publish = publish
        self.clock = clock
        trust = settings.trust
        self.resolver = resolver or SystemResolver(trust.hosts, trust.dns_timeout, enabled=trust.resolve_urls)
        self.parallel = engine.dialect.name == "postgresql"
        self._writer = asyncio.Lock()  # SQLite: one write transaction of this worker at a time
        self._running = asyncio.Semaphore(PARALLEL)  # PostgreSQL: bounded by the connection pool
        self._waiting: list[_Waiting] = []
        self._ordinary = 0  # ordinary reports being decided or waiting; a bulk report steps in when none is
        self._quiet = asyncio.Event()
        self._last_ordinary = 0.0  # loop time an ordinary report was last decided
        self._last_bulk_step = 0.0  # seconds the last step of a bulk report took
        self._quiet.set()
        self._drain_lock = asyncio.Lock()
        self._next_drain: asyncio.Future[int] | None = None
        self._draining: set[asyncio.Future[int]] = set()  # strong references to the drains started by drain_soon

    async def on_report(self, message: Message) -> None:
        """report.parsed.v1 → case + decision + commands (committed; the message is acked then) → publish."""
        if not isinstance(message, ReportParsed):
            raise ContractError(f"policy.reports got {message.type}")
        report = message.report
        if len(incidents_of(report)) > self.settings.policy.group_batch:  # a bulk report: in turns, after the others
            batch = min(self.settings.policy.group_batch, BULK_TURN)
            decided = await bulk_arrived(
                self.engine, report, self.settings, self.clock(), resolver=self.resolver, turn=self._turn, batch=batch
            )
        else:
            self._ordinary += 1
            self._quiet.clear()
            try:
                decided = await (self._one(report) if self.parallel else self._batched(report))
            finally:
                self._ordinary -= 1
                self._last_ordinary = asyncio.get_running_loop().time()
                if not self._ordinary:
                    self._quiet.set()
        log.info("policy.decided", case_ids=decided[:20], cases=len(decided))
        self.drain_soon()

    async def _one(self, report: AbuseReport) -> list[str]:
        async with self._running:  # PostgreSQL: no more decisions at once than the pool holds connections for
            return await report_arrived(self.engine, report, self.settings, self.clock(), resolver=self.resolver)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """A bulk report's next step: once no ordinary report has been decided or waiting for `BULK_GRACE` seconds
        (the broker's next deliveries come right after the acks of a batch) and none is on its way from the
        broker (`upstream`: a batch of a whole prefetch leaves more behind it; a count that did not fall in a grace
        is of reports that cannot come now, normalize away or the prefetch full), or after `BULK_WAIT` seconds, so
        a steady stream cannot starve it. A step forced that way waits longer after a long step (`BULK_SHARE`), so
        a stream that keeps the worker busy keeps most of it; then, on SQLite, the writer lock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(BULK_WAIT, self._last_bulk_step * (1 - BULK_SHARE) / BULK_SHARE)
        before: int | None = None  # reports the broker held at the last look
        while (left := deadline - loop.time()) > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), left)
            idle = loop.time() - self._last_ordinary
            if self._quiet.is_set() and idle >= BULK_GRACE:
                waiting = await self._upstream()
                if not waiting or (before is not None and waiting >= before):
                    break
                before, idle = waiting, 0.0  # on their way: look again after a grace
            else:
                before = None  # the worker has had reports since: the next look starts over
            await asyncio.sleep(min(BULK_GRACE - idle, deadline - loop.time()) if self._quiet.is_set() else 0)
        async with self._writer if not self.parallel else nullcontext():
            started = loop.time()
            try:
                yield
            finally:
                self._last_bulk_step = loop.time() - started

    async def _upstream(self) -> int:
        """Reports waiting in the broker for this worker; 0 when not known (no broker given, or it did not answer
        within `UPSTREAM_TIMEOUT`: a broker away does not hold a bulk step past its deadline)."""
        if self.upstream is None:
            return 0
        try:
            return await asyncio.wait_for(self.upstream(), UPSTREAM_TIMEOUT)
        except Exception as exc:  # a bulk step goes as it did without it: the forced wait still bounds its share
            log.debug("policy.upstream_unknown", error=repr(exc))
            return 0

    async def _batched(self, report: AbuseReport) -> list[str]:
        """Wait for the writer; whoever holds it decides what waits (up to `group_batch`, oldest first)."""
        mine = _Waiting(report)
        self._waiting.append(mine)
        try:
            while not mine.decided.done():
                async with self._writer:
                    if not mine.decided.done():
                        await self._decide_waiting()
        except BaseException:
            if mine in self._waiting:  # cancelled (handler timeout) before anybody took it: nobody else will
                self._waiting.remove(mine)
            raise
        return mine.decided.result()

    async def _decide_waiting(self) -> None:
        """Decide the oldest waiting reports in one transaction; on failure, each again in its own."""
        size = self.settings.policy.group_batch
        taken, self._waiting[:size] = self._waiting[:size], []
        for n, group in enumerate([taken] if len(taken) == 1 else [taken, *([w] for w in taken)]):
            try:
                results = await reports_arrived(
                    self.engine, [w.report for w in group], self.settings, self.clock(), resolver=self.resolver
                )
            except asyncio.CancelledError:
                self._waiting[:0] = [w for w in taken if not w.decided.done()]  # back in line, in order
                raise
            except Exception as exc:
                if len(group) == 1:  # alone: it fails its own message only
                    group[0].decided.set_exception(exc)
                else:
                    log.warning("policy.batch_failed", reports=len(group), error=repr(exc))
                continue
            for w, decided in zip(group, results, strict=True):
                w.decided.set_result(decided)
            if n == 0:
                return

    async def on_event(self, message: Message) -> None:
        """Action events → the case (suspended once the platform confirmed; flagged and ops alerted when it failed)."""
        async with self._writer if not self.parallel else nullcontext(), self.engine.begin() as conn:
            waiting = await action_event(Unit(conn, self.settings, self.clock()), message)
        if waiting:
            self.drain_soon()

    def drain_soon(self) -> None:
        """Publish what was just committed, without waiting for it: the message is acked once its decision is
        committed (the outbox keeps the commands; a drain that fails is repeated by `drain_forever`), and a
        report's handler does not wait while a bulk report's thousands of commands are published."""
        if self._next_drain is not None and not self._next_drain.done():
            return  # a drain that has not started yet will see this commit
        task = asyncio.ensure_future(self.drain())
        self._draining.add(task)
        task.add_done_callback(self._drained)

    def _drained(self, task: asyncio.Future[int]) -> None:
        self._draining.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("policy.outbox_drain_failed", error=repr(task.exception()))

    async def drain(self) -> int:
        """Publish whatever the outbox holds (after each commit, at start, and periodically).

        Callers that come while a drain runs share the next one (it starts after their commits): one drain
        serves a whole batch of decisions."""
        if self._next_drain is None or self._next_drain.done():
            self._next_drain = asyncio.ensure_future(self._drain_next())
        return await asyncio.shield(self._next_drain)

    async def _drain_next(self) -> int:
        async with self._drain_lock:  # one drain at a time per process: no message published twice from here
            self._next_drain = None  # whoever comes from now on needs a drain that starts after this one
            if self.parallel:
                return await outbox.drain(self.engine, self.publish)
            return await self._drain_sqlite()

    async def _drain_sqlite(self, batch: int = 200) -> int:
        """outbox.drain for SQLite's one writer: publish in order, then mark what went in one write that takes
        its turn on the worker's writer lock (a write of its own would starve behind back-to-back decisions).
        A crash before the mark publishes those messages again: their consumers are idempotent."""
        done = 0
        while True:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(_UNPUBLISHED.limit(batch))).all()
            if not rows:
                return done
            sent: list[int] = []
            try:
                for row in rows:
                    await self.publish(decode_message(row.body.encode()))
                    sent.append(row.id)
            finally:
                if sent:
                    async with self._writer, self.engine.begin() as conn:
                        mark = update(outbox_table).where(outbox_table.c.id.in_(sent)).values(published_at=utcnow())
                        await conn.execute(mark)
            done += len(sent)

    async def drain_forever(self, interval: float = 5.0) -> None:
        """Background loop: a crash between commit and publish is repaired within `interval` seconds."""
        while True:
            try:
                await self.drain()
            except Exception as exc:  # the broker may be away; try again later
                log.warning("policy.outbox_drain_failed", error=repr(exc))
            await asyncio.sleep(interval)
