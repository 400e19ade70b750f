"""Where the recipient counters are counted: one SQLite transaction in a thread, or one PostgreSQL function call."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

PG_WORKERS = 2  # counting transactions in flight at once on PostgreSQL, each on its own connection


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


Batch = Sequence[Sequence[Limit]]


def decide_batch(batch: Batch, totals: dict[str, int]) -> tuple[list[Verdict], dict[str, int]]:
    """Requests in arrival order against the committed totals: the verdicts and what each counter gains.

    Pure; `totals` (every key of the batch, 0 when unseen) is updated in place as recipients are accepted.
    PostgreSQL's `outbound_admit()` (migration 0012) is the same loop in PL/pgSQL.
    """
    added: dict[str, int] = {}
    verdicts: list[Verdict] = []
    for limits in batch:
        over = next((limit for limit in limits if totals[limit.key] >= limit.limit), None)
        if over is not None:
            verdicts.append(Verdict(False, over, totals[over.key]))
            continue
        for key in {limit.key for limit in limits}:
            totals[key] += 1
            added[key] = added.get(key, 0) + 1
        verdicts.append(Verdict(True, None, max(totals[limit.key] for limit in limits)))
    return verdicts, added


def batch_keys(batch: Batch) -> list[str]:
    """Every counter of the batch, sorted (the order rows are locked in)."""
    return sorted({limit.key for limits in batch for limit in limits})


class CountStore(Protocol):
    """Decides a batch in one committed transaction; `workers` such transactions may run at once."""

    workers: int

    async def admit(self, batch: Batch, bucket: datetime, since: datetime, prune: bool) -> list[Verdict]: ...

    async def close(self) -> None: ...


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (naive UTC), so both read and compare the same rows."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


SQLITE_SUMS = (
    "SELECT sender, SUM(count) FROM outbound_counts"
    " WHERE bucket >= ? AND sender IN (SELECT value FROM json_each(?)) GROUP BY sender"
)
SQLITE_ADD = (
    "INSERT INTO outbound_counts (sender, bucket, count) VALUES (?, ?, ?)"
    " ON CONFLICT (sender, bucket) DO UPDATE SET count = count + excluded.count"
)


class SqliteCounts:
    """The database file's own connection, used by one thread: a batch is one hop to it and one transaction.

    `BEGIN IMMEDIATE` takes the write lock before the sums are read, so replicas (processes on the same file)
    decide one batch at a time; COMMIT is in the WAL before anyone is answered (synchronous=NORMAL, as every
    connection of the desk: an application crash or restart keeps it, a power cut may lose the last commits).
    """

    workers = 1

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path, self.timeout = path, timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbound-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _admit(self, batch: Batch, bucket: datetime, since: datetime, prune: bool) -> list[Verdict]:
        import json

        conn = self._connection()
        keys = batch_keys(batch)
        conn.execute("BEGIN IMMEDIATE")
        try:
            totals = dict.fromkeys(keys, 0)
            for sender, total in conn.execute(SQLITE_SUMS, (_sqlite_time(since), json.dumps(keys))):
                totals[str(sender)] = int(total)
            verdicts, added = decide_batch(batch, totals)
            if added:
                at = _sqlite_time(bucket)
                conn.executemany(SQLITE_ADD, [(key, at, n) for key, n in sorted(added.items())])
            if prune:
                conn.execute("DELETE FROM outbound_counts WHERE bucket < ?", (_sqlite_time(since),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return verdicts

    async def admit(self, batch: Batch, bucket: datetime, since: datetime, prune: bool) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._admit, batch, bucket, since, prune)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)


PG_ADMIT = "SELECT first_full, seen_total FROM outbound_admit($1::text[], $2::int[], $3::int[], $4::int[], $5, $6)"


class PostgresCounts:
    """Connections of its own (synchronous_commit off), one `outbound_admit()` call per batch: one round trip.

    The function (migration 0012) takes an advisory lock per counter in a fixed order, then reads the sums (a new
    snapshot: what the replica that held the lock committed is counted), decides, adds and commits. With
    synchronous_commit off a commit is visible to every replica at once and survives a restart of the service;
    only a crash of PostgreSQL itself may lose its last ~0.6 s (wal_writer_delay x 3).
    """

    workers = PG_WORKERS

    def __init__(self, dsn: str, timeout: float = 30.0) -> None:
        self.dsn, self.timeout = dsn, timeout
        self._idle: list[Any] = []
        self._closed = False

    async def _connect(self) -> Any:
        if self._idle:
            return self._idle.pop()
        return await asyncpg.connect(
            self.dsn,
            timeout=10.0,  # a database outage answers fail_open's action within seconds, not asyncpg's 60
            command_timeout=self.timeout,
            server_settings={"synchronous_commit": "off", "application_name": "abuse-desk postfix-policy"},
        )

    async def admit(self, batch: Batch, bucket: datetime, since: datetime, prune: bool) -> list[Verdict]:
        keys = batch_keys(batch)
        index = {key: i + 1 for i, key in enumerate(keys)}
        requests, key_of, limit_of = [], [], []
        for n, limits in enumerate(batch, start=1):
            for limit in limits:
                requests.append(n)
                key_of.append(index[limit.key])
                limit_of.append(limit.limit)
        conn = await self._connect()
        try:
            row = await conn.fetchrow(PG_ADMIT, keys, requests, key_of, limit_of, bucket, since)
            if prune:
                await conn.execute("DELETE FROM outbound_counts WHERE bucket < $1", since)
        except BaseException:
            conn.terminate()  # in an unknown state: never handed to the next batch
            raise
        if self._closed:
            await conn.close()
        else:
            self._idle.append(conn)
        assert row is not None
        return [
            Verdict(True, None, total) if over == 0 else Verdict(False, limits[over - 1], total)
            for limits, over, total in zip(batch, row["first_full"], row["seen_total"], strict=True)
        ]

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


def count_store(engine: AsyncEngine) -> SqliteCounts | PostgresCounts:
    """The store for the engine's database (its URL, with connections of the store's own)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return PostgresCounts(url.set(drivername="postgresql").render_as_string(hide_password=False))
    if not url.database or url.database == ":memory:":
        raise ValueError("the outbound counters need a SQLite file (several connections share it)")
    return SqliteCounts(url.database)
