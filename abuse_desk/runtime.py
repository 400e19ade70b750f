"""Start components on one event loop: `run` starts them all, `serve X` one; stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk import components, instrument, watch
from abuse_desk.database import upgrade
from abuse_desk.http import process_app, start_server
from core import metrics
from core.broker import Broker
from core.db import create_engine
from core.messages import Message, utcnow
from core.settings import Settings
from policy import link_store
from policy.consumer import PolicyWorker
from policy.scheduler import fire_due

log = structlog.get_logger("abuse_desk.runtime")

COMPONENTS = components.NAMES
PLANNED: tuple[str, ...] = ()


@dataclass
class Runtime:
    """What the components share in one process: settings, one engine, one broker connection."""

    settings: Settings
    engine: AsyncEngine
    broker: Broker
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    smtp_address: tuple[str, int] | None = None
    policy_address: tuple[str, int] | None = None
    components: list[str] = field(default_factory=list)
    expected: tuple[str, ...] = ()  # what `serve` was asked to start: not ready until every one is up
    web_port: int | None = None
    metrics_port: int | None = None

    async def publish(self, message: Message) -> None:
        await self.broker.publish(message, timeout=self.settings.smtp.publish_timeout)

    def background(self, coro: Awaitable[None], name: str) -> None:
        self.tasks.append(asyncio.ensure_future(coro))
        self.tasks[-1].set_name(name)

    async def consume(self, queue: str, handler: instrument.Handler, *, timeout: float | None = None) -> None:
        """Consume a queue with a handler timed for the metrics (latency, result, consumer lag)."""
        await self.broker.consume(queue, instrument.timed(queue, handler), timeout=timeout)

    def health(self) -> dict[str, object]:
        """Readiness: the broker is connected and no background loop has died."""
        dead = [t.get_name() for t in self.tasks if t.done()]
        problems = ([] if self.broker.connected else ["broker connection lost"]) + [f"{n} stopped" for n in dead]
        problems += [f"{n} starting" for n in self.expected if n not in self.components]
        return {"ok": not problems, "components": self.components, "problems": problems}


async def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Connect to the database (migrating it) and to the broker (declaring the topology)."""
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    settings.dsa.link_secret = await link_store.link_secret(engine, settings)  # configured, or kept in the database
    b = settings.broker
    broker = Broker(
        settings.amqp_url,
        settings.prefix,
        prefetch=b.prefetch,
        handler_timeout=b.handler_timeout,
        retry_delay=b.failure_retry_delay,
    )
    await broker.connect(attempts=settings.broker.connect_attempts, delay=settings.broker.retry_delay)
    return Runtime(settings, engine, broker)


async def start_component(rt: Runtime, name: str) -> None:
    """Start one component of the table (abuse_desk/components.py) on the runtime's loop."""
    component = components.BY_NAME.get(name)
    if component is None:
        raise ValueError(f"unknown component {name!r}: choose from {', '.join(COMPONENTS)}")
    await component.start(rt)
    rt.components.append(name)
    metrics.UP.labels(name).set(1)
    log.info("component.started", component=name)


async def scheduler_loop(rt: Runtime, interval: float = 15.0) -> None:
    """Fire due deadlines every `interval` seconds, then publish what they produced."""
    worker = PolicyWorker(rt.engine, rt.settings, rt.publish)
    while True:
        try:
            now = utcnow()
            fired = await fire_due(rt.engine, rt.settings, now)
            if fired:
                log.info("scheduler.fired", cases=fired)
                await instrument.count_deadline_decisions(rt.engine, now)
            await worker.drain()
        except Exception as exc:  # keep polling; deadlines stay in the database
            log.warning("scheduler.failed", error=repr(exc))
        await asyncio.sleep(interval)


async def close_runtime(rt: Runtime) -> None:
    """Stop listeners, cancel background loops, close broker and database."""
    for stop in rt.stoppers:
        await stop()
    for task in rt.tasks:
        task.cancel()
    await asyncio.gather(*rt.tasks, return_exceptions=True)
    await rt.broker.close()
    await rt.engine.dispose()


async def serve(settings: Settings, names: tuple[str, ...], *, ready: Callable[[Runtime], None] | None = None) -> None:
    """Run components until SIGTERM/SIGINT."""
    rt = await open_runtime(settings)
    rt.expected = tuple(names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        stop_http, rt.metrics_port = await start_server(
            process_app(rt.health), settings.metrics_listen, name="metrics", env_var="ABUSE_DESK_METRICS_LISTEN"
        )
        rt.stoppers.append(stop_http)
        for name in names:
            await start_component(rt, name)
        gauges = any(components.BY_NAME[n].gauges for n in names)
        rt.background(watch.collect_forever(rt.broker, rt.engine if gauges else None), "metrics-collector")
        if ready:
            ready(rt)
        log.info("abuse-desk.ready", components=list(names), smtp=rt.smtp_address)
        await stop.wait()
    finally:
        log.info("abuse-desk.stopping")
        await close_runtime(rt)
