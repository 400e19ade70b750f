"""Start components on one event loop: `run` starts them all, `serve X` one; stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from actions.mailer import make_mailer
from actions.notify import NotifyWorker
from actions.suspend import LedgerBackend, SuspendWorker
from core.broker import Broker
from core.db import create_engine
from core.messages import Message, utcnow
from core.settings import Settings
from ingest.normalize import NormalizeWorker
from ingest.smtp import SmtpListener
from policy.consumer import PolicyWorker
from policy.scheduler import fire_due

log = structlog.get_logger("abuse_desk.runtime")

COMPONENTS = ("smtp", "normalize", "policy", "scheduler", "suspend", "notify")
PLANNED = ("postfix-policy", "web")


@dataclass
class Runtime:
    """What the components share in one process: settings, one engine, one broker connection."""

    settings: Settings
    engine: AsyncEngine
    broker: Broker
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    smtp_address: tuple[str, int] | None = None

    async def publish(self, message: Message) -> None:
        await self.broker.publish(message, timeout=self.settings.smtp.publish_timeout)

    def background(self, coro: Awaitable[None], name: str) -> None:
        self.tasks.append(asyncio.ensure_future(coro))
        self.tasks[-1].set_name(name)


async def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Connect to the database (migrating it) and to the broker (declaring the topology)."""
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    broker = Broker(settings.amqp_url, settings.prefix, prefetch=settings.broker.prefetch)
    await broker.connect(attempts=settings.broker.connect_attempts, delay=settings.broker.retry_delay)
    return Runtime(settings, engine, broker)


async def start_component(rt: Runtime, name: str) -> None:
    """Start one component on the runtime's loop."""
    s = rt.settings
    if name == "smtp":
        listener = SmtpListener(s, rt.publish)
        rt.smtp_address = await listener.start()
        rt.stoppers.append(listener.stop)
    elif name == "normalize":
        await rt.broker.consume("ingest.normalize", NormalizeWorker(rt.publish).handle)
    elif name == "policy":
        worker = PolicyWorker(rt.engine, s, rt.publish)
        await rt.broker.consume("policy.reports", worker.on_report)
        await rt.broker.consume("policy.events", worker.on_event)
        rt.background(worker.drain_forever(), "policy-outbox")
    elif name == "scheduler":
        rt.background(scheduler_loop(rt), "scheduler")
    elif name == "suspend":
        await rt.broker.consume("actions.suspend", SuspendWorker(LedgerBackend(rt.engine), rt.publish).handle)
    elif name == "notify":
        notify = NotifyWorker(rt.engine, make_mailer(s.mail_out), s.notify, rt.publish)
        await rt.broker.consume("actions.notify", notify.handle)
        rt.background(notify.send_forever(), "notify-retries")
    else:
        raise ValueError(f"unknown component {name!r}: choose from {', '.join(COMPONENTS)}")
    log.info("component.started", component=name)


async def scheduler_loop(rt: Runtime, interval: float = 15.0) -> None:
    """Fire due deadlines every `interval` seconds, then publish what they produced."""
    worker = PolicyWorker(rt.engine, rt.settings, rt.publish)
    while True:
        try:
            fired = await fire_due(rt.engine, rt.settings, utcnow())
            if fired:
                log.info("scheduler.fired", cases=fired)
            await worker.drain()
        except Exception as exc:  # noqa: BLE001 - keep polling; deadlines stay in the database
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name in names:
            await start_component(rt, name)
        if ready:
            ready(rt)
        log.info("abuse-desk.ready", components=list(names), smtp=rt.smtp_address)
        await stop.wait()
    finally:
        log.info("abuse-desk.stopping")
        await close_runtime(rt)
