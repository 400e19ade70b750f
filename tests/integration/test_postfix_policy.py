"""The Postfix policy service spoken to over a real socket, in the exact check_policy_service protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from abuse_desk.postfix_policy import policy_service
from actions.outbound_store import PostgresCounts
from actions.suspend import LedgerBackend
from actions.tables import mail_outbox, outbound_counts, outbound_reports, suspensions
from core.action_settings import OutboundConfig
from core.db import create_engine
from core.messages import LiftSuspension, Message, ReportParsed, SuspendService
from policy.inventory import import_inventory
from policy.tables import customers, resources, services
from tests.conftest import free_port

INVENTORY = {
    "customers": [
        {"id": "C1", "name": "Alice", "email": "alice@customer1.example", "created_at": "2021-03-01"},
        {"id": "C2", "name": "Zoe", "email": "zoe@customer2.example", "created_at": "2021-03-01"},
        {"id": "C3", "name": "Vic", "email": "vic@customer3.example", "created_at": "2021-03-01"},
    ],
    "services": [
        {"id": "S1", "customer_id": "C1", "kind": "web-hosting", "name": "site"},
        {"id": "S1b", "customer_id": "C1", "kind": "mailbox", "name": "mail"},
        {"id": "S2", "customer_id": "C2", "kind": "mail-pro", "name": "mail"},
        {"id": "S3", "customer_id": "C3", "kind": "vps", "name": "vic-vps"},
    ],
    "resources": [
        {"service_id": "S1", "type": "domain", "value": "customer1.example"},
        {"service_id": "S1b", "type": "mailbox", "value": "alice@customer1.example"},
        {"service_id": "S2", "type": "domain", "value": "customer2.example"},
        {"service_id": "S3", "type": "ip", "value": "203.0.113.20"},
        {"service_id": "S3", "type": "domain", "value": "customer3.example"},
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 10, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Policy:
    """A running service on 127.0.0.1 with what it published."""

    def __init__(self, engine: AsyncEngine, config: OutboundConfig, clock: Clock) -> None:
        self.published: list[Message] = []
        # No cache delay in tests: a suspension written during the test is in force for the next request.
        config = config.model_copy(update={"suspension_cache_seconds": 0.0})
        self.service = policy_service(engine, config, self.publish, clock)
        self.address: tuple[str, int] = ("", 0)

    async def publish(self, message: Message) -> None:
        self.published.append(message)

    async def __aenter__(self) -> Policy:
        self.address = await self.service.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.service.stop()


class PostfixClient:
    """What smtpd does: name=value lines, an empty line; reads `action=...` and an empty line; one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> PostfixClient:
        return cls(*await asyncio.open_connection(*address))

    async def ask(self, **attrs: str) -> str:
        request = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP"} | attrs
        self.writer.write("".join(f"{k}={v}\n" for k, v in request.items()).encode() + b"\n")
        await self.writer.drain()
        reply = await asyncio.wait_for(self.reader.readuntil(b"\n\n"), 10)
        return reply.decode()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def rcpt(i: int, **kw: str) -> dict[str, str]:
    return {
        "client_address": "198.51.100.7",
        "helo_name": "laptop",
        "recipient": f"r{i}@elsewhere.example",
        "instance": f"i{i // 10}",
    } | kw


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)  # the module's database, SQLite or PostgreSQL: emptied for each test
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (suspensions, mail_outbox, outbound_counts, outbound_reports, customers, services, resources):
            await conn.execute(table.delete())
    async with eng.begin() as conn:
        await import_inventory(conn, INVENTORY)
    yield eng
    await eng.dispose()


async def test_suspended_sender_gets_550_with_the_domain_until_lifted(engine: AsyncEngine) -> None:
    backend = LedgerBackend(engine)
    await backend.suspend(
        SuspendService(
            case_id="K1", customer_id="C2", service_ids=["S2"], scope="domain", targets=["customer2.example"]
        )
    )
    async with Policy(engine, OutboundConfig(), Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        expected = "action=550 5.7.1 outgoing mail from customer2.example has been suspended\n\n"
        assert await client.ask(**rcpt(1, sasl_username="zoe@customer2.example", sender="zoe@customer2.example")) == (
            expected
        )
        assert await client.ask(**rcpt(2, sender="bob@customer2.example")) == expected  # the same connection
        assert await client.ask(**rcpt(3, sasl_username="alice@customer1.example")) == "action=DUNNO\n\n"
        # An account suspension (services, no target) stops the mailboxes of those services too.
        await backend.suspend(SuspendService(case_id="K2", customer_id="C1", service_ids=["S1", "S1b"]))
        assert await client.ask(
            **rcpt(4, sasl_username="alice@customer1.example", sender="alice@customer1.example")
        ) == ("action=550 5.7.1 outgoing mail from customer1.example has been suspended\n\n")
        await backend.lift(LiftSuspension(case_id="K2", customer_id="C1", service_ids=[], reason="ok"))
        assert await client.ask(**rcpt(5, sasl_username="alice@customer1.example")) == "action=DUNNO\n\n"
        await client.close()


async def test_61st_recipient_in_an_hour_is_deferred_and_reported_once(engine: AsyncEngine) -> None:
    clock = Clock()
    async with Policy(engine, OutboundConfig(), clock) as policy:
        client = await PostfixClient.connect(policy.address)
        who = {"sasl_username": "alice@customer1.example", "sender": "alice@customer1.example"}
        for i in range(60):
            clock.now += timedelta(seconds=50)  # 60 recipients spread over 50 minutes
            assert await client.ask(**rcpt(i, **who)) == "action=DUNNO\n\n", i
        sixty_first = await client.ask(**rcpt(60, **who))
        assert sixty_first.startswith("action=450 4.7.1 alice@customer1.example ") and sixty_first.endswith("\n\n")
        assert "60 recipients in the last 60 minutes" in sixty_first
        assert (await client.ask(**rcpt(61, **who))).startswith("action=450 4.7.1")
        other = await client.ask(**rcpt(62, sasl_username="zoe@customer2.example", sender="zoe@customer2.example"))
        assert other == "action=DUNNO\n\n"  # counted per mailbox
        await client.close()
    [message] = policy.published  # once per mailbox per window
    assert isinstance(message, ReportParsed)
    report = message.report
    assert (report.format, report.category, report.reporter_kind) == ("outbound-limit", "spam", "internal")
    assert report.emails == ["alice@customer1.example"] and report.automated and report.reporter is None
    assert message.report_id == report.report_id and len(report.report_id) == 64
    assert "198.51.100.7" in report.evidence and "r1@elsewhere.example" not in report.evidence

    # The counters are in the database: a restarted service (or another replica) still defers...
    async with Policy(engine, OutboundConfig(), clock) as again:
        client = await PostfixClient.connect(again.address)
        assert (await client.ask(**rcpt(63, **who))).startswith("action=450 4.7.1")
        assert again.published == []  # ...without reporting the same window twice
        clock.now += timedelta(minutes=11)  # the first recipients leave the sliding hour
        assert await client.ask(**rcpt(64, **who)) == "action=DUNNO\n\n"
        await client.close()


async def test_limits_per_customer_and_plan_and_who_is_counted(engine: AsyncEngine) -> None:
    config = OutboundConfig(per_customer={"C1": 2}, per_plan={"mail-pro": 3})
    async with Policy(engine, config, Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        alice = {"sasl_username": "alice@customer1.example"}
        assert [await client.ask(**rcpt(i, **alice)) for i in range(3)][-1].startswith("action=450")
        zoe = {"sender": "zoe@customer2.example"}  # not authenticated but ours: counted by its plan
        answers = [await client.ask(**rcpt(i, **zoe)) for i in range(4)]
        assert answers[:3] == ["action=DUNNO\n\n"] * 3 and answers[3].startswith("action=450")
        stranger = {"sender": "someone@gmail.example"}  # inbound mail from outside: never counted
        assert {await client.ask(**rcpt(i, **stranger)) for i in range(5)} == {"action=DUNNO\n\n"}
        assert await client.ask(**(rcpt(9, **alice) | {"protocol_state": "DATA"})) == "action=DUNNO\n\n"
        assert await client.ask(**(rcpt(9, **alice) | {"request": "junk"})) == "action=DUNNO\n\n"
        await client.close()
        assert len(policy.published) == 2


async def test_protocol_edge_cases_keep_the_connection_and_bound_requests(engine: AsyncEngine) -> None:
    async with Policy(engine, OutboundConfig(), Clock()) as policy:
        reader, writer = await asyncio.open_connection(*policy.address)
        # Two pipelined requests, CRLF and a value containing "=", an unknown attribute, a line without "=".
        writer.write(
            b"request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nsender=a=b@x.example\r\nfuture_attr=1\r\n"
            b"garbage\r\n\r\nrequest=smtpd_access_policy\nprotocol_state=RCPT\nsender=\n\n"
        )
        await writer.drain()
        assert await reader.readuntil(b"\n\n") == b"action=DUNNO\n\n"
        assert await reader.readuntil(b"\n\n") == b"action=DUNNO\n\n"
        writer.write(b"x=" + b"y" * 70_000 + b"\n\n")  # over the request size bound: the server hangs up
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_rotating_local_parts_of_one_customer_are_deferred_after_the_customer_limit(engine: AsyncEngine) -> None:
    async with Policy(engine, OutboundConfig(recipients_per_hour=10), Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        answers = [await client.ask(**rcpt(i, sender=f"promo{i}@customer2.example")) for i in range(15)]
        await client.close()
    assert answers[:10] == ["action=DUNNO\n\n"] * 10  # ten different mailboxes, one recipient each
    assert all(a.startswith("action=450 4.7.1 the account of promo") for a in answers[10:]), answers[10]
    [message] = policy.published  # one report for the customer's window
    assert isinstance(message, ReportParsed) and message.report.emails == ["promo10@customer2.example"]


async def test_rotating_subdomains_and_logins_count_in_the_same_customer(engine: AsyncEngine) -> None:
    async with Policy(engine, OutboundConfig(recipients_per_hour=6), Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        senders = [f"x@s{i}.customer1.example" for i in range(3)] + ["alice@customer1.example"] * 3
        answers = [await client.ask(**rcpt(i, sasl_username=s, sender=s)) for i, s in enumerate(senders)]
        over = await client.ask(**rcpt(9, sasl_username="x@s9.customer1.example", sender="x@s9.customer1.example"))
        other = await client.ask(**rcpt(10, sender="zoe@customer2.example"))
        await client.close()
    assert answers == ["action=DUNNO\n\n"] * 6 and over.startswith("action=450 4.7.1 the account of x@s9.")
    assert other == "action=DUNNO\n\n"  # another customer has its own count


async def test_the_smallest_of_login_mailbox_and_customer_limits_applies(engine: AsyncEngine) -> None:
    config = OutboundConfig(per_sender={"alice@customer1.example": 3}, per_customer={"C2": 2})
    async with Policy(engine, config, Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        alice = [await client.ask(**rcpt(i, sasl_username="alice@customer1.example")) for i in range(4)]
        # A customer override is every one of its mailboxes' limit too, and the sum's.
        zoe = [await client.ask(**rcpt(i, sasl_username="zoe@customer2.example")) for i in range(3)]
        await client.close()
    assert alice[:3] == ["action=DUNNO\n\n"] * 3 and alice[3].startswith("action=450 4.7.1 alice@customer1.example ")
    assert "3 recipients" in alice[3]
    assert zoe[:2] == ["action=DUNNO\n\n"] * 2 and zoe[2].startswith(
        "action=450 4.7.1 zoe@customer2.example has sent to 2 "
    )


async def test_suspended_service_ip_without_sasl_is_refused_with_a_foreign_or_null_sender(engine: AsyncEngine) -> None:
    await LedgerBackend(engine).suspend(SuspendService(case_id="K3", customer_id="C3", service_ids=["S3"]))
    async with Policy(engine, OutboundConfig(), Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        refused = "action=550 5.7.1 outgoing mail from 203.0.113.20 has been suspended\n\n"
        vps = {"client_address": "203.0.113.20"}
        assert await client.ask(**rcpt(1, sender="ceo@bank.example", **vps)) == refused
        assert await client.ask(**rcpt(2, sender="", **vps)) == refused  # the null sender
        assert await client.ask(**(rcpt(3, sender="", **vps) | {"protocol_state": "MAIL"})) == refused
        assert await client.ask(**rcpt(4, sender="ceo@bank.example")) == "action=DUNNO\n\n"  # another client
        # With SASL the login decides (a customer of ours authenticating from that address is not the server).
        assert await client.ask(**rcpt(5, sasl_username="alice@customer1.example", **vps)) == "action=DUNNO\n\n"
        await client.close()


async def test_sasl_login_without_at_is_matched_to_its_account_and_counted(engine: AsyncEngine) -> None:
    async with Policy(engine, OutboundConfig(recipients_per_hour=2), Clock()) as policy:
        client = await PostfixClient.connect(policy.address)
        who = {"sasl_username": "vic-vps", "sender": "anyone@elsewhere.example"}
        answers = [await client.ask(**rcpt(i, **who)) for i in range(3)]
        assert answers[:2] == ["action=DUNNO\n\n"] * 2 and answers[2].startswith("action=450 4.7.1 vic-vps ")
        await LedgerBackend(engine).suspend(SuspendService(case_id="K4", customer_id="C3", service_ids=["S3"]))
        refused = await client.ask(**rcpt(4, **(who | {"sender": ""})))
        assert refused == "action=550 5.7.1 outgoing mail from vic-vps has been suspended\n\n"
        unknown = await client.ask(**rcpt(5, sasl_username="nobody", sender="x@elsewhere.example"))
        assert unknown.startswith("action=DUNNO")  # a login we do not know is still counted, not refused
        await client.close()


async def test_two_replicas_on_one_database_let_exactly_the_limit_through(engine: AsyncEngine) -> None:
    clock = Clock()
    config = OutboundConfig(recipients_per_hour=60)
    async with Policy(engine, config, clock) as one, Policy(engine, config, clock) as two:
        clients = [await PostfixClient.connect((one if i % 2 else two).address) for i in range(10)]
        who = {"sasl_username": "alice@customer1.example"}

        async def smtpd(client: PostfixClient, n: int) -> list[str]:
            return [await client.ask(**rcpt(n * 100 + j, **who)) for j in range(10)]

        answers = [a for batch in await asyncio.gather(*(smtpd(c, n) for n, c in enumerate(clients))) for a in batch]
        for client in clients:
            await client.close()
    assert answers.count("action=DUNNO\n\n") == 60, answers
    assert sum(a.startswith("action=450 4.7.1") for a in answers) == 40
    assert len(one.published) + len(two.published) == 1  # one report for the window, whichever replica saw it


def test_serves_on_uvloop_as_the_command_runs_it(database_url: str) -> None:
    """`abuse-desk serve` runs on uvloop, whose transports are no asyncio.Transport subclasses."""

    async def scenario() -> list[str]:
        eng = create_engine(database_url)
        await upgrade(eng)
        async with eng.begin() as conn:
            await conn.execute(outbound_counts.delete())
        try:
            async with Policy(eng, OutboundConfig(recipients_per_hour=3), Clock()) as policy:
                client = await PostfixClient.connect(policy.address)
                answers = [await client.ask(**rcpt(i, sasl_username="uv@loop.example")) for i in range(4)]
                await client.close()
        finally:
            await eng.dispose()
        return answers

    answers = uvloop.run(scenario())
    assert answers[:3] == ["action=DUNNO\n\n"] * 3 and answers[3].startswith("action=450 4.7.1 uv@loop.example ")


async def test_a_database_that_cannot_count_answers_the_configured_failure(engine: AsyncEngine) -> None:
    who = {"sasl_username": "alice@customer1.example"}
    for fail_open, expected in ((True, "action=DUNNO\n\n"), (False, "action=DEFER_IF_PERMIT 4.3.0 ")):
        async with Policy(engine, OutboundConfig(fail_open=fail_open), Clock()) as policy:
            policy.service.counter.store = PostgresCounts(f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
            client = await PostfixClient.connect(policy.address)
            assert (await client.ask(**rcpt(1, **who))).startswith(expected)
            assert (await client.ask(**rcpt(2, **who))).startswith(expected)  # the connection stays usable
            await client.close()
