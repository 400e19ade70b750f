"""Retries exhausted: a suspension whose platform cannot be reached is given up once with action.failed.v1;
the platform back and the dead letter replayed, the case gets service.suspended.v1 (real RabbitMQ)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import suspension_progress
from actions.suspend import SuspendWorker, make_backend
from core import redelivery
from core.action_settings import SuspendConfig
from core.broker import Broker
from core.messages import ActionFailed, Message, ServiceSuspended, SuspendService, decode_message
from core.settings import Settings
from core.topology import DEFAULT_DELIVERY_LIMIT, QueueSpec
from tests.conftest import free_port
from tests.integration.tcpproxy import TcpProxy
from tests.panels import WebhookFake, serve

GiveUp = Callable[[Message, str], Awaitable[None]]


class GivingUpBroker(Broker):
    """The broker with the last-attempt hook the suspend worker needs (see ARCHITECTURE, "backend failures"):
    once a message has been moved to `<queue>.dead` because its retries are exhausted, `on_give_up(message,
    error)` runs with the handler's error. Stands in until core.broker.consume takes such a hook itself."""

    on_give_up: GiveUp | None = None

    async def _settle(
        self,
        spec: QueueSpec,
        incoming: AbstractIncomingMessage,
        error: str,
        attempts: int,
        reason: str,
        wait: float = 0.0,
    ) -> None:
        await super()._settle(spec, incoming, error, attempts, reason, wait)
        if reason == redelivery.RETRIES_EXHAUSTED and self.on_give_up is not None:
            await self.on_give_up(decode_message(incoming.body), error)


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[GivingUpBroker]:
    b = GivingUpBroker(settings.amqp_url, settings.prefix)
    await b.connect(attempts=3)
    yield b
    await b.close()


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


async def test_closed_port_gives_up_once_then_replay_suspends(engine: AsyncEngine, broker: GivingUpBroker) -> None:
    events = Events()
    fake = WebhookFake()
    with serve(fake):
        proxy = TcpProxy("127.0.0.1", int(fake.url.split(":")[2].split("/")[0]))
        proxy.port = free_port()  # nothing listens there yet: the platform's port is closed
        values = {"backend": "webhook", "secret": "s3cret", "timeout": 1.0, "attempts": 1, "backoff": 0.0}
        config = SuspendConfig.model_validate(values | {"url": f"http://127.0.0.1:{proxy.port}/hook"})
        worker = SuspendWorker(make_backend(config, engine), events)
        broker.on_give_up = worker.given_up
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
        assert {s.queue: s.dead for s in await broker.stats()}["actions.suspend"] == 1

        await proxy.start()  # the platform is back
        assert await broker.replay("actions.suspend") == 1

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
