"""Notification delivery through a real local SMTP sink: 4xx retried later, 5xx failed once, DKIM, AUTH, STARTTLS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.mailer import SmtpMailer
from actions.notify import CLAIM_LEASE, NotifyWorker
from actions.signing import DkimSigner
from actions.tables import mail_outbox
from core.action_settings import DkimConfig
from core.messages import ActionFailed, Message, NotificationSent, SendNotification
from core.settings import NotifyConfig
from tests.made_keys import dkim_key, tls_certificate
from tests.smtp_sink import Sink, SinkHandler


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def command(**kw: object) -> SendNotification:
    values: dict[str, object] = {
        "case_id": "K1",
        "kind": "customer-warning",
        "to": "alice@customer1.example",
        "language": "fr",
        "context": {"case_id": "K1", "deadline_at": "2026-12-02T09:00:00+00:00", "category": "phishing"},
    }
    return SendNotification.model_validate(values | kw)


class Harness:
    def __init__(self, engine: AsyncEngine, url: str, clock: Clock, **kw: object) -> None:
        self.published: list[Message] = []
        self.worker = NotifyWorker(
            engine,
            SmtpMailer(url, timeout=5),
            NotifyConfig(from_address="abuse@hosting.example", retry_seconds=[60, 600]),
            self.publish,
            clock,
            **kw,  # type: ignore[arg-type]
        )
        self.engine = engine

    async def publish(self, message: Message) -> None:
        self.published.append(message)

    async def row(self) -> dict[str, object]:
        async with self.engine.connect() as conn:
            return dict((await conn.execute(select(mail_outbox))).mappings().one())


async def test_delivered_once_and_dkim_signed(engine: AsyncEngine, tmp_path: Path) -> None:
    key, record = dkim_key(tmp_path)
    signer = DkimSigner.from_config(DkimConfig(selector="desk", domain="hosting.example", key_path=str(key)))
    with Sink() as sink:
        h = Harness(engine, f"smtp://127.0.0.1:{sink.port}", Clock(), signer=signer.sign)
        sent = command()
        await h.worker.handle(sent)
        await h.worker.handle(sent)  # a redelivered command: the outbox row exists, no second mail
        assert await h.worker.send_due() == 0
    [mail] = sink.handler.received
    assert mail.rcpt_tos == ["alice@customer1.example"] and mail.mail_from == "abuse@hosting.example"
    assert mail.content.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record.encode() if name == b"desk._domainkey.hosting.example." else b""

    assert dkim.verify(mail.content, dnsfunc=dns)
    assert not dkim.verify(mail.content.replace(b"action requise", b"action requisE"), dnsfunc=dns)
    parsed = message_from_bytes(mail.content, policy=policy.default)
    assert parsed["Message-ID"] == f"<{sent.message_id}@hosting.example>"
    assert [type(m) for m in h.published] == [NotificationSent]
    assert (await h.row())["state"] == "sent"


async def test_4xx_is_retried_later_then_sent(engine: AsyncEngine) -> None:
    clock = Clock()
    with Sink(SinkHandler(mode="4xx")) as sink:
        h = Harness(engine, f"smtp://127.0.0.1:{sink.port}", clock)
        await h.worker.handle(command())
        row = await h.row()
        assert (row["state"], row["attempts"]) == ("pending", 1)
        assert row["next_attempt_at"] == clock.now + timedelta(seconds=60)
        assert "451" in str(row["last_error"])
        assert await h.worker.send_due() == 0 and sink.handler.attempts == 1  # not due yet: no hot loop
        clock.now += timedelta(seconds=61)
        sink.handler.mode = "4xx-data"
        assert await h.worker.send_due() == 0
        row = await h.row()
        assert (row["state"], row["attempts"]) == ("pending", 2)
        assert row["next_attempt_at"] == clock.now + timedelta(seconds=600)
        clock.now += timedelta(seconds=601)
        sink.handler.mode = "ok"
        assert await h.worker.send_due() == 1
        assert await h.worker.send_due() == 0
    assert len(sink.handler.received) == 1
    assert (await h.row())["state"] == "sent" and (await h.row())["attempts"] == 3
    assert [type(m) for m in h.published] == [NotificationSent]


@pytest.mark.parametrize("mode", ["5xx", "5xx-data"])
async def test_5xx_marks_failed_and_publishes_action_failed_once(engine: AsyncEngine, mode: str) -> None:
    clock = Clock()
    with Sink(SinkHandler(mode=mode)) as sink:
        h = Harness(engine, f"smtp://127.0.0.1:{sink.port}", clock)
        await h.worker.handle(command())
        clock.now += timedelta(days=1)
        assert await h.worker.send_due() == 0
        assert sink.handler.attempts == 1  # never tried again
    row = await h.row()
    assert (row["state"], row["attempts"]) == ("failed", 1)
    [failed] = h.published
    assert isinstance(failed, ActionFailed) and failed.action == "notify" and failed.case_id == "K1"
    assert failed.reason.startswith("5")


async def test_dropped_connection_is_transient_and_gives_up_after_days(engine: AsyncEngine) -> None:
    clock = Clock()
    with Sink(SinkHandler(mode="drop")) as sink:
        h = Harness(engine, f"smtp://127.0.0.1:{sink.port}", clock)
        await h.worker.handle(command())
        assert (await h.row())["state"] == "pending"
        clock.now += timedelta(days=6)  # past give_up_after_days (5)
        await h.worker.send_due()
    assert (await h.row())["state"] == "failed"
    [failed] = h.published
    assert isinstance(failed, ActionFailed) and failed.reason.startswith("gave up")


async def test_starttls_and_auth_from_the_relay_url(engine: AsyncEngine, tmp_path: Path) -> None:
    cert, key = tls_certificate(tmp_path)
    with Sink(login=("desk", "p@ss"), tls=(str(cert), str(key))) as sink:
        url = f"smtp://desk:p%40ss@127.0.0.1:{sink.port}?starttls=true&cafile={cert}"
        h = Harness(engine, url, Clock())
        await h.worker.handle(command())
    assert sink.logins == ["desk"] and len(sink.handler.received) == 1
    assert [type(m) for m in h.published] == [NotificationSent]


class CrashingMailer:
    """A mailer whose worker is stopped mid-send (a handler timeout, a shutdown)."""

    async def send(self, raw: bytes, sender: str, recipient: str) -> None:
        raise asyncio.CancelledError


async def test_a_mail_stored_by_a_worker_stopped_mid_send_goes_once_its_claim_lapses(engine: AsyncEngine) -> None:
    clock = Clock()
    crashed = NotifyWorker(engine, CrashingMailer(), NotifyConfig(from_address="abuse@hosting.example"), _drop, clock)
    with pytest.raises(asyncio.CancelledError):
        await crashed.handle(command())
    with Sink() as sink:
        h = Harness(engine, f"smtp://127.0.0.1:{sink.port}", clock)
        assert await h.worker.send_due() == 0  # still claimed by the attempt that was stopped
        clock.now += CLAIM_LEASE + timedelta(seconds=1)
        assert await h.worker.send_due() == 1
        assert await h.worker.send_due() == 0
    assert len(sink.handler.received) == 1
    assert (await h.row())["state"] == "sent"


async def _drop(message: Message) -> None:
    return None
