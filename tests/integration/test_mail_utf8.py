"""Complainants with an internationalized address get their mail: SMTPUTF8 when the relay offers it, otherwise
the mail row is closed at once with the reason recorded (never retried for days)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.mailer import SmtpMailer, ascii_domain
from actions.notify import NotifyWorker
from actions.tables import mail_outbox
from core.errors import PermanentError
from core.messages import ActionFailed, Message
from core.settings import NotifyConfig
from tests.conftest import free_port

RAW = "From: abuse@hosting.example\r\nTo: jörg@bücher.example\r\nSubject: reçu\r\n\r\nMerci.\r\n".encode()


class Keep:
    """An aiosmtpd handler that keeps the envelope of what it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"


def relay(utf8: bool) -> Iterator[tuple[int, Keep]]:
    handler, port = Keep(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=utf8, ready_timeout=10)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


@pytest.fixture
def utf8_relay() -> Iterator[tuple[int, Keep]]:
    yield from relay(True)


@pytest.fixture
def ascii_relay() -> Iterator[tuple[int, Keep]]:
    yield from relay(False)


async def test_an_internationalized_address_is_delivered_with_smtputf8(utf8_relay: tuple[int, Keep]) -> None:
    port, handler = utf8_relay
    await SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).send(RAW, "abuse@hosting.example", "jörg@bücher.example")
    [(sender, recipients, content)] = handler.received
    assert sender == "abuse@hosting.example" and recipients == ["jörg@xn--bcher-kva.example"]
    assert "reçu".encode() in content


async def test_an_internationalized_domain_alone_needs_no_smtputf8(ascii_relay: tuple[int, Keep]) -> None:
    port, handler = ascii_relay
    await SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).send(
        b"Subject: x\r\n\r\nx\r\n", "a@h.example", "jo@bücher.example"
    )
    assert handler.received[0][1] == ["jo@xn--bcher-kva.example"]
    assert ascii_domain("plain@example.org") == "plain@example.org"


async def test_a_relay_without_smtputf8_is_a_permanent_failure_saying_why(ascii_relay: tuple[int, Keep]) -> None:
    port, handler = ascii_relay
    with pytest.raises(PermanentError, match=r"does not offer SMTPUTF8.*jörg@"):
        await SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).send(
            RAW, "abuse@hosting.example", "jörg@bücher.example"
        )
    assert handler.received == []


async def test_the_mail_row_is_closed_with_the_reason_recorded(
    engine: AsyncEngine, ascii_relay: tuple[int, Keep]
) -> None:
    port, handler = ascii_relay
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    worker = NotifyWorker(engine, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5), NotifyConfig(), publish)
    now = datetime.now(UTC)
    row = {
        "command_id": "utf8-1",
        "case_id": "K9",
        "kind": "complainant-ack",
        "recipient": "jörg@bücher.example",
        "mail_message_id": "<utf8-1@localhost>",
        "raw": RAW,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
    async with engine.begin() as conn:
        await conn.execute(mail_outbox.insert().values(**row))
    assert await worker.send_due() == 0
    async with engine.connect() as conn:
        kept = (await conn.execute(select(mail_outbox))).mappings().one()
    assert kept["state"] == "failed" and "SMTPUTF8" in str(kept["last_error"]) and kept["attempts"] == 1
    assert [type(m) for m in published] == [ActionFailed] and handler.received == []
