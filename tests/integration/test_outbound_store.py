"""The counting stores (SQLite thread, PostgreSQL's outbound_admit()) decide exactly as decide_batch does."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from actions.outbound_store import Limit, count_store, decide_batch
from actions.tables import outbound_counts, outbound_reports
from core.db import create_engine

KEYS = ["a@one.example", "b@one.example", "customer:C1", "customer:C2", "login:web1"]


def random_batch(rng: random.Random) -> list[list[Limit]]:
    batch = []
    for _ in range(rng.randint(1, 40)):
        keys = rng.sample(KEYS, rng.randint(1, 3))
        batch.append([Limit(k, rng.choice((5, 8, 12)), k) for k in keys])
    return batch


async def test_random_batches_get_the_verdicts_of_decide_batch(database_url: str) -> None:
    engine: AsyncEngine = create_engine(database_url)
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(outbound_counts.delete())
        await conn.execute(outbound_reports.delete())
    store = count_store(engine)
    rng = random.Random(12)
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    window = timedelta(minutes=5)
    history: list[tuple[datetime, dict[str, int]]] = []  # what each minute added, as the Python rule saw it
    try:
        for step in range(40):
            bucket = start + timedelta(minutes=step // 4)  # four batches a minute, a 5-minute window
            since = bucket - window + timedelta(minutes=1)
            totals = dict.fromkeys(KEYS, 0)
            for at, added in history:
                if at >= since:
                    for key, n in added.items():
                        totals[key] += n
            batch = random_batch(rng)
            expected, added = decide_batch(batch, totals)
            assert await store.admit(batch, bucket, since, prune=step % 7 == 6) == expected, step
            history.append((bucket, added))
    finally:
        await store.close()
    pruned = start + timedelta(minutes=4)  # the last prune (step 34: minute 8, a 5-minute window) kept from here
    async with engine.connect() as conn:  # the rows are the ones SQLAlchemy reads (SQLite: the same time text)
        rows = (await conn.execute(select(outbound_counts.c.bucket, outbound_counts.c.count))).all()
    await engine.dispose()
    assert rows and min(at for at, _ in rows) >= pruned
    assert sum(n for _, n in rows) == sum(n for at, added in history if at >= pruned for n in added.values())


@pytest.mark.databases("postgresql")
async def test_a_batch_waits_for_the_replica_holding_its_counter_and_counts_what_it_committed(
    database_url: str,
) -> None:
    import asyncpg

    engine = create_engine(database_url)
    await upgrade(engine)
    await engine.dispose()
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    other = await asyncpg.connect(database_url)  # another replica, in the middle of counting 60 recipients of the key
    store = count_store(engine)  # connections of its own, from the engine's URL
    try:
        await other.execute("DELETE FROM outbound_counts")
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT pg_advisory_xact_lock(1869968482, hashtext('a@one.example'))")
        insert = "INSERT INTO outbound_counts (sender, bucket, count) VALUES ('a@one.example', $1, 60)"
        await other.execute(insert, start)
        pending = asyncio.ensure_future(store.admit([[Limit("a@one.example", 60, "a")]], start, start, prune=False))
        deadline = asyncio.get_running_loop().time() + 10
        while not await other.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1869968482 AND NOT granted"
        ):
            assert asyncio.get_running_loop().time() < deadline, "the batch did not wait for the lock"
            await asyncio.sleep(0.01)
        assert not pending.done()
        await tx.commit()
        [verdict] = await asyncio.wait_for(pending, 10)
        assert not verdict.accepted and verdict.total == 60  # the holder's committed 60 were counted
    finally:
        await store.close()
        await other.close()
