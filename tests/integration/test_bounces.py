"""Unknown recipients: Postfix's bounce copies reach the counter over the broker and make one report per window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from actions.bounces import BounceCounter
from actions.tables import outbound_bounces, outbound_reports
from core.action_settings import OutboundConfig
from core.broker import Broker
from core.db import create_engine
from core.messages import BounceReceived, Message, ReportParsed, ReportReceived
from core.report import Envelope
from core.settings import Settings
from ingest.normalize import NormalizeWorker

BOUNCES = "bounces@abuse.hosting.example"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def postfix_dsn(sender: str, recipients: list[str], status: str = "5.1.1") -> bytes:
    """A postmaster copy as Postfix's bounce(8) writes it (notify_classes = bounce), headers of the original only."""
    per_recipient = "".join(
        f"Final-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\nAction: failed\nStatus: {status}\n"
        f"Remote-MTA: dns; mx.far.example\nDiagnostic-Code: smtp; 550 {status} <{r}>: Recipient address rejected:"
        " User unknown\n\n"
        for r in recipients
    )
    return (
        "From: MAILER-DAEMON@mx1.hosting.example (Mail Delivery System)\n"
        f"To: {BOUNCES}\nSubject: Postmaster Copy: Undelivered Mail\nAuto-Submitted: auto-generated\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b.1"\n\n'
        "--b.1\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\nUndelivered.\n\n"
        "--b.1\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx1.hosting.example\nX-Postfix-Queue-ID: 4Xy\nX-Postfix-Sender: rfc822; {sender}\n\n"
        + per_recipient
        + "--b.1\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n"
        f"Return-Path: <{sender}>\nFrom: <{sender}>\nSubject: offer\n\n--b.1--\n"
    ).encode()


def received(raw: bytes, *, peer: str = "127.0.0.1", to: str = BOUNCES, at: datetime = T0) -> ReportReceived:
    envelope = Envelope(mail_from="", rcpt_tos=(to,), peer=peer, received_at=at)
    return ReportReceived(report_id=f"r{hash(raw) & 0xFFFFFF:x}", raw=raw, envelope=envelope)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (outbound_bounces, outbound_reports):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbound_bounces))).scalar_one())


async def _counted(engine: AsyncEngine, n: int, reports: list[ReportParsed] | None = None) -> bool:
    return await _count(engine) >= n and (reports is None or bool(reports))


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Poll a condition with a bounded deadline (no fixed sleeps)."""
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)


async def test_bounce_copies_over_the_broker_make_one_unknown_recipients_report(
    settings: Settings, broker: Broker
) -> None:
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    reports: list[ReportParsed] = []

    async def policy(message: Message) -> None:
        assert isinstance(message, ReportParsed)
        reports.append(message)

    await broker.consume("ingest.normalize", NormalizeWorker(broker.publish, None, BOUNCES, ["127.0.0.1"]).handle)
    await broker.consume("actions.bounces", BounceCounter(engine, OutboundConfig(), broker.publish).handle)
    await broker.consume("policy.reports", policy)
    sender = "news@shop.customer1.example"
    first = [f"gone{i}@far.example" for i in range(10)]
    try:
        await broker.publish(received(postfix_dsn(sender, first)))
        await broker.publish(received(postfix_dsn(sender, first), at=T0 + timedelta(minutes=1)))  # the same again
        await broker.publish(received(postfix_dsn(sender, [f"x{i}@far.example" for i in range(9)])))
        await broker.publish(received(postfix_dsn(sender, ["spam@far.example"], status="5.7.1")))  # not unknown
        await _until(lambda: _counted(engine, 19))
        assert await _count(engine) == 19 and reports == []  # 19 distinct unknown recipients: under the limit
        await broker.publish(received(postfix_dsn(sender, ["last@far.example", "more@far.example"])))
        await _until(lambda: _counted(engine, 21, reports))
        await broker.publish(received(postfix_dsn(sender, ["after@far.example"])))
        await _until(lambda: _counted(engine, 22))
    finally:
        await engine.dispose()
    [message] = reports  # one report per mailbox per window
    report = message.report
    assert (report.format, report.source_label, report.reporter_kind, report.category) == (
        "outbound-limit",
        "unknown-recipients",
        "internal",
        "spam",
    )
    assert report.emails == [sender] and "21 distinct recipients" in report.evidence


async def test_only_our_postfix_bounces_to_the_bounce_address_are_counted() -> None:
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    worker = NormalizeWorker(publish, None, BOUNCES, ["127.0.0.1"])
    dsn = postfix_dsn("news@shop.customer1.example", ["a@far.example"])
    await worker.handle(received(dsn))
    await worker.handle(received(dsn, peer="198.51.100.66"))  # a stranger's forged bounce: an ordinary report
    await worker.handle(received(dsn, to="abuse@hosting.example"))  # a bounce sent to abuse@: an ordinary report
    await worker.handle(received(b"From: x@y.example\nSubject: hi\n\nnot a bounce\n"))
    assert [type(m) for m in published] == [BounceReceived, ReportParsed, ReportParsed, ReportParsed]
    bounce = published[0]
    assert isinstance(bounce, BounceReceived) and bounce.mailbox == "news@shop.customer1.example"
    assert [f.recipient for f in bounce.failures] == ["a@far.example"] and bounce.failed_at == T0


async def test_a_new_window_can_report_again_and_old_failures_stop_counting(engine: AsyncEngine) -> None:
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    config = OutboundConfig(unknown_recipients_limit=3, unknown_recipients_window_minutes=60)
    counter = BounceCounter(engine, config, publish)

    def bounce(at: datetime, *names: str) -> BounceReceived:
        failures = [{"recipient": f"{n}@far.example", "status": "5.1.1"} for n in names]
        return BounceReceived.model_validate({"mailbox": "a@c.example", "failures": failures, "failed_at": at})

    await counter.handle(bounce(T0, "a", "b"))
    await counter.handle(bounce(T0 + timedelta(minutes=61), "c", "d"))  # a and b have left the window
    assert published == []
    await counter.handle(bounce(T0 + timedelta(minutes=62), "e"))
    await counter.handle(bounce(T0 + timedelta(minutes=63), "f"))
    assert len(published) == 1  # crossed once in this window
    await counter.handle(bounce(T0 + timedelta(minutes=130), "g", "h", "i"))
    assert len(published) == 2 and published[0].report_id != published[1].report_id
