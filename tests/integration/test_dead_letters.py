"""Dead letters are kept in the database by the keeper: listed without redelivery, replayed or discarded truthfully."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk import deadletters
from abuse_desk.database import upgrade
from abuse_desk.tables import dead_letters
from core.broker import Broker
from core.db import create_engine
from core.messages import SendNotification
from core.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        await conn.execute(dead_letters.delete())
    yield eng
    await eng.dispose()


async def bury(settings: Settings, queue: str, body: bytes, headers: dict[str, object], message_id: str = "") -> None:
    """Publish straight into `<queue>.dead`, as the broker (or the consumer, with its error header) would."""
    conn = await aio_pika.connect(settings.amqp_url)
    ch = await conn.channel(publisher_confirms=True)
    msg = aio_pika.Message(body, message_id=message_id or None, headers=headers)  # type: ignore[arg-type]
    await ch.default_exchange.publish(msg, routing_key=f"{settings.prefix}{queue}.dead")
    await conn.close()


async def rows_of(engine: AsyncEngine, count: int, timeout: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:
            found = await deadletters.list_letters(conn, states=deadletters.STATES)
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {len(found)} dead letter(s) kept"
        await asyncio.sleep(0.1)


async def test_the_keeper_stores_the_real_error_case_and_attempts_and_listing_redelivers_nothing(
    settings: Settings, broker: Broker, engine: AsyncEngine
) -> None:
    await deadletters.start_keeper(broker, engine)
    message = SendNotification(case_id="AD-TEST-1", kind="customer-warning", to="x@invalid", context={})
    await bury(
        settings,
        "actions.notify",
        message.to_bytes(),
        {"x-abuse-desk-error": "SMTPRecipientRefused(550, 'no such user')", "x-abuse-desk-attempts": 5},
        message.message_id,
    )
    await bury(settings, "policy.reports", b"\x00not json", {"x-death": [{"reason": "rejected", "count": 1}]})
    found = await rows_of(engine, 2)
    by_queue = {r["queue"]: r for r in found}
    notify = by_queue["actions.notify"]
    assert notify["error"] == "SMTPRecipientRefused(550, 'no such user')"
    assert notify["case_id"] == "AD-TEST-1" and notify["attempts"] == 5 and notify["type"] == "notification.send.v1"
    poison = by_queue["policy.reports"]
    assert poison["reason"] == "rejected" and "not JSON" in str(poison["error"])
    stats = {s.queue: s.dead for s in await broker.stats()}
    assert stats["actions.notify"] == 0  # acked once stored: nothing sits (and is counted again) in the broker
    first = [(r["id"], r["attempts"], r["state"]) for r in found]
    for _ in range(3):  # reading is a query, never a get: the counts stay as they are
        async with engine.connect() as conn:
            again = await deadletters.list_letters(conn, states=deadletters.STATES)
        assert [(r["id"], r["attempts"], r["state"]) for r in again] == first


async def test_a_replayed_letter_that_dies_again_is_shown_as_died_again(
    settings: Settings, broker: Broker, engine: AsyncEngine
) -> None:
    await deadletters.start_keeper(broker, engine)
    message = SendNotification(case_id="AD-TEST-2", kind="customer-warning", to="y@invalid", context={})
    first = {"x-abuse-desk-error": "first failure"}
    await bury(settings, "actions.notify", message.to_bytes(), first, message.message_id)
    [row] = await rows_of(engine, 1)
    done = await deadletters.replay(engine, broker, actor="alice", ids=[int(str(row["id"]))])
    assert done == [row["id"]]
    async with engine.connect() as conn:
        assert (await deadletters.outcome(conn, done)) == {"replayed": 1, "died_again": 0, "errors": []}
    # The replayed copy is on the work queue with its body intact; it fails again and is dead-lettered again.
    ch = await broker._conn.channel()  # type: ignore[union-attr]
    q = await ch.declare_queue(f"{settings.prefix}actions.notify", passive=True)
    got = await q.get(timeout=10)
    assert got.message_id == message.message_id and json.loads(got.body)["to"] == "y@invalid"
    await got.ack()
    await ch.close()
    await bury(settings, "actions.notify", got.body, {"x-abuse-desk-error": "second failure"}, message.message_id)
    await rows_of(engine, 2)
    async with engine.connect() as conn:
        result = await deadletters.outcome(conn, done)
        listed = await deadletters.list_letters(conn, states=deadletters.STATES)
    assert result == {"replayed": 1, "died_again": 1, "errors": ["second failure"]}
    assert {r["state"] for r in listed} == {"died-again", "dead"}


async def test_discard_one_and_all(settings: Settings, broker: Broker, engine: AsyncEngine) -> None:
    await deadletters.start_keeper(broker, engine)
    for i in range(3):
        m = SendNotification(case_id=None, kind="customer-warning", to=f"z{i}@invalid", context={})
        await bury(settings, "actions.notify", m.to_bytes(), {"x-abuse-desk-error": f"e{i}"}, m.message_id)
    found = await rows_of(engine, 3)
    assert await deadletters.discard(engine, actor="bob", ids=[int(str(found[0]["id"]))]) == 1
    async with engine.connect() as conn:
        assert (await deadletters.waiting(conn)) == {"actions.notify": 2}
    assert await deadletters.discard(engine, actor="bob", queue="actions.notify") == 2
    async with engine.connect() as conn:
        assert (await deadletters.waiting(conn)) == {}
        kept = await deadletters.list_letters(conn, states=("discarded",))
    assert len(kept) == 3 and {r["handled_by"] for r in kept} == {"bob"}
