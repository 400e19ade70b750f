"""A worker killed with SIGKILL in the middle of a handler loses nothing: the unacked message goes to the next one."""

from __future__ import annotations

import asyncio
import sys

from core.broker import Broker
from core.messages import Message, ReportParsed
from core.report import AbuseReport
from core.settings import Settings

WORKER = """
import asyncio, sys
from core.broker import Broker

async def main():
    broker = Broker(sys.argv[1], sys.argv[2])
    await broker.connect(attempts=3)

    async def handler(message):
        print("started", message.report_id, flush=True)
        await asyncio.Event().wait()  # killed here, before the ack

    await broker.consume("policy.reports", handler)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def _line(proc: asyncio.subprocess.Process, expected: str) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert line.decode().startswith(expected), line


async def test_a_worker_killed_mid_handler_hands_the_message_to_the_next_worker(
    settings: Settings, broker: Broker
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, settings.amqp_url, settings.prefix, stdout=asyncio.subprocess.PIPE
    )
    try:
        await _line(proc, "ready")
        await broker.publish(ReportParsed(report_id="crash", report=AbuseReport(report_id="crash")))
        await _line(proc, "started crash")
    finally:
        proc.kill()  # SIGKILL: no ack, no close, no goodbye
        await proc.wait()

    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)

    await broker.consume("policy.reports", handler)
    deadline = asyncio.get_running_loop().time() + 30
    while not seen:
        assert asyncio.get_running_loop().time() < deadline, "the message was lost with the worker"
        await asyncio.sleep(0.05)
    await broker.idle(timeout=10)
    assert [m.report_id for m in seen] == ["crash"]
    stats = {s.queue: s for s in await broker.stats()}["policy.reports"]
    assert (stats.messages, stats.retrying, stats.dead) == (0, 0, 0)
