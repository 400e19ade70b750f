"""Triage queries and operators on a real database: search (IP, CIDR, domain, URL, names), sort, pages, counts,
the "needs me" view, unknown values rejected; argon2 hashes, sign-in limits, sessions rotated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk import operators
from abuse_desk.database import upgrade
from abuse_desk.tables import operators as operators_table
from abuse_desk.tables import sign_in_attempts, web_sessions
from core.db import create_engine
from policy import queries
from policy.tables import case_reports, cases, customers, resources, services

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def case(n: int, **values: object) -> dict[str, object]:
    return {
        "id": f"AD-T{n:04d}",
        "status": "warned",
        "category": "phishing",
        "customer_id": f"C{n % 3}",
        "service_ids": [f"S{n % 3}"],
        "opened_at": NOW - timedelta(hours=n),
        "updated_at": NOW,
        "report_count": 1 + n % 4,
        "rules": ["first-complaint-warning"],
        "reporter": f"victim{n}@reporter.example",
        "reporter_kind": "person",
        "sla_due_at": NOW + timedelta(days=2),
        "flags": [],
    } | values


def report(n: int, ip: str, domain: str) -> dict[str, object]:
    return {
        "report_id": f"r{n:04d}",
        "case_id": f"AD-T{n:04d}",
        "received_at": NOW - timedelta(hours=n),
        "report": {"source_ips": [ip], "domains": [domain], "urls": [f"http://{domain}/login.php"],
                   "reporter": f"victim{n}@reporter.example", "evidence": f"kit number {n} found"},
    }


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (case_reports, cases, customers, services, resources, operators_table, web_sessions,
                      sign_in_attempts):
            await conn.execute(table.delete())
        await conn.execute(insert(customers), [
            {"id": f"C{i}", "name": name, "email": f"c{i}@x.example", "phone": "", "address": "", "country": "FR",
             "identity_verified": True} for i, name in enumerate(("Alpha Hosting", "Bravo Shop", "Charlie Blog"))
        ])
        await conn.execute(insert(services), [{"id": f"S{i}", "customer_id": f"C{i}", "kind": "vps", "name": f"s{i}"}
                                              for i in range(3)])
        await conn.execute(insert(resources), [
            {"service_id": "S1", "type": "mailbox", "value": "shop@bravo.example"},
            {"service_id": "S1", "type": "domain", "value": "bravo.example"},
            {"service_id": "S1", "type": "ip", "value": "198.51.100.7"},
        ])
        rows = [case(n) for n in range(1, 121)]
        rows[0] |= {"status": "needs-review"}
        rows[1] |= {"sla_due_at": NOW + timedelta(hours=1)}  # due soon
        rows[2] |= {"flags": ["art18-suspicion"]}
        await conn.execute(insert(cases), rows)
        await conn.execute(insert(case_reports), [
            report(n, f"203.0.113.{n}" if n < 100 else f"2001:db8::{n:x}", f"site{n}.example") for n in range(1, 121)
        ])
    yield eng
    await eng.dispose()


async def test_search_finds_a_case_by_ip_cidr_domain_url_customer_name_reporter_and_text(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        async def ids(term: str) -> list[str]:
            rows, _ = await queries.find_cases(conn, search=term, now=NOW, limit=500)
            return sorted(r["id"] for r in rows)

        assert await ids("203.0.113.42") == ["AD-T0042"]
        assert await ids("203.0.113.40/30") == ["AD-T0040", "AD-T0041", "AD-T0042", "AD-T0043"]
        assert await ids("2001:db8::/120") == [f"AD-T{n:04d}" for n in range(100, 121)]
        assert await ids("site17.example") == ["AD-T0017"]
        assert await ids("http://site18.example/login.php") == ["AD-T0018"]
        assert await ids("AD-T0019") == ["AD-T0019"]
        assert await ids("victim21@reporter") == ["AD-T0021"]
        assert await ids("kit number 22 ") == ["AD-T0022"]
        assert len(await ids("bravo shop")) == 40  # the customer's name, any case
        assert await ids("100%_") == []  # LIKE wildcards are literal


async def test_sort_pages_and_keys(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        first, total = await queries.find_cases(conn, sort="opened_at", limit=50, now=NOW)
        second, _ = await queries.find_cases(conn, sort="opened_at", limit=50, offset=50, now=NOW)
        by_count, _ = await queries.find_cases(conn, sort="-report_count", limit=5, now=NOW)
        by_name, _ = await queries.find_cases(conn, sort="customer_name", limit=1, now=NOW)
    assert total == 120 and len(first) == 50 and first[0]["id"] == "AD-T0120" and second[0]["id"] == "AD-T0070"
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert {r["report_count"] for r in by_count} == {4} and by_name[0]["customer_name"] == "Alpha Hosting"
    row = first[0]
    assert set(queries.LIST_FIELDS) <= set(row) and row["indicators"]["ips"] == ["2001:db8::78"]
    assert row["customer_name"] and "sla_state" in row and "attention" in row


async def test_needs_me_counts_and_unknown_values(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        needs, total = await queries.find_cases(conn, attention="any", now=NOW)
        counts = await queries.case_counts(conn, NOW)
        for bad in ({"status": "warnd"}, {"sla": "late"}, {"sort": "colour"}, {"attention": "me"}):
            with pytest.raises(queries.QueryError, match="one of"):
                await queries.find_cases(conn, now=NOW, **bad)  # type: ignore[arg-type]
        preview = await queries.preview_suspension(conn, "AD-T0001")
    assert {r["id"]: r["attention"] for r in needs} == {
        "AD-T0001": ["review"], "AD-T0002": ["sla-due-soon"], "AD-T0003": ["urgent"]
    }
    assert total == 3 and counts["attention"]["any"] == 3 and counts["attention"]["sla-due-soon"] == 1
    assert counts["status"]["warned"] == 119 and counts["status"]["needs-review"] == 1
    assert preview["services"] == [{"id": "S1", "kind": "vps", "name": "s1"}]
    assert preview["mailboxes"] == ["shop@bravo.example"] and preview["domains"] == ["bravo.example"]


async def test_operators_hashes_limits_and_rotating_sessions(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await operators.add(conn, "alice", "admin", "correct horse battery", "password", NOW)
        token = operators.new_token()
        await operators.add(conn, "bob", "ops", token, "token", NOW)
        with pytest.raises(operators.OperatorError, match="exists"):
            await operators.add(conn, "alice", "ops", "another long password", "password", NOW)
        with pytest.raises(operators.OperatorError, match="role"):
            await operators.add(conn, "carol", "root", "another long password", "password", NOW)
        stored = await operators.get(conn, "alice")
        assert stored and stored["secret_hash"].startswith("$argon2id$") and "horse" not in stored["secret_hash"]
        assert await operators.check(conn, "alice", "correct horse battery")
        assert not await operators.check(conn, "alice", "wrong")
        assert (await operators.token_operator(conn, token) or {}).get("name") == "bob"
        first, csrf1 = await operators.open_session(conn, "alice", NOW)
        second, csrf2 = await operators.open_session(conn, "alice", NOW, replaces=first)
        assert first != second and csrf1 != csrf2
        assert await operators.session(conn, first, NOW) is None  # the old session died at the new sign-in
        live = await operators.session(conn, second, NOW)
        assert live and live.operator == "alice" and live.admin and live.csrf == csrf2
        assert await operators.session(conn, second, NOW + timedelta(hours=13)) is None  # expired
        for _ in range(operators.MAX_FAILURES_PER_NAME):
            assert not await operators.throttled(conn, "alice", "192.0.2.1", NOW)
            await operators.record_failure(conn, "alice", "192.0.2.1", NOW)
        assert await operators.throttled(conn, "alice", "192.0.2.9", NOW)  # per name, from any address
        assert not await operators.throttled(conn, "alice", "192.0.2.9", NOW + timedelta(minutes=16))
        await operators.disable(conn, "alice", NOW)
        assert await operators.session(conn, second, NOW) is None and not await operators.check(
            conn, "alice", "correct horse battery"
        )
