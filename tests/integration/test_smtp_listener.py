"""The abuse@ listener against the real broker: 250 only after the confirm, 451 when the broker is away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aio_pika
import aiosmtplib
import pytest

from core.broker import Broker
from core.settings import Settings
from ingest.smtp import SmtpListener, report_id_for
from tests.integration.tcpproxy import TcpProxy

RAW = (
    b"From: reporter@example.org\r\nTo: abuse@localhost\r\nSubject: phishing on 203.0.113.10\r\n"
    b"Message-ID: <t1@example.org>\r\n\r\nPhishing page at http://203.0.113.10/login\r\n"
)


async def send(port: int, raw: bytes = RAW, rcpt: str = "abuse@localhost") -> tuple[int, str]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
    await client.connect()
    try:
        code, text = await client.mail("reporter@example.org")
        code, text = await client.rcpt(rcpt)
        if code >= 400:
            return code, text
        code, text = await client.data(raw)
        return code, text
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        client.close()


async def queued(settings: Settings, queue: str) -> list[bytes]:
    """Bodies waiting in a queue (read and put back)."""
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        ch = await conn.channel()
        q = await ch.declare_queue(settings.prefix + queue, passive=True)
        bodies = []
        while (msg := await q.get(no_ack=False, fail=False)) is not None:
            bodies.append(msg.body)
        return bodies
    finally:
        await conn.close()


@pytest.fixture
async def listener(settings: Settings, broker: Broker) -> AsyncIterator[tuple[int, Broker]]:
    smtp = SmtpListener(settings, broker.publish)
    _, port = await smtp.start()
    yield port, broker
    await smtp.stop()


async def test_250_carries_the_report_id_and_the_raw_bytes_are_in_the_queue(
    settings: Settings, listener: tuple[int, Broker]
) -> None:
    port, _ = listener
    code, text = await send(port)
    assert code == 250
    assert text == f"2.0.0 queued as {report_id_for(RAW)}"
    bodies = await queued(settings, "ingest.normalize")
    assert len(bodies) == 1
    msg = json.loads(bodies[0])
    assert msg["type"] == "report.received.v1" and msg["report_id"] == report_id_for(RAW)
    assert msg["envelope"]["mail_from"] == "reporter@example.org"
    assert msg["envelope"]["rcpt_tos"] == ["abuse@localhost"]
    import base64

    assert base64.b64decode(msg["raw"]) == RAW


async def test_retransmission_gets_the_same_report_id(listener: tuple[int, Broker]) -> None:
    port, _ = listener
    first = await send(port)
    second = await send(port)
    assert first == second and first[0] == 250


async def test_not_an_abuse_address_is_refused_at_rcpt(settings: Settings, listener: tuple[int, Broker]) -> None:
    port, _ = listener
    code, text = await send(port, rcpt="postmaster@example.com")
    assert code == 550 and text.startswith("5.1.1")
    assert await queued(settings, "ingest.normalize") == []


async def test_too_big_is_552(settings: Settings, broker: Broker) -> None:
    small = settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"max_message_size": 2000})})
    smtp = SmtpListener(small, broker.publish)
    _, port = await smtp.start()
    try:
        code, text = await send(port, RAW + (b"x" * 70 + b"\r\n") * 100)
        assert code == 552 and text.startswith("5.3.4")
    finally:
        await smtp.stop()


async def test_handler_bug_is_451_not_500(settings: Settings) -> None:
    async def broken(_message: object) -> None:
        raise RuntimeError("bug")

    smtp = SmtpListener(settings, broken)  # type: ignore[arg-type]
    _, port = await smtp.start()
    try:
        code, text = await send(port)
        assert code == 451 and text.startswith("4.3.0")
    finally:
        await smtp.stop()


async def test_broker_away_gives_451_then_250_again_without_restart(settings: Settings) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    port = await proxy.start()
    url = settings.amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{port}")
    broker = Broker(url, settings.prefix)
    await broker.connect(attempts=3)
    smtp = SmtpListener(settings, broker.publish)
    _, smtp_port = await smtp.start()
    try:
        assert (await send(smtp_port))[0] == 250
        await proxy.cut()
        await asyncio.sleep(0.3)
        code, text = await send(smtp_port, RAW + b"second\r\n")
        assert code == 451 and text.startswith("4.3.0")
        await proxy.restore()
        for _ in range(60):
            code, _text = await send(smtp_port, RAW + b"third\r\n")
            if code == 250:
                break
            assert code == 451
            await asyncio.sleep(0.5)
        assert code == 250
        bodies = [json.loads(b) for b in await queued(settings, "ingest.normalize")]
        ids = {b["report_id"] for b in bodies}
        assert report_id_for(RAW) in ids and report_id_for(RAW + b"third\r\n") in ids
        assert report_id_for(RAW + b"second\r\n") not in ids  # 451: the sender keeps it
    finally:
        await smtp.stop()
        await broker.delete_topology()
        await broker.close()
        await proxy.cut()
