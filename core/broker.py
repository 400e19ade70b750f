"""The one module that talks to RabbitMQ (aio-pika): connect, declare, publish with confirms, consume, inspect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from core.errors import ContractError, TransientError
from core.messages import Message, decode_message
from core.topology import DEAD_EXCHANGE, DEAD_QUEUE_ARGUMENTS, EXCHANGE, QUEUES, QUEUES_BY_NAME, queue_arguments

log = structlog.get_logger("core.broker")

Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class QueueStat:
    """Depth and consumers of one queue and its dead-letter queue."""

    queue: str
    messages: int
    consumers: int
    dead: int


@dataclass(frozen=True)
class DeadLetter:
    """A message sitting in a dead-letter queue, with why it got there."""

    queue: str
    message_id: str
    type: str
    reason: str
    delivery_count: int
    body: bytes


class Broker:
    """A robust connection with one confirmed publishing channel and one channel per consumer."""

    def __init__(self, url: str, prefix: str = "", *, prefetch: int = 20) -> None:
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self._conn: AbstractRobustConnection | None = None
        self._pub_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumer_channels: list[AbstractChannel] = []
        self._queues: list[AbstractQueue] = []  # strong references: robust objects are tracked weakly

    def name(self, base: str) -> str:
        """Prefixed name of an exchange or queue."""
        return self.prefix + base

    @property
    def connected(self) -> bool:
        """True while the underlying connection is open."""
        return self._conn is not None and not self._conn.is_closed

    async def connect(self, *, attempts: int = 30, delay: float = 1.0, declare: bool = True) -> None:
        """Connect (retrying at start-up), open the publishing channel and declare the topology (unless told not to)."""
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                self._conn = await aio_pika.connect_robust(self.url, reconnect_interval=2, timeout=10)
                break
            except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
                last = exc
                log.warning("broker.connect_failed", attempt=attempt, error=str(exc))
                await asyncio.sleep(delay)
        else:
            raise TransientError(f"cannot reach RabbitMQ at {_safe(self.url)}: {last}")
        self._pub_channel = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        if declare:
            await self.declare()

    async def declare(self) -> None:
        """Declare exchanges, quorum queues, bindings and dead-letter queues (idempotent)."""
        ch = self._channel()
        self._exchange = await ch.declare_exchange(self.name(EXCHANGE), aio_pika.ExchangeType.TOPIC, durable=True)
        dead_ex = await ch.declare_exchange(self.name(DEAD_EXCHANGE), aio_pika.ExchangeType.DIRECT, durable=True)
        for spec in QUEUES:
            q = await ch.declare_queue(self.name(spec.name), durable=True, arguments=queue_arguments(spec, self.prefix))
            for key in spec.bindings:
                await q.bind(self._exchange, routing_key=key)
            dq = await ch.declare_queue(self.name(spec.dead), durable=True, arguments=DEAD_QUEUE_ARGUMENTS)
            await dq.bind(dead_ex, routing_key=self.name(spec.name))

    def _channel(self) -> AbstractChannel:
        if self._pub_channel is None:
            raise TransientError("broker not connected")
        return self._pub_channel

    async def publish(self, message: Message, *, timeout: float = 10.0) -> None:
        """Publish persistent + mandatory and wait for the broker's confirm; TransientError otherwise."""
        if self._exchange is None or not self.connected:
            raise TransientError("broker not connected")
        amqp_message = aio_pika.Message(
            body=message.to_bytes(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message.message_id,
            type=message.type,
            timestamp=message.occurred_at,
            headers={"report_id": message.report_id or "", "case_id": message.case_id or ""},
        )
        try:
            confirmation = await asyncio.wait_for(
                self._exchange.publish(amqp_message, routing_key=message.type, mandatory=True),
                timeout=timeout,
            )
        except TimeoutError as exc:
            raise TransientError(f"publish of {message.type} not confirmed within {timeout}s") from exc
        except Exception as exc:
            raise TransientError(f"publish of {message.type} failed: {exc!r}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise TransientError(f"publish of {message.type} not confirmed: {confirmation!r}")

    async def consume(self, queue: str, handler: Handler, *, retry_delay: float = 1.0) -> None:
        """Consume a work queue: ack after the handler returned (its work committed).

        A message that is not one of our contracts is rejected at once (dead-lettered). A handler
        exception requeues it after a short delay; the quorum queue's delivery limit bounds the
        redeliveries and then dead-letters it.
        """
        if self._conn is None:
            raise TransientError("broker not connected")
        spec = QUEUES_BY_NAME[queue]
        channel = await self._conn.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        q = await channel.declare_queue(self.name(queue), durable=True, arguments=queue_arguments(spec, self.prefix))
        self._consumer_channels.append(channel)
        self._queues.append(q)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            try:
                message = decode_message(incoming.body)
            except ContractError as exc:
                log.error("broker.poison_message", queue=queue, error=str(exc), message_id=incoming.message_id)
                await incoming.reject(requeue=False)
                return
            with structlog.contextvars.bound_contextvars(
                report_id=message.report_id, case_id=message.case_id, message_type=message.type
            ):
                try:
                    await handler(message)
                except ContractError as exc:
                    log.error("handler.rejected", queue=queue, error=str(exc))
                    await incoming.reject(requeue=False)
                    return
                except Exception as exc:
                    count = _delivery_count(incoming)
                    log.warning("handler.failed", queue=queue, error=repr(exc), delivery_count=count)
                    await asyncio.sleep(min(retry_delay * (2**count), 30.0))
                    await incoming.reject(requeue=True)
                    return
                await incoming.ack()

        await q.consume(on_message)

    async def stats(self) -> list[QueueStat]:
        """Depth and consumer count of every queue (passive declares: creates nothing)."""
        if self._conn is None:
            raise TransientError("broker not connected")
        out = []
        for spec in QUEUES:
            ch = await self._conn.channel()
            try:
                q = await ch.declare_queue(self.name(spec.name), passive=True)
                dq = await ch.declare_queue(self.name(spec.dead), passive=True)
                out.append(
                    QueueStat(
                        spec.name,
                        q.declaration_result.message_count or 0,
                        q.declaration_result.consumer_count or 0,
                        dq.declaration_result.message_count or 0,
                    )
                )
            finally:
                await ch.close()
        return out

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        """Read (without removing) up to `limit` dead letters of a queue."""
        spec = QUEUES_BY_NAME[queue]
        if self._conn is None:
            raise TransientError("broker not connected")
        ch = await self._conn.channel()
        out: list[DeadLetter] = []
        try:
            dq = await ch.declare_queue(self.name(spec.dead), passive=True)
            while len(out) < limit:
                msg = await dq.get(no_ack=False, fail=False)
                if msg is None:
                    break
                out.append(_dead_letter(queue, msg))
        finally:
            await ch.close()  # unacked gets go back to the dead queue
        return out

    async def replay(self, queue: str, *, limit: int | None = None) -> int:
        """Move dead letters back to their work queue; returns how many were moved."""
        spec = QUEUES_BY_NAME[queue]
        if self._conn is None:
            raise TransientError("broker not connected")
        ch = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        moved = 0
        try:
            dq = await ch.declare_queue(self.name(spec.dead), passive=True)
            while limit is None or moved < limit:
                msg = await dq.get(no_ack=False, fail=False)
                if msg is None:
                    break
                headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("x-")}
                headers["replayed"] = _int(headers.get("replayed", 0)) + 1
                await ch.default_exchange.publish(
                    aio_pika.Message(
                        body=msg.body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type=msg.content_type,
                        message_id=msg.message_id,
                        type=msg.type,
                        headers=headers,
                    ),
                    routing_key=self.name(spec.name),
                    mandatory=True,
                )
                await msg.ack()
                moved += 1
        finally:
            await ch.close()
        return moved

    async def delete_topology(self) -> None:
        """Remove every prefixed queue and exchange (tests and decommissioning)."""
        if self._conn is None:
            return
        ch = await self._conn.channel()
        for spec in QUEUES:
            for name in (spec.name, spec.dead):
                await ch.queue_delete(self.name(name))
        for ex in (EXCHANGE, DEAD_EXCHANGE):
            await ch.exchange_delete(self.name(ex))
        await ch.close()

    async def close(self) -> None:
        """Close channels and the connection."""
        for ch in self._consumer_channels:
            if not ch.is_closed:
                await ch.close()
        self._consumer_channels.clear()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _delivery_count(msg: AbstractIncomingMessage) -> int:
    return _int((msg.headers or {}).get("x-delivery-count", 0))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _dead_letter(queue: str, msg: AbstractIncomingMessage) -> DeadLetter:
    deaths: Any = (msg.headers or {}).get("x-death") or []
    reason = ""
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        reason = str(deaths[0].get("reason", ""))
        if isinstance(reason, bytes):
            reason = reason.decode()
    return DeadLetter(
        queue=queue,
        message_id=msg.message_id or "",
        type=msg.type or _body_type(msg.body),
        reason=reason or "rejected",
        delivery_count=_delivery_count(msg),
        body=msg.body,
    )


def _body_type(body: bytes) -> str:
    try:
        return str(json.loads(body).get("type", ""))
    except (ValueError, AttributeError):
        return ""


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
