"""The abuse@ listener against the real broker: 250 only after the confirm, 451 when the broker is away, and the
edges real MTAs reach (8-bit envelope bytes, long lines, many messages per session)."""

from __future__ import annotations

import asyncio
import base64
import json
import smtplib
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


def _send_bytes(port: int, helo: bytes, mail_from: bytes, rcpt: bytes, raw: bytes | None) -> list[tuple[int, bytes]]:
    """A session written byte for byte with smtplib (its str API cannot send 8-bit envelope bytes)."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=20)
    replies = []
    try:
        for line in (b"EHLO " + helo, b"MAIL FROM:<" + mail_from + b">", b"RCPT TO:<" + rcpt + b">"):
            client.send(line + b"\r\n")
            replies.append(client.getreply())
        if raw is not None and replies[-1][0] == 250:
            replies.append(client.data(raw))
    finally:
        client.close()
    return replies


async def test_non_utf8_bytes_in_mail_from_and_ehlo_are_accepted_and_kept(
    settings: Settings, listener: tuple[int, Broker]
) -> None:
    port, _ = listener
    replies = await asyncio.to_thread(
        _send_bytes, port, b"mta.exempl\xe9.org", b"rapport\xe9@example.org", b"abuse@localhost", RAW
    )
    assert [code for code, _ in replies] == [250, 250, 250, 250]
    [body] = await queued(settings, "ingest.normalize")
    msg = json.loads(body)
    assert base64.b64decode(msg["mail_from_bytes"]) == b"rapport\xe9@example.org"
    assert base64.b64decode(msg["helo_bytes"]) == b"mta.exempl\xe9.org"
    assert msg["envelope"]["mail_from"] == "rapport\\xe9@example.org"  # readable, the bytes are beside it
    assert base64.b64decode(msg["raw"]) == RAW


async def test_non_utf8_bytes_in_rcpt_get_a_permanent_550_at_once(listener: tuple[int, Broker]) -> None:
    port, _ = listener
    replies = await asyncio.to_thread(
        _send_bytes, port, b"mta.example.org", b"r@example.org", b"abus\xe9@localhost", RAW
    )
    assert replies[-1][0] == 550 and replies[-1][1].startswith(b"5.1.1 <abus\\xe9@localhost>")


async def test_lines_over_1000_bytes_are_accepted_and_kept_byte_for_byte(
    settings: Settings, listener: tuple[int, Broker]
) -> None:
    port, _ = listener
    long_line = b"X-Report-Data: " + b"a" * 5000 + b"\r\n"
    raw = RAW.replace(b"\r\n\r\n", b"\r\n" + long_line + b"\r\n", 1) + b"b" * 3000 + b"\r\n"
    code, text = await send(port, raw)
    assert code == 250, text
    [body] = await queued(settings, "ingest.normalize")
    assert base64.b64decode(json.loads(body)["raw"]) == raw


async def test_a_session_may_send_a_thousand_messages(settings: Settings, listener: tuple[int, Broker]) -> None:
    port, broker = listener
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
    await client.connect()
    try:
        for n in range(1000):
            await client.mail("fbl@example.net")
            await client.rcpt("abuse@localhost")
            code, _text = await client.data(RAW + b"complaint %d\r\n" % n)
            assert code == 250, n
    finally:
        await client.quit()
    assert {s.queue: s.messages for s in await broker.stats()}["ingest.normalize"] == 1000


async def test_too_many_recipients_is_452(settings: Settings, broker: Broker) -> None:
    one = settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"max_recipients": 1})})
    smtp = SmtpListener(one, broker.publish)
    _, port = await smtp.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
    await client.connect()
    try:
        await client.mail("r@example.org")
        assert (await client.rcpt("abuse@localhost"))[0] == 250
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("abuse@localhost")
        assert refused.value.code == 452 and refused.value.message.startswith("4.5.3")
    finally:
        client.close()
        await smtp.stop()


async def test_a_closing_listener_answers_421(settings: Settings, broker: Broker) -> None:
    smtp = SmtpListener(settings, broker.publish)
    _, port = await smtp.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
    await client.connect()
    try:
        smtp.handler.closing = True
        await client.mail("r@example.org")
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await client.rcpt("abuse@localhost")
        assert refused.value.code == 421
    finally:
        client.close()
        await smtp.stop()


async def test_two_listeners_with_reuse_port_share_one_port(settings: Settings, broker: Broker) -> None:
    shared = settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"reuse_port": True})})
    first, second = SmtpListener(shared, broker.publish), SmtpListener(shared, broker.publish)
    _, port = await first.start()
    _, again = await second.start()  # without SO_REUSEPORT: "address already in use"
    try:
        assert again == port
        with pytest.raises(OSError):
            await SmtpListener(settings, broker.publish).start()  # reuse_port off: the port is taken
        replies = [await send(port, RAW + b"%d\r\n" % n) for n in range(4)]
        assert [code for code, _ in replies] == [250] * 4
    finally:
        await first.stop()
        await second.stop()
    assert len(await queued(settings, "ingest.normalize")) == 4
