"""Retries exhausted: a suspension whose platform cannot be reached is given up once with action.failed.v1;
the platform back and the dead letter replayed, the case gets service.suspended.v1 (real RabbitMQ)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk import deadletters
from actions.ledger import suspension_progress
from actions.suspend import SuspendWorker, make_backend
from core.action_settings import SuspendConfig
from core.broker import Broker
from core.messages import ActionFailed, Message, ServiceSuspended, SuspendService, decode_message
from core.redelivery import DeadLetter
from core.topology import DEFAULT_DELIVERY_LIMIT
from tests.conftest import free_port
from tests.integration.tcpproxy import TcpProxy
from tests.panels import WebhookFake, serve


class Events:
    def __init__(self) -> None:
        self.seen: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.seen.append(message)

    def of(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.seen if isinstance(m, kind)]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def test_closed_port_gives_up_once_then_replay_suspends(engine: AsyncEngine, broker: Broker) -> None:
    events = Events()
    fake = WebhookFake()
    with serve(fake):
        proxy = TcpProxy("127.0.0.1", int(fake.url.split(":")[2].split("/")[0]))
        proxy.port = free_port()  # nothing listens there yet: the platform's port is closed
        values = {"backend": "webhook", "secret": "s3cret", "timeout": 1.0, "attempts": 1, "backoff": 0.0}
        config = SuspendConfig.model_validate(values | {"url": f"http://127.0.0.1:{proxy.port}/hook"})
        worker = SuspendWorker(make_backend(config, engine), events)

        async def dead(letter: DeadLetter) -> None:
            """The dead-letter keeper, and (standing in for the broker's last-attempt hook, which calls it
            once when it dead-letters a command) the worker's `given_up` with the handler's error."""
            await deadletters.keep(engine, letter)
            if letter.queue == "actions.suspend":
                await worker.given_up(decode_message(letter.body), letter.error)

        await broker.consume_dead(dead)
        await broker.consume("actions.suspend", worker.handle, retry_delay=0.02)
        command = SuspendService(case_id="K1", customer_id="C1", service_ids=["S1"], reason="phishing kit")
        await broker.publish(command)

        async def given_up() -> bool:
            return bool(events.of(ActionFailed))

        await until(given_up, "action.failed.v1 after the retries")
        await broker.idle(timeout=10)
        [failed] = events.of(ActionFailed)  # exactly one, for the case, with the real error
        assert isinstance(failed, ActionFailed)
        assert (failed.case_id, failed.action, failed.command_id) == ("K1", "suspend", command.message_id)
        assert "ConnectError" in failed.reason and failed.report_id == command.report_id
        assert events.of(ServiceSuspended) == []
        [row] = await suspension_progress(engine, "K1")
        assert row["state"] == "pending" and row["attempts"] == DEFAULT_DELIVERY_LIMIT  # "under way: 5 attempts"
        assert "ConnectError" in str(row["last_error"])
        async with engine.connect() as conn:
            [kept] = await deadletters.list_letters(conn, queue="actions.suspend")
        assert kept["case_id"] == "K1" and "ConnectError" in str(kept["error"])

        await proxy.start()  # the platform is back
        assert len(await deadletters.replay(engine, broker, actor="ops", queue="actions.suspend")) == 1

        async def suspended() -> bool:
            return bool(events.of(ServiceSuspended))

        await until(suspended, "service.suspended.v1 after the replay")
        await broker.idle(timeout=10)
        await proxy.cut()
    [done] = events.of(ServiceSuspended)
    assert isinstance(done, ServiceSuspended) and done.case_id == "K1" and done.service_ids == ["S1"]
    assert len(events.of(ActionFailed)) == 1 and fake.suspend_calls == 1 and fake.suspended == {"S1"}
    [row] = await suspension_progress(engine, "K1")
    assert row["state"] == "active" and row["last_error"] is None
