"""Consume semantics on the real broker: ack after the handler, bounded redelivery, dead letters and replay."""

from __future__ import annotations

import asyncio

import aio_pika

from core.broker import Broker
from core.messages import Message, ReportParsed
from core.report import AbuseReport
from core.settings import Settings


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def parsed(report_id: str = "r1") -> ReportParsed:
    return ReportParsed(report_id=report_id, report=AbuseReport(report_id=report_id))


async def dead_count(broker: Broker, queue: str) -> int:
    return {s.queue: s.dead for s in await broker.stats()}[queue]


async def test_handler_success_acks(broker: Broker) -> None:
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.message_id)

    await broker.consume("policy.reports", handler)
    sent = parsed()
    await broker.publish(sent)
    await wait_for(lambda: _true(seen))
    await asyncio.sleep(0.3)
    stats = {s.queue: s for s in await broker.stats()}
    assert seen == [sent.message_id]
    assert stats["policy.reports"].messages == 0 and stats["policy.reports"].dead == 0


async def _true(value: list[str]) -> bool:
    return bool(value)


async def test_poison_message_goes_to_dead_queue_at_once(settings: Settings, broker: Broker) -> None:
    calls: list[Message] = []

    async def handler(message: Message) -> None:
        calls.append(message)

    await broker.consume("policy.reports", handler)
    conn = await aio_pika.connect(settings.amqp_url)
    ch = await conn.channel()
    ex = await ch.get_exchange(settings.prefix + "abuse-desk")
    await ex.publish(aio_pika.Message(b"not json at all"), routing_key="report.parsed.v1")
    await conn.close()

    async def dead() -> bool:
        return await dead_count(broker, "policy.reports") == 1

    await wait_for(dead)
    assert calls == []
    letters = await broker.dead_letters("policy.reports")
    assert [d.body for d in letters] == [b"not json at all"]
    assert letters[0].reason == "rejected"


async def test_failing_handler_is_retried_a_bounded_number_of_times_then_replayed(broker: Broker) -> None:
    attempts: list[str] = []
    fixed = asyncio.Event()

    async def handler(message: Message) -> None:
        attempts.append(message.message_id)
        if not fixed.is_set():
            raise RuntimeError("bug in the handler")

    await broker.consume("policy.reports", handler, retry_delay=0.01)
    await broker.publish(parsed())

    async def dead() -> bool:
        return await dead_count(broker, "policy.reports") == 1

    await wait_for(dead, timeout=60)
    tries = len(attempts)
    assert 2 <= tries <= 7  # delivery limit 5: first delivery + bounded redeliveries
    await asyncio.sleep(0.5)
    assert len(attempts) == tries  # no hot loop once dead

    fixed.set()
    assert await broker.replay("policy.reports") == 1

    async def handled() -> bool:
        return len(attempts) == tries + 1 and await dead_count(broker, "policy.reports") == 0

    await wait_for(handled)
