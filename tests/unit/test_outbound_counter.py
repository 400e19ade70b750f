"""The group-commit queue of the outbound counters: every request is decided, batches in arrival order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from actions.outbound import OutboundCounter
from actions.outbound_store import Batch, Limit, Verdict, decide_batch
from core.action_settings import OutboundConfig

NOW = datetime(2026, 11, 30, 10, 0, 30, tzinfo=UTC)


class MemoryStore:
    """decide_batch over totals in memory; `pause` makes a batch wait so that others queue behind it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.totals: dict[str, int] = {}
        self.batches: list[int] = []
        self.pause: asyncio.Event | None = None

    async def admit(self, batch: Batch, bucket: datetime, since: datetime, prune: bool) -> list[Verdict]:
        if self.pause is not None:
            await self.pause.wait()
        for limits in batch:
            for limit in limits:
                self.totals.setdefault(limit.key, 0)
        self.batches.append(len(batch))
        return decide_batch(batch, self.totals)[0]

    async def close(self) -> None:
        return None


def counter(store: MemoryStore) -> OutboundCounter:
    return OutboundCounter(cast(AsyncEngine, None), OutboundConfig(), store)


async def test_a_request_right_after_the_queue_emptied_starts_a_new_flusher() -> None:
    store = MemoryStore(workers=1)
    guard = counter(store)
    limits = [Limit("a@one.example", 3, "a@one.example")]
    # Each await wakes up before the finished flusher's done-callback has run: the next admit must not wait on it.

    async def one_after_another() -> list[Verdict]:
        return [await guard.admit(limits, NOW) for _ in range(5)]

    verdicts = await asyncio.wait_for(one_after_another(), 2)
    assert [v.accepted for v in verdicts] == [True, True, True, False, False]
    assert store.batches == [1, 1, 1, 1, 1]


async def test_requests_arriving_during_a_transaction_are_decided_together_in_the_next() -> None:
    store = MemoryStore(workers=1)
    store.pause = asyncio.Event()
    guard = counter(store)
    limits = [Limit("a@one.example", 4, "a@one.example"), Limit("customer:C1", 60, "the account")]
    first = asyncio.ensure_future(guard.admit(limits, NOW))
    await asyncio.sleep(0)  # the first batch is in its transaction
    rest = [asyncio.ensure_future(guard.admit(limits, NOW)) for _ in range(5)]
    store.pause.set()
    verdicts = await asyncio.wait_for(asyncio.gather(first, *rest), 2)
    assert store.batches == [1, 5]
    assert [v.accepted for v in verdicts] == [True] * 4 + [False] * 2
    assert verdicts[-1].over == limits[0] and verdicts[-1].total == 4
    await guard.close()
