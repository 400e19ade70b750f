"""The policy worker under concurrent deliveries (as the broker's prefetch hands them over), on SQLite and PostgreSQL:
one case per customer however the reports interleave, a redelivery decides nothing again, a bad report in a batch
fails alone, and ordinary reports are decided between the batches of a bulk report."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import policy.consumer
import policy.intake
from core.messages import Message, ReportParsed
from core.report import AbuseReport
from core.settings import Settings
from policy.consumer import PARALLEL, PolicyWorker
from policy.deciding import decide_part
from policy.resolve import StaticResolver
from policy.tables import case_history, case_reports, cases, report_summaries
from tests.integration.test_case_service import NOW, complaint, engine, feed, strong  # noqa: F401 (fixture)


async def nowhere(message: Message) -> None:
    return None


def worker(eng: AsyncEngine, settings: Settings) -> PolicyWorker:
    return PolicyWorker(eng, strong(settings), nowhere, clock=lambda: NOW, resolver=StaticResolver({}))


async def deliver(w: PolicyWorker, reports: list[AbuseReport]) -> list[BaseException | None]:
    """Every report handed to the worker at once; what each handler raised (None: it returned, i.e. acked)."""
    results = await asyncio.gather(
        *(w.on_report(ReportParsed(report_id=r.report_id, report=r)) for r in reports), return_exceptions=True
    )
    return [r if isinstance(r, BaseException) else None for r in results]


async def turn_waited(w: PolicyWorker, took: float = 0.0) -> float:
    """Seconds a bulk step waited for its turn; the step itself takes `took` seconds."""
    loop = asyncio.get_running_loop()
    asked = loop.time()
    async with w._turn():
        waited = loop.time() - asked
        await asyncio.sleep(took)
    return waited


async def count(eng: AsyncEngine, query: Any) -> int:
    async with eng.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def test_reports_about_one_customer_delivered_at_once_join_one_case(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
) -> None:
    w = worker(engine, settings)
    reports = [complaint(f"r{n}", "203.0.113.10" if n % 2 else "192.0.2.33") for n in range(12)]
    assert await deliver(w, reports) == [None] * 12
    assert await deliver(w, reports[:5]) == [None] * 5  # redelivered (the acks were lost): nothing new
    async with engine.connect() as conn:
        per_customer = (await conn.execute(select(cases.c.customer_id, cases.c.report_count))).all()
    assert sorted(per_customer) == [("C1", 6), ("C3", 6)]
    assert await count(engine, select(func.count()).select_from(case_reports)) == 12
    assert await count(engine, select(func.count()).select_from(report_summaries)) == 12
    decisions = select(func.count()).select_from(case_history).where(case_history.c.kind == "decision")
    assert await count(engine, decisions) == 12


async def test_a_report_that_fails_in_a_batch_fails_alone(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = decide_part

    async def poison(unit: Any, report: AbuseReport, *args: Any, **kwargs: Any) -> str:
        if report.report_id.startswith("bad"):
            raise RuntimeError("poison")
        return await real(unit, report, *args, **kwargs)

    monkeypatch.setattr(policy.intake, "decide_part", poison)
    w = worker(engine, settings)
    reports = [complaint("ok1", "203.0.113.10"), complaint("bad", "198.51.100.70"), complaint("ok2", "192.0.2.33")]
    outcome = await deliver(w, reports)
    assert outcome[0] is None and outcome[2] is None
    assert isinstance(outcome[1], RuntimeError)  # its message goes to the retry queue; the others are acked
    async with engine.connect() as conn:
        decided = set((await conn.execute(select(case_reports.c.report_id))).scalars())
    assert decided == {"ok1", "ok2"}


async def test_ordinary_reports_are_decided_between_the_batches_of_a_bulk_report(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings.model_copy(update={"policy": settings.policy.model_copy(update={"group_batch": 1})})
    w = worker(engine, s)
    order: list[str] = []
    started = asyncio.Event()
    real = decide_part

    async def noting(unit: Any, report: AbuseReport, *args: Any, **kwargs: Any) -> str:
        order.append(report.report_id)
        started.set()
        return await real(unit, report, *args, **kwargs)

    monkeypatch.setattr(policy.intake, "decide_part", noting)
    monkeypatch.setattr(policy.intake, "LOOKUP_TURN", 1)  # the split asks the inventory in three turns
    bulk = feed("bulk", [("203.0.113.10", 6379), ("198.51.100.70", 6379), ("192.0.2.33", 6379)])
    task = asyncio.ensure_future(deliver(w, [bulk]))
    await started.wait()  # the bulk report's first batch is being decided
    assert await deliver(w, [complaint("small", "203.0.113.10")]) == [None]
    assert await task == [None]
    # The bulk report's next batch waited for the small one (PostgreSQL: which first waited for the lock on C1).
    assert order.index("small") < len(order) - 1, order
    query = select(cases.c.customer_id, cases.c.category, func.count()).group_by(cases.c.customer_id, cases.c.category)
    async with engine.connect() as conn:
        found = sorted((await conn.execute(query)).all())
    assert found == [("C1", "malware", 1), ("C1", "phishing", 1), ("C2", "malware", 1), ("C3", "malware", 1)]


async def test_a_bulk_report_killed_between_its_batches_and_redelivered_decides_each_customer_once(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings.model_copy(update={"policy": settings.policy.model_copy(update={"group_batch": 1})})
    w = worker(engine, s)
    calls = {"n": 0}

    async def dies_on_the_second(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("kill -9")
        return await decide_part(*args, **kwargs)

    monkeypatch.setattr(policy.intake, "decide_part", dies_on_the_second)
    bulk = feed("bulk", [("203.0.113.10", 6379), ("198.51.100.70", 6379), ("192.0.2.33", 6379)])
    [failed] = await deliver(w, [bulk])
    assert isinstance(failed, RuntimeError)
    assert await count(engine, select(func.count()).select_from(case_reports)) == 1  # the first batch committed
    assert await deliver(w, [bulk]) == [None]  # redelivered
    assert await deliver(w, [bulk]) == [None]  # and once more, after a lost ack
    async with engine.connect() as conn:
        per_customer = sorted((await conn.execute(select(cases.c.customer_id, cases.c.report_count))).all())
        [summary] = (await conn.execute(select(report_summaries.c.case_ids))).scalars()
    assert per_customer == [("C1", 1), ("C2", 1), ("C3", 1)]
    assert len(set(summary)) == 3


async def test_reports_delivered_at_once_hold_no_more_connections_than_the_worker_decides_at_once(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
) -> None:
    """The broker hands over a whole prefetch (20) at once: PostgreSQL decides `PARALLEL` of them at a time, each on
    its own pooled connection (the rest wait without one: a pool drained by waiting decisions would time out the
    events and drains beside them); SQLite decides them in one batch, on one."""
    held = peak = 0

    def checkout(*_: Any) -> None:
        nonlocal held, peak
        held += 1
        peak = max(peak, held)

    def checkin(*_: Any) -> None:
        nonlocal held
        held -= 1

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    event.listen(engine.sync_engine.pool, "checkin", checkin)
    try:
        ips = ["203.0.113.10", "192.0.2.33", "198.51.100.70"]
        reports = [complaint(f"p{n}", ips[n % 3]) for n in range(20)]
        assert await deliver(worker(engine, settings), reports) == [None] * 20
    finally:
        event.remove(engine.sync_engine.pool, "checkout", checkout)
        event.remove(engine.sync_engine.pool, "checkin", checkin)
    assert 1 <= peak <= PARALLEL + 1, peak  # + 1: the outbox drain after a commit
    assert await count(engine, select(func.count()).select_from(report_summaries)) == 20


async def test_a_busy_worker_gives_forced_bulk_steps_a_bounded_share_of_its_time(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policy.consumer, "BULK_WAIT", 0.05)
    w = worker(engine, settings)
    w._ordinary = 1  # a stream of ordinary reports that never leaves the worker idle
    w._quiet.clear()

    async def step(took: float) -> float:
        return await turn_waited(w, took)

    assert 0.05 <= await step(0.1) < 0.3  # after no step: forced after BULK_WAIT
    assert w._last_bulk_step == pytest.approx(0.1, abs=0.05)
    waited = await step(0.0)  # after a 0.1 s step: 0.4 s, so forced steps take at most BULK_SHARE of the time
    assert 0.1 * (1 - policy.consumer.BULK_SHARE) / policy.consumer.BULK_SHARE <= waited < 0.8
    assert 0.05 <= await step(0.0) < 0.3  # after a short step: BULK_WAIT again


async def test_a_bulk_step_waits_while_reports_wait_in_the_broker_and_goes_when_none_does(
    engine: AsyncEngine,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policy.consumer, "BULK_WAIT", 0.3)
    waiting = [5]  # reports the broker holds for the worker; the worker itself is idle (a batch was just acked)
    asked: list[float] = []
    loop = asyncio.get_running_loop()

    async def upstream() -> int:
        asked.append(loop.time())
        waiting[0] = max(0, waiting[0] - 1)  # they come, one per look
        return waiting[0]

    w = worker(engine, settings)
    w.upstream = upstream
    went = await turn_waited(w)
    assert len(asked) == 5  # it looked until none waited, then went, before it would have been forced
    assert 4 * policy.consumer.BULK_GRACE <= went < 0.3

    async def stuck() -> int:
        asked.append(loop.time())
        return 7  # reports that cannot come now (normalize away, or the prefetch full of bulk reports)

    asked.clear()
    w.upstream = stuck
    went = await turn_waited(w)
    assert len(asked) == 2 and went < 0.3  # a count that did not fall in a grace does not hold the step

    async def unknown() -> int:
        raise ConnectionError("broker away")

    async def hanging() -> int:
        await asyncio.Event().wait()  # a broker that never answers (a robust channel waiting for its reconnect)
        return 0

    for away in (unknown, hanging):  # the step goes as it did without one, before it would have been forced
        w.upstream = away
        assert await turn_waited(w) < 0.3
