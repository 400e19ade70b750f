"""The one module that talks to RabbitMQ (aio-pika): connect, declare, publish with confirms, consume, inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
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
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from core import packing, redelivery
from core.errors import ContractError, TransientError
from core.messages import Message, decode_message, decoding
from core.redelivery import DeadLetter
from core.steps import in_turns
from core.topology import (
    DEAD_EXCHANGE,
    DEAD_QUEUE_ARGUMENTS,
    DEFAULT_HANDLER_TIMEOUT,
    EXCHANGE,
    QUEUES,
    QUEUES_BY_NAME,
    QueueSpec,
    prefixed,
    queue_arguments,
    retry_arguments,
)

log = structlog.get_logger("core.broker")

BIG_BODY = 1 << 20  # bytes: a message body this large is decoded in steps (core.steps.in_turns)

Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class QueueStat:
    """Depth and consumers of one queue and its dead-letter queue (and how many wait in its retry queue)."""

    queue: str
    messages: int
    consumers: int
    dead: int
    retrying: int = 0


DeadHandler = Callable[[DeadLetter], Awaitable[None]]


class Broker:
    """A robust connection with one confirmed publishing channel and one channel per consumer."""

    def __init__(
        self,
        url: str,
        prefix: str = "",
        *,
        prefetch: int = 20,
        handler_timeout: float = DEFAULT_HANDLER_TIMEOUT,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self.handler_timeout = handler_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._conn: AbstractRobustConnection | None = None
        self._pub_channel: AbstractChannel | None = None
        self._peek_channel: AbstractRobustChannel | None = None  # for `ready`: asked often, so kept open
        self._peek_lock = asyncio.Lock()
        self._exchange: AbstractExchange | None = None
        self._consumer_channels: list[AbstractChannel] = []
        self._queues: list[AbstractQueue] = []  # strong references: robust objects are tracked weakly
        self._running = 0  # handlers running in this process (see `idle`)

    def name(self, base: str) -> str:
        """Prefixed name of an exchange or queue (`newcomer` + `actions.notify` -> `newcomer.actions.notify`)."""
        return prefixed(self.prefix, base)

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
        """Declare exchanges, quorum queues, bindings, retry and dead-letter queues (idempotent)."""
        ch = self._channel()
        self._exchange = await ch.declare_exchange(self.name(EXCHANGE), aio_pika.ExchangeType.TOPIC, durable=True)
        dead_ex = await ch.declare_exchange(self.name(DEAD_EXCHANGE), aio_pika.ExchangeType.DIRECT, durable=True)
        for spec in QUEUES:
            q = await ch.declare_queue(self.name(spec.name), durable=True, arguments=queue_arguments(spec, self.prefix))
            for key in spec.bindings:
                await q.bind(self._exchange, routing_key=key)
            await ch.declare_queue(self.name(spec.retry), durable=True, arguments=retry_arguments(spec, self.prefix))
            dq = await ch.declare_queue(self.name(spec.dead), durable=True, arguments=DEAD_QUEUE_ARGUMENTS)
            await dq.bind(dead_ex, routing_key=self.name(spec.name))

    def _channel(self) -> AbstractChannel:
        if self._pub_channel is None:
            raise TransientError("broker not connected")
        return self._pub_channel

    async def publish(self, message: Message, *, timeout: float = 10.0) -> None:
        """Publish persistent + mandatory and wait for the broker's confirm; TransientError otherwise.

        Publishes from concurrent callers are pipelined on the one channel: each waits for its own confirm.
        """
        if self._exchange is None or not self.connected:
            raise TransientError("broker not connected")
        body = await _packed(await in_turns(message.encoding()))  # a bulk report's encoded a line per loop turn
        amqp_message = aio_pika.Message(
            body=body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            content_encoding=_encoding(body),
            message_id=message.message_id,
            type=message.type,
            timestamp=message.occurred_at,
            headers={"report_id": message.report_id or "", "case_id": message.case_id or ""},
        )
        try:
            async with asyncio.timeout(timeout):
                confirmation = await self._exchange.publish(amqp_message, routing_key=message.type, mandatory=True)
        except TimeoutError as exc:
            raise TransientError(f"publish of {message.type} not confirmed within {timeout}s") from exc
        except Exception as exc:
            raise TransientError(f"publish of {message.type} failed: {exc!r}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise TransientError(f"publish of {message.type} not confirmed: {confirmation!r}")

    async def consume(
        self, queue: str, handler: Handler, *, retry_delay: float | None = None, timeout: float | None = None
    ) -> None:
        """Consume a work queue: ack after the handler returned (its work committed).

        Not one of our contracts (or the handler raised ContractError): to `<queue>.dead` at once. A handler
        that raises or runs past `timeout` (default: the broker's `handler_timeout`): the message is acked
        here and a copy waits in `<queue>.retry` (per-message TTL, growing from `retry_delay`) before it
        dead-letters back to the work queue, so the consumer's slot is free meanwhile; after the queue's
        `delivery_limit` attempts it goes to `<queue>.dead`. Dead letters carry the handler's error text,
        the attempt count and the queue (`core.redelivery` headers). A crash mid-handler redelivers; the
        quorum queue's delivery limit bounds that too.
        """
        if self._conn is None:
            raise TransientError("broker not connected")
        if self._exchange is None:
            await self.declare()
        spec = QUEUES_BY_NAME[queue]
        delay = self.retry_delay if retry_delay is None else retry_delay
        limit = self.handler_timeout if timeout is None else timeout
        channel = await self._conn.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        q = await channel.declare_queue(self.name(queue), durable=True, arguments=queue_arguments(spec, self.prefix))
        self._consumer_channels.append(channel)
        self._queues.append(q)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            self._running += 1
            try:
                await self._handle(spec, incoming, handler, delay, limit)
            finally:
                self._running -= 1

        await q.consume(on_message)

    async def _handle(
        self, spec: QueueSpec, incoming: AbstractIncomingMessage, handler: Handler, delay: float, limit: float
    ) -> None:
        try:
            body = incoming.body  # a bulk report's unpacks to tens of MB: decoded a line per loop turn, others go on
            big = len(body) > BIG_BODY or packing.is_packed(body)
            message = await in_turns(decoding(body)) if big else decode_message(body)
        except ContractError as exc:
            log.error("broker.poison_message", queue=spec.name, error=str(exc), message_id=incoming.message_id)
            await self._settle(spec, incoming, str(exc), 1, redelivery.REJECTED)
            return
        attempt = redelivery.attempts_so_far(incoming.headers) + 1
        with structlog.contextvars.bound_contextvars(
            report_id=message.report_id, case_id=message.case_id, message_type=message.type
        ):
            try:
                async with asyncio.timeout(limit):
                    await handler(message)
            except ContractError as exc:
                log.error("handler.rejected", queue=spec.name, error=str(exc))
                await self._settle(spec, incoming, str(exc), attempt, redelivery.REJECTED)
                return
            except Exception as exc:  # TimeoutError included: a timeout counts as a failure
                error = redelivery.describe_error(exc, limit)
                exhausted = attempt >= spec.delivery_limit
                log.warning("handler.failed", queue=spec.name, error=error, attempt=attempt, dead=exhausted)
                reason = redelivery.RETRIES_EXHAUSTED if exhausted else ""
                wait = redelivery.retry_delay(attempt, delay, self.max_retry_delay)
                await self._settle(spec, incoming, error, attempt, reason, wait)
                return
            await incoming.ack()

    async def _settle(
        self,
        spec: QueueSpec,
        incoming: AbstractIncomingMessage,
        error: str,
        attempts: int,
        reason: str,
        wait: float = 0.0,
    ) -> None:
        """Move a failed message to `<queue>.retry` (no reason) or `<queue>.dead` (confirmed), then ack it here."""
        target = spec.dead if reason else spec.retry
        headers = redelivery.failure_headers(
            dict(incoming.headers or {}), queue=spec.name, attempts=attempts, error=error, reason=reason
        )
        copy = aio_pika.Message(
            body=incoming.body,
            headers=headers,
            content_type=incoming.content_type,
            content_encoding=_encoding(incoming.body),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=incoming.message_id,
            type=incoming.type,
            timestamp=incoming.timestamp,
            expiration=None if reason else max(wait, 0.001),
        )
        try:
            confirmation = await self._channel().default_exchange.publish(
                copy, routing_key=self.name(target), mandatory=True
            )
            if not isinstance(confirmation, aiormq.spec.Basic.Ack):
                raise TransientError(f"move to {target} not confirmed: {confirmation!r}")
        except Exception as exc:  # keep the message where it is: the broker redelivers it (delivery limit)
            log.warning("broker.settle_failed", queue=spec.name, target=target, error=repr(exc))
            await _quietly(incoming.reject(requeue=True))
            return
        await incoming.ack()

    async def idle(self, *, timeout: float = 30.0, poll: float = 0.05) -> None:
        """Wait until every work and retry queue of this prefix is empty and no handler of this broker is running.

        For tests and benchmarks (instead of sleeping): the condition must hold on two polls in a row.
        TimeoutError (naming what is still busy) after `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        calm = 0
        busy: dict[str, int] = {}
        while calm < 2:
            busy = await self._ready_counts()
            calm = calm + 1 if not busy and self._running == 0 else 0
            if calm < 2:
                if loop.time() > deadline:
                    raise TimeoutError(f"not idle after {timeout}s: {busy or {}} ready, {self._running} running")
                await asyncio.sleep(poll)

    async def _ready_counts(self) -> dict[str, int]:
        """Messages waiting in each work and retry queue (only those not empty)."""
        if self._conn is None:
            raise TransientError("broker not connected")
        ch = await self._conn.channel()
        out: dict[str, int] = {}
        try:
            for spec in QUEUES:
                for name in (spec.name, spec.retry):
                    q = await ch.declare_queue(self.name(name), passive=True)
                    if q.declaration_result.message_count:
                        out[name] = q.declaration_result.message_count
        finally:
            await ch.close()
        return out

    async def ready(self, queues: Collection[str], *, timeout: float = 5.0) -> int:
        """Messages waiting in these work queues, not yet delivered to any consumer (passive declares on a channel
        kept for it, not cached: a robust channel would answer a passive declare from its memory)."""
        if self._conn is None or not self.connected:
            raise TransientError("broker not connected")
        async with self._peek_lock:  # callers at once share one channel
            if self._peek_channel is None or self._peek_channel.is_closed:
                self._peek_channel = await self._conn.channel()
        total = 0
        for queue in queues:
            name = self.name(QUEUES_BY_NAME[queue].name)
            q = await self._peek_channel.declare_queue(name, passive=True, robust=False, timeout=timeout)
            total += q.declaration_result.message_count or 0
        return total

    async def purge(self, queue: str) -> None:
        """Drop every message waiting in a work queue (benchmarks)."""
        if self._conn is None:
            raise TransientError("broker not connected")
        ch = await self._conn.channel()
        try:
            q = await ch.declare_queue(self.name(QUEUES_BY_NAME[queue].name), passive=True)
            await q.purge()
        finally:
            await ch.close()

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
                rq = await ch.declare_queue(self.name(spec.retry), passive=True)
                out.append(
                    QueueStat(
                        spec.name,
                        q.declaration_result.message_count or 0,
                        q.declaration_result.consumer_count or 0,
                        dq.declaration_result.message_count or 0,
                        rq.declaration_result.message_count or 0,
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
                        content_encoding=_encoding(msg.body),
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

    async def consume_dead(self, handler: DeadHandler, *, retry_delay: float = 2.0) -> None:
        """Consume every `<queue>.dead` queue (the dead-letter keeper): ack after the handler stored the letter."""
        if self._conn is None:
            raise TransientError("broker not connected")
        for spec in QUEUES:
            channel = await self._conn.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            q = await channel.declare_queue(self.name(spec.dead), durable=True, arguments=DEAD_QUEUE_ARGUMENTS)
            self._consumer_channels.append(channel)
            self._queues.append(q)

            async def on_dead(incoming: AbstractIncomingMessage, queue: str = spec.name) -> None:
                try:
                    await handler(_dead_letter(queue, incoming))
                except Exception as exc:  # the database is away: keep the letter where it is
                    log.warning("dead_letter.keep_failed", queue=queue, error=repr(exc))
                    await asyncio.sleep(retry_delay)
                    await incoming.reject(requeue=True)
                    return
                await incoming.ack()

            await q.consume(on_dead)

    async def publish_to_queue(
        self, queue: str, body: bytes, *, message_id: str, type: str, headers: dict[str, Any], timeout: float = 10.0
    ) -> None:
        """Put one stored message back on its work queue (default exchange, persistent, confirmed)."""
        spec = QUEUES_BY_NAME[queue]
        body = await _packed(body)
        message = aio_pika.Message(
            body=body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            content_encoding=_encoding(body),
            message_id=message_id or None,
            type=type or None,
            headers=headers,
        )
        try:
            await asyncio.wait_for(
                self._channel().default_exchange.publish(message, routing_key=self.name(spec.name), mandatory=True),
                timeout=timeout,
            )
        except TimeoutError as exc:
            raise TransientError(f"replay into {queue} not confirmed within {timeout}s") from exc
        except TransientError:
            raise
        except Exception as exc:
            raise TransientError(f"replay into {queue} failed: {exc!r}") from exc

    async def delete_topology(self) -> None:
        """Remove every prefixed queue and exchange (tests and decommissioning); this broker's consumers stop first,
        so that no robust channel declares a queue again behind the delete."""
        if self._conn is None:
            return
        await self._close_consumers()
        ch = await self._conn.channel()
        for spec in QUEUES:
            for name in (spec.name, spec.retry, spec.dead):
                await ch.queue_delete(self.name(name))
        for ex in (EXCHANGE, DEAD_EXCHANGE):
            await ch.exchange_delete(self.name(ex))
        await ch.close()

    async def _close_consumers(self) -> None:
        for ch in self._consumer_channels:
            if not ch.is_closed:
                await ch.close()
        self._consumer_channels.clear()
        self._queues.clear()

    async def close(self) -> None:
        """Close channels and the connection."""
        await self._close_consumers()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        self._peek_channel = None


async def _quietly(step: Awaitable[Any]) -> None:
    """Await a settle step whose failure changes nothing (the channel is gone: the broker redelivers)."""
    try:
        await step
    except Exception as exc:
        log.warning("broker.settle_step_failed", error=repr(exc))


def _delivery_count(msg: AbstractIncomingMessage) -> int:
    return redelivery.as_int((msg.headers or {}).get("x-delivery-count", 0))


def _int(value: Any) -> int:
    return redelivery.as_int(value)


async def _packed(body: bytes) -> bytes:
    """The body as it goes on the wire (core.packing.pack), packed in a thread: zlib lets go of the GIL."""
    return await asyncio.to_thread(packing.pack, body) if packing.wanted(body) else body


def _encoding(body: bytes) -> str | None:
    """The AMQP content_encoding of a body as it goes on the wire: what the broker's tools show."""
    return packing.ENCODING if packing.is_packed(body) else None


def _dead_letter(queue: str, msg: AbstractIncomingMessage) -> DeadLetter:
    """A dead letter as read, its body unpacked: what is kept and shown is the message's JSON."""
    try:
        body = packing.unpacked(msg.body)
    except ContractError:
        body = msg.body  # kept as it came: the keeper says it is not a message of ours
    return redelivery.dead_letter(
        queue, headers=dict(msg.headers or {}), body=body, message_id=msg.message_id, type=msg.type
    )


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
