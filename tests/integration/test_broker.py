"""Consume semantics on the real broker: ack after the handler, retries that free the consumer, dead letters that
explain themselves, handler timeouts, the idle helper, prefixes joined with a separator, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import uuid

import aio_pika
import aiormq
import pytest

from core import packing, redelivery
from core.broker import BIG_BODY, Broker
from core.errors import ContractError
from core.messages import Message, ReportParsed
from core.report import AbuseReport, Incident
from core.settings import Settings
from core.topology import QUEUES


def parsed(report_id: str = "r1") -> ReportParsed:
    return ReportParsed(report_id=report_id, report=AbuseReport(report_id=report_id))


async def counts(broker: Broker, queue: str = "policy.reports") -> tuple[int, int, int]:
    """(waiting, retrying, dead) of one queue."""
    s = {s.queue: s for s in await broker.stats()}[queue]
    return s.messages, s.retrying, s.dead


async def until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_handler_success_acks_and_leaves_the_queues_idle(broker: Broker) -> None:
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.message_id)

    await broker.consume("policy.reports", handler)
    sent = parsed()
    await broker.publish(sent)
    await until(lambda: _nonempty(seen))
    await broker.idle(timeout=10)
    assert seen == [sent.message_id]
    assert await counts(broker) == (0, 0, 0)


async def test_ready_counts_what_waits_undelivered_each_time_it_is_asked(broker: Broker) -> None:
    assert await broker.ready(("ingest.normalize", "policy.reports")) == 0
    for n in range(3):
        await broker.publish(parsed(f"r{n}"))
    assert await broker.ready(("policy.reports",)) == 3
    await broker.publish(parsed("r3"))  # asked again on the same channel: the broker's answer, not a remembered one
    assert await broker.ready(("ingest.normalize", "policy.reports")) == 4
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.message_id)

    await broker.consume("policy.reports", handler)
    await broker.idle(timeout=10)
    assert len(seen) == 4 and await broker.ready(("policy.reports",)) == 0


async def _nonempty(value: list[str]) -> bool:
    return bool(value)


@pytest.mark.parametrize("lines", [False, True], ids=["one-document", "lines-of-incidents"])
async def test_a_body_over_a_megabyte_is_decoded_whole_and_acked(broker: Broker, lines: bool) -> None:
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)

    await broker.consume("policy.reports", handler)
    if lines:  # a bulk report: its incidents in lines, decoded a line per turn of the loop
        rows = [Incident(ip=f"198.18.{n // 250}.{n % 250}", evidence="x" * 300) for n in range(4000)]
        report = AbuseReport(report_id="big", incidents=rows)
    else:  # ~1.3 MB of one JSON document: decoded in one step
        report = AbuseReport(report_id="big", urls=[f"http://host{n}.example/{'x' * 200}" for n in range(6000)])
    sent = ReportParsed(report_id="big", report=report)
    assert len(sent.to_bytes()) > BIG_BODY and (sent.to_bytes().count(b"\n") > 1) == lines
    await broker.publish(sent)
    await until(lambda: _nonempty(seen))  # type: ignore[arg-type]
    await broker.idle(timeout=10)
    assert seen == [sent] and await counts(broker) == (0, 0, 0)


async def test_a_bulk_body_travels_packed_and_its_dead_letter_is_kept_unpacked(
    settings: Settings, broker: Broker
) -> None:
    rows = [Incident(ip=f"198.18.{n // 250}.{n % 250}", evidence='"ip","port"\n"x","6379"') for n in range(6000)]
    sent = ReportParsed(report_id="feed", report=AbuseReport(report_id="feed", incidents=rows))
    await broker.declare()
    await broker.publish(sent)
    conn = await aio_pika.connect(settings.amqp_url)
    try:  # what the broker holds: gzip, a fraction of the JSON
        ch = await conn.channel()
        queue = await ch.declare_queue(broker.name("policy.reports"), passive=True)
        held = await queue.get(no_ack=False, timeout=10)
        assert held.content_encoding == "gzip" and held.body[:2] == b"\x1f\x8b"
        assert len(held.body) * 10 < len(sent.to_bytes())
        await held.nack(requeue=True)
    finally:
        await conn.close()

    async def refuse(message: Message) -> None:
        assert message == sent  # unpacked and decoded whole
        raise ContractError("refused by the test")

    await broker.consume("policy.reports", refuse)

    async def dead() -> bool:
        return (await counts(broker))[2] == 1

    await until(dead)
    [letter] = await broker.dead_letters("policy.reports")
    assert letter.body == sent.to_bytes() and "refused by the test" in letter.error
    # a body stored packed (a keeper that predates packing kept it as it came) is put back packed once, not twice
    noise = [Incident(ip=f"198.18.{n // 250}.{n % 250}", evidence=os.urandom(120).hex()) for n in range(12000)]
    sent = ReportParsed(report_id="noisy", report=AbuseReport(report_id="noisy", incidents=noise))
    stored = packing.pack(sent.to_bytes())
    assert len(stored) > packing.PACK_OVER
    await broker.publish_to_queue("policy.reports", stored, message_id="again", type=sent.type, headers={})

    async def dead_again() -> bool:
        return (await counts(broker))[2] == 2

    await until(dead_again)
    _first, again = await broker.dead_letters("policy.reports")
    assert again.message_id == "again" and again.body == sent.to_bytes() and "refused by the test" in again.error


async def test_poison_message_goes_to_dead_queue_at_once_with_the_reason(settings: Settings, broker: Broker) -> None:
    calls: list[Message] = []

    async def handler(message: Message) -> None:
        calls.append(message)

    await broker.consume("policy.reports", handler)
    conn = await aio_pika.connect(settings.amqp_url)
    ch = await conn.channel()
    ex = await ch.get_exchange(broker.name("abuse-desk"))
    await ex.publish(aio_pika.Message(b"not json at all"), routing_key="report.parsed.v1")
    await conn.close()

    async def dead() -> bool:
        return (await counts(broker))[2] == 1

    await until(dead)
    assert calls == []
    [letter] = await broker.dead_letters("policy.reports")
    assert letter.body == b"not json at all"
    assert letter.reason == redelivery.REJECTED and "not a valid abuse-desk message" in letter.error


async def test_failing_handler_is_tried_delivery_limit_times_then_dead_with_its_real_error_then_replayed(
    broker: Broker,
) -> None:
    attempts: list[str] = []
    fixed = asyncio.Event()

    async def handler(message: Message) -> None:
        attempts.append(message.message_id)
        if not fixed.is_set():
            raise RuntimeError("bug in the handler: customer C1 has no e-mail")

    await broker.consume("policy.reports", handler, retry_delay=0.01)
    await broker.publish(parsed())

    async def dead() -> bool:
        return (await counts(broker))[2] == 1

    await until(dead, timeout=30)
    await broker.idle(timeout=10)
    assert len(attempts) == 5  # the topology's delivery limit, exactly
    [letter] = await broker.dead_letters("policy.reports")
    assert letter.reason == redelivery.RETRIES_EXHAUSTED
    assert letter.error == "RuntimeError: bug in the handler: customer C1 has no e-mail"
    assert letter.attempts == 5
    assert letter.headers[redelivery.QUEUE_HEADER] == "policy.reports"
    assert letter.headers["report_id"] == "r1"  # the message's own headers travel with it

    fixed.set()
    assert await broker.replay("policy.reports") == 1
    await until(lambda: _length_is(attempts, 6))
    await broker.idle(timeout=10)
    assert await counts(broker) == (0, 0, 0)


async def _length_is(value: list[str], n: int) -> bool:
    return len(value) == n


async def test_a_failed_message_waits_in_the_retry_queue_without_holding_the_consumer(settings: Settings) -> None:
    broker = Broker(settings.amqp_url, settings.prefix, prefetch=1)  # one message at a time
    await broker.connect(attempts=3)
    order: list[str] = []
    try:

        async def handler(message: Message) -> None:
            order.append(message.report_id or "")
            if message.report_id == "slow" and order.count("slow") == 1:
                raise RuntimeError("backend answered 503")

        await broker.consume("policy.reports", handler, retry_delay=1.5)
        await broker.publish(parsed("slow"))
        await until(lambda: _length_is(order, 1))
        await broker.publish(parsed("quick"))
        await until(lambda: _length_is(order, 2), timeout=1.0)  # well before the 1.5 s retry delay is over
        assert order == ["slow", "quick"]
        assert (await counts(broker))[1] == 1  # "slow" waits in policy.reports.retry
        await until(lambda: _length_is(order, 3), timeout=10)
        await broker.idle(timeout=10)
        assert order == ["slow", "quick", "slow"]
        assert await counts(broker) == (0, 0, 0)
    finally:
        await broker.delete_topology()
        await broker.close()


async def test_a_handler_past_its_timeout_counts_as_a_failure_and_dead_letters_say_so(broker: Broker) -> None:
    runs: list[str] = []

    async def hangs(message: Message) -> None:
        runs.append(message.message_id)
        await asyncio.Event().wait()

    await broker.consume("policy.reports", hangs, retry_delay=0.01, timeout=0.2)
    await broker.publish(parsed())

    async def dead() -> bool:
        return (await counts(broker))[2] == 1

    await until(dead, timeout=30)
    [letter] = await broker.dead_letters("policy.reports")
    assert len(runs) == 5
    assert letter.error == "handler timed out after 0.2s" and letter.reason == redelivery.RETRIES_EXHAUSTED


async def test_idle_waits_for_a_running_handler(broker: Broker) -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def handler(message: Message) -> None:
        await release.wait()
        done.append(message.message_id)

    await broker.consume("policy.reports", handler)
    await broker.publish(parsed())
    with pytest.raises(TimeoutError, match="1 running"):
        await broker.idle(timeout=0.5)
    release.set()
    await broker.idle(timeout=10)
    assert len(done) == 1


async def test_a_prefix_is_joined_with_a_separator_and_deleted_with_everything_it_declared(settings: Settings) -> None:
    prefix = f"newcomer{uuid.uuid4().hex[:6]}"
    broker = Broker(settings.amqp_url, prefix)
    await broker.connect(attempts=3)
    names = [f"{prefix}.{n}" for spec in QUEUES for n in (spec.name, spec.retry, spec.dead)]
    try:
        assert broker.name("actions.notify") == f"{prefix}.actions.notify"
        assert Broker(settings.amqp_url, "").name("actions.notify") == "actions.notify"
        assert Broker(settings.amqp_url, "t1.").name("actions.notify") == "t1.actions.notify"
        await broker.publish(parsed())
        assert (await counts(broker))[0] == 1
    finally:
        await broker.delete_topology()
        await broker.close()
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        left = []
        for name in names:
            ch = await conn.channel()
            try:
                await ch.declare_queue(name, passive=True)
                left.append(name)
                await ch.close()
            except aiormq.exceptions.ChannelNotFoundEntity:
                pass
        assert left == []
    finally:
        await conn.close()
