"""Service-layer tests of every use case of a case's life (report, deadline, operator, customer, action event),
on SQLite and PostgreSQL, without a broker or a subprocess: the handlers are called in their unit of work."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from core.db import create_engine, metadata
from core.messages import ActionFailed, SendNotification, ServiceSuspended
from core.report import AbuseReport, Envelope, Incident
from core.settings import Settings
from policy import answers, ops, queries
from policy import cases as store
from policy.case import Status
from policy.events import action_event
from policy.intake import report_arrived
from policy.inventory_import import import_inventory
from policy.resolve import StaticResolver
from policy.scheduler import fire_due
from policy.tables import outbox, report_summaries
from policy.unit import Unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, in working hours
INVENTORY = {
    "customers": [
        {
            "id": f"C{n}",
            "name": f"Customer {n}",
            "email": f"owner{n}@customer{n}.example",
            "phone": "+33 1 23 45 67 89",
            "address": "1 rue de la Paix, Paris",
            "country": "FR",
            "language": "fr" if n == 1 else "en",
            "created_at": "2020-01-01",
            "identity_verified": True,
        }
        for n in (1, 2, 3)
    ],
    "services": [{"id": f"S{n}", "customer_id": f"C{n}", "kind": "vps", "name": f"vps{n}"} for n in (1, 2, 3)],
    "resources": [
        {"service_id": "S1", "type": "ip", "value": "203.0.113.10"},
        {"service_id": "S2", "type": "cidr", "value": "198.51.100.64/26"},
        {"service_id": "S3", "type": "ip", "value": "192.0.2.33"},
    ],
}


class Fetcher:
    """The customer's site as the re-check sees it: one status for every URL."""

    def __init__(self, status: int | None) -> None:
        self.status_code = status

    async def status(self, url: str, address: str) -> int | None:
        return self.status_code


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        if conn.dialect.name == "postgresql":  # one database per module there: every test starts empty
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        await import_inventory(conn, INVENTORY)
    yield eng
    await eng.dispose()


def strong(settings: Settings) -> Settings:
    """The same settings with every report taken as confirmed (small installs that trust their mailbox)."""
    return settings.model_copy(update={"policy": settings.policy.model_copy(update={"require_confirmation": False})})


def complaint(report_id: str, *ips: str, urls: tuple[str, ...] = (), text: str = "") -> AbuseReport:
    return AbuseReport(
        report_id=report_id,
        format="freetext",
        category="phishing",
        source_ips=list(ips),
        urls=list(urls),
        reporter="victim@reporter.example",
        reporter_kind="person",
        subject="phishing",
        received_at=NOW,
        language="en",
        evidence=text or " ".join(ips),
    )


def feed(report_id: str, rows: list[tuple[str, int]]) -> AbuseReport:
    """A CSV feed: one incident per row, each with its own line as evidence."""
    incidents = [
        Incident(ip=ip, port=port, tag="scan_redis", evidence=f"ip,port,tag\n{ip},{port},scan_redis")
        for ip, port in rows
    ]
    return AbuseReport(
        report_id=report_id,
        format="shadowserver",
        category="malware",
        source_ips=sorted({ip for ip, _ in rows}),
        reporter="autoreports@cert.example",
        reporter_kind="machine",
        automated=True,
        received_at=NOW,
        evidence="ip,port,tag\n" + "\n".join(f"{ip},{port},scan_redis" for ip, port in rows),
        incidents=incidents,
    )


async def outbox_bodies(engine: AsyncEngine, *, held: bool | None = None) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        query = select(outbox.c.body, outbox.c.held).order_by(outbox.c.id)
        rows = (await conn.execute(query)).all()
    return [json.loads(r.body) for r in rows if held is None or bool(r.held) is held]


async def arrive(engine: AsyncEngine, settings: Settings, report: AbuseReport, now: datetime = NOW) -> list[str]:
    return await report_arrived(engine, report, settings, now, resolver=StaticResolver({}))


async def load(engine: AsyncEngine, case_id: str) -> Any:
    async with engine.connect() as conn:
        return await store.load(conn, case_id)


async def test_a_report_opens_one_case_and_a_redelivery_changes_nothing(
    engine: AsyncEngine, settings: Settings
) -> None:
    s = strong(settings)
    first = await arrive(engine, s, complaint("r1", "203.0.113.10"))
    mails = await outbox_bodies(engine)
    again = await arrive(engine, s, complaint("r1", "203.0.113.10"))
    assert again == first and len(first) == 1
    assert await outbox_bodies(engine) == mails
    case = await load(engine, first[0])
    assert case.status is Status.WARNED and case.customer_id == "C1" and case.incident_count == 1


async def test_a_report_naming_three_customers_makes_three_cases_each_told_only_its_own(
    engine: AsyncEngine, settings: Settings
) -> None:
    s = strong(settings)
    rows = [("203.0.113.10", 6379), ("198.51.100.70", 6379), ("198.51.100.71", 6379), ("192.0.2.33", 23)]
    rows += [("100.64.0.9", 6379)]  # nothing of ours
    decided = await arrive(engine, s, feed("bulk-1", rows))
    assert len(decided) == 3
    customers = {(await load(engine, c)).customer_id for c in decided}
    assert customers == {"C1", "C2", "C3"}
    async with engine.connect() as conn:
        summary = (await conn.execute(select(report_summaries))).mappings().one()
    assert summary["incident_count"] == 5 and summary["not_ours"] == 1
    own = {"C1": {"203.0.113.10"}, "C2": {"198.51.100.70", "198.51.100.71"}, "C3": {"192.0.2.33"}}
    everyone = {ip for ip, _ in rows}
    warnings = [b for b in await outbox_bodies(engine) if b.get("kind") == "customer-warning"]
    assert len(warnings) == 3
    for mail in warnings:
        customer = next(c for c in own if mail["to"].startswith(f"owner{c[1]}@"))
        text = json.dumps(mail["context"])
        assert {ip for ip in everyone if ip in text} == own[customer], mail["to"]


async def test_the_same_incident_again_adds_to_the_count_without_a_new_decision(
    engine: AsyncEngine, settings: Settings
) -> None:
    s = strong(settings)
    [case_id] = await arrive(engine, s, feed("day-1", [("198.51.100.70", 6379)]))
    before = await outbox_bodies(engine)
    [again] = await arrive(engine, s, feed("day-2", [("198.51.100.70", 6379)]), NOW + timedelta(days=1))
    assert again == case_id
    case = await load(engine, case_id)
    assert case.report_count == 2 and case.incident_count == 2
    async with engine.connect() as conn:
        listed = await store.case_incidents(conn, case_id)
    assert [(i["ip"], i["count"]) for i in listed] == [("198.51.100.70", 2)]
    assert [b for b in await outbox_bodies(engine) if b not in before] == []  # no new mail


async def test_the_deadline_suspends_and_the_mails_wait_for_the_platform(
    engine: AsyncEngine, settings: Settings
) -> None:
    s = strong(settings)
    [case_id] = await arrive(engine, s, complaint("r1", "203.0.113.10"))
    await fire_due(engine, s, NOW + timedelta(hours=49), fetcher=Fetcher(None), resolver=StaticResolver({}))
    case = await load(engine, case_id)
    assert case.status is Status.SUSPENDING
    sent = await outbox_bodies(engine, held=False)
    held = await outbox_bodies(engine, held=True)
    assert any(b["type"] == "service.suspend.v1" for b in sent)
    assert {b.get("kind") for b in held} == {"customer-suspension"}
    async with engine.begin() as conn:
        event = ServiceSuspended(case_id=case_id, customer_id="C1", service_ids=["S1"], backend="ledger")
        assert await action_event(Unit(conn, s, NOW + timedelta(hours=50)), event)
    assert (await load(engine, case_id)).status is Status.SUSPENDED
    assert await outbox_bodies(engine, held=True) == []


async def test_a_url_gone_at_the_deadline_resolves_the_case(engine: AsyncEngine, settings: Settings) -> None:
    s = strong(settings)
    report = complaint("r1", urls=("http://203.0.113.10/login",), text="phishing at http://203.0.113.10/login")
    [case_id] = await arrive(engine, s, report)
    await fire_due(engine, s, NOW + timedelta(hours=49), fetcher=Fetcher(404), resolver=StaticResolver({}))
    case = await load(engine, case_id)
    assert case.status is Status.RESOLVED and case.rules == ("deadline-recheck-gone",)
    kinds = [b.get("kind") for b in await outbox_bodies(engine)]
    assert "customer-recheck" in kinds and not any(
        b["type"] == "service.suspend.v1" for b in await outbox_bodies(engine)
    )


async def test_a_url_still_served_at_the_deadline_of_a_weak_case_is_held_for_a_person(
    engine: AsyncEngine, settings: Settings
) -> None:
    report = complaint("r1", urls=("http://203.0.113.10/login",), text="phishing at http://203.0.113.10/login")
    [case_id] = await arrive(engine, settings, report)  # weak: only our own cross-check
    assert (await load(engine, case_id)).status is Status.WARNED
    await fire_due(engine, settings, NOW + timedelta(hours=49), fetcher=Fetcher(200), resolver=StaticResolver({}))
    case = await load(engine, case_id)
    assert case.status is Status.NEEDS_REVIEW and case.needs_attention
    assert "deadline-recheck-still-there" in case.rules and "deadline-needs-confirmation" in case.rules


async def test_an_exhausted_action_flags_the_case_and_alerts_ops_once(engine: AsyncEngine, settings: Settings) -> None:
    s = strong(settings)
    [case_id] = await arrive(engine, s, complaint("r1", "203.0.113.10"))
    failed = ActionFailed(case_id=case_id, action="suspend", reason="webhook: ConnectError", command_id="x")
    for _ in range(2):  # a redelivered event
        async with engine.begin() as conn:
            await action_event(Unit(conn, s, NOW), failed)
    case = await load(engine, case_id)
    assert case.needs_attention and "action-failed" in case.flags
    alerts = [b for b in await outbox_bodies(engine) if b.get("kind") == "ops-action-failed"]
    assert len(alerts) == 1


async def test_an_operator_confirms_then_lifts_and_the_trail_names_them(
    engine: AsyncEngine, settings: Settings
) -> None:
    [case_id] = await arrive(engine, settings, complaint("r1", "203.0.113.10"))  # no evidence: a person decides
    assert (await load(engine, case_id)).status is Status.NEEDS_REVIEW
    async with engine.begin() as conn:
        await ops.apply(conn, case_id, "confirm", "seen the kit", settings, NOW, actor="alice")
    assert (await load(engine, case_id)).status is Status.WARNED
    async with engine.begin() as conn:
        await ops.apply(conn, case_id, "suspend-now", "still live", settings, NOW, actor="bob")
    assert (await load(engine, case_id)).status is Status.SUSPENDING
    async with engine.begin() as conn:
        with pytest.raises(ops.CaseActionError):
            await ops.apply(conn, case_id, "resolve", "no", settings, NOW, actor="bob")
        await ops.apply(conn, case_id, "lift", "customer cleaned up", settings, NOW, actor="carol", customer_text="OK")
    async with engine.connect() as conn:
        shown = await queries.show_case(conn, case_id)
    assert shown is not None and shown["status"] == "lifted"
    actors = [h["detail"].get("actor") for h in shown["history"] if h["kind"] == "ops"]
    assert actors == ["alice", "bob", "carol"]
    lift = next(b for b in await outbox_bodies(engine) if b.get("kind") == "customer-lift")
    assert "customer cleaned up" not in json.dumps(lift)  # the audit note is not the customer's text


async def test_a_customer_says_fixed_and_the_recheck_resolves(engine: AsyncEngine, settings: Settings) -> None:
    s = strong(settings)
    report = complaint("r1", urls=("http://203.0.113.10/login",))
    [case_id] = await arrive(engine, s, report)
    async with engine.begin() as conn:
        outcome = await answers.apply(
            conn,
            case_id,
            "C1",
            "fixed",
            "removed",
            {},
            s,
            NOW + timedelta(hours=2),
            fetcher=Fetcher(404),
            resolver=StaticResolver({}),
        )
    assert outcome["outcome"] == "resolved"
    assert (await load(engine, case_id)).status is Status.RESOLVED
    async with engine.begin() as conn:
        with pytest.raises(answers.AnswerError):
            await answers.apply(conn, case_id, "C2", "help", "", {}, s, NOW, fetcher=None, resolver=StaticResolver({}))


async def test_a_crash_in_the_middle_of_a_bulk_report_neither_loses_nor_repeats(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policy.intake

    s = strong(settings)
    s = s.model_copy(update={"policy": s.policy.model_copy(update={"group_batch": 1})})  # one customer per transaction
    report = feed("bulk-crash", [("203.0.113.10", 6379), ("198.51.100.70", 6379), ("192.0.2.33", 6379)])
    real = policy.intake.decide_part
    calls = {"n": 0}

    async def dies_on_the_second(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("kill -9")
        return await real(*args, **kwargs)

    monkeypatch.setattr(policy.intake, "decide_part", dies_on_the_second)
    with pytest.raises(RuntimeError):
        await arrive(engine, s, report)
    assert len([b for b in await outbox_bodies(engine) if b.get("kind") == "customer-warning"]) == 1
    monkeypatch.setattr(policy.intake, "decide_part", real)
    decided = await arrive(engine, s, report)  # the broker redelivers it
    again = await arrive(engine, s, report)  # and once more, after the ack was lost
    assert sorted(decided) == sorted(again) and len(set(decided)) == 3
    warnings = [b["to"] for b in await outbox_bodies(engine) if b.get("kind") == "customer-warning"]
    assert sorted(warnings) == sorted(f"owner{n}@customer{n}.example" for n in (1, 2, 3))


async def test_a_customer_with_many_incidents_gets_an_excerpt_and_all_of_them_as_csv(
    engine: AsyncEngine, settings: Settings
) -> None:
    from actions.render import render

    rows = [(f"198.51.100.{64 + n}", 6379) for n in range(25)] + [("100.64.0.9", 6379)]
    await arrive(engine, strong(settings), feed("many", rows))
    [warning] = [b for b in await outbox_bodies(engine) if b.get("kind") == "customer-warning"]
    context = warning["context"]
    assert context["incident_total"] == 25 and len(context["incident_rows"]) == 20
    assert context["incidents_csv"].count("\r\n") == 26 and "100.64.0.9" not in json.dumps(context)
    command = SendNotification.model_validate(warning)
    mail = render(command, sender="abuse@hosting.example", default_language="en", now=NOW)
    [attachment] = [p for p in mail.iter_attachments() if p.get_filename() == "incidents.csv"]
    assert attachment.get_content().count("198.51.100.") == 25


async def test_a_stranger_quoting_a_case_reference_cannot_block_the_customers_fixed(
    engine: AsyncEngine, settings: Settings
) -> None:
    url = ("http://203.0.113.10/login",)
    [case_id] = await arrive(engine, settings, complaint("r1", urls=url))  # weak: the URL is on the customer's IP
    stranger = complaint("r2", urls=url).model_copy(
        update={"reporter": "mallory@elsewhere.example", "subject": f"Re: [Example] {case_id}"}
    )
    [joined] = await arrive(engine, settings, stranger, NOW + timedelta(hours=1))
    assert joined == case_id  # more evidence for the case, not a reply from its reporter
    case = await load(engine, case_id)
    assert case.report_count == 2 and not case.needs_attention
    async with engine.begin() as conn:
        outcome = await answers.apply(
            conn,
            case_id,
            "C1",
            "fixed",
            "removed",
            {},
            settings,
            NOW + timedelta(hours=2),
            fetcher=Fetcher(404),
            resolver=StaticResolver({}),
        )
    assert outcome["outcome"] == "resolved", outcome  # the stranger's unconfirmed report counts for nothing


async def test_a_reply_from_the_reporter_joins_its_case_and_asks_for_a_person(
    engine: AsyncEngine, settings: Settings
) -> None:
    s = strong(settings)
    [case_id] = await arrive(engine, s, complaint("r1", "203.0.113.10"))
    reply = complaint("r2").model_copy(
        update={
            "subject": f"Re: [Example Hosting] {case_id}",
            "envelope": Envelope(mail_from="victim@reporter.example", received_at=NOW),
            "source_ips": [],
        }
    )
    assert await arrive(engine, s, reply, NOW + timedelta(hours=1)) == [case_id]
    assert await arrive(engine, s, reply, NOW + timedelta(hours=1)) == [case_id]  # redelivered: attached once
    case = await load(engine, case_id)
    assert case.report_count == 2 and case.needs_attention and case.status is Status.WARNED


async def test_customer_cases_reads_the_case_to_join_and_the_earlier_offences_in_one_query(engine: AsyncEngine) -> None:
    """The newest open case of the category is the one to join; confirmed cases of the window count as earlier
    offences, but neither that open case, nor a notice, nor one opened before the window, nor a rejected one."""
    from policy.case import Case
    from policy.facts import customer_cases

    def case(n: int, status: Status, category: str, days_ago: float, customer: str = "C1") -> Case:
        at = NOW - timedelta(days=days_ago)
        return Case(f"AD-{n:010d}", status, category, customer, ("S1",), at, at)

    rows = [
        case(1, Status.WARNED, "phishing", 3),  # open (warned) and confirmed: the case to join, not an offence
        case(2, Status.NEEDS_REVIEW, "phishing", 10),  # open, older
        case(3, Status.RESOLVED, "spam", 20),  # an earlier offence
        case(4, Status.SUSPENDED, "malware", 30),  # an earlier offence (and open, but another category)
        case(5, Status.RESOLVED, "vulnerability", 5),  # a notice: no accusation
        case(6, Status.RESOLVED, "spam", 400),  # before the window
        case(7, Status.REJECTED, "phishing", 1),  # rejected: neither
        case(8, Status.RESOLVED, "spam", 2, customer="C2"),  # another customer
    ]
    async with engine.begin() as conn:
        for c in rows:
            await store.insert(conn, c)
        since = NOW - timedelta(days=90)
        found = await customer_cases(conn, "C1", "phishing", since, ["vulnerability"])
        assert (found.open_case_id, found.open_case_status, found.confirmed_in_window) == ("AD-0000000001", "warned", 2)
        found = await customer_cases(conn, "C1", "ddos", since, ["vulnerability"])
        assert (found.open_case_id, found.confirmed_in_window) == (None, 3)  # no open ddos case: case 1 counts too
        found = await customer_cases(conn, "C3", "phishing", since, [])
        assert (found.open_case_id, found.confirmed_in_window) == (None, 0)
