"""What the trust-and-secrets change keeps in the database, on SQLite and PostgreSQL: one generated link
secret for every replica, single-use answers, receipt rate limits; and doctor's link-secret check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from abuse_desk.doctor import database as doctor_database
from core.db import create_engine
from core.settings import ReceiptLimits, Settings, weak_secret
from policy.link_store import claim_use, link_secret, stored_link_secret
from policy.links import answer_key, make_token, read_token
from policy.receipt_limits import take_receipt
from policy.tables import link_uses, receipt_counts, secrets

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CONFIGURED = "configured-Xq7Lm2Wp9Tz4Rv8Kb3Nc6Hd1"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (secrets, link_uses, receipt_counts):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


async def test_the_generated_link_secret_is_strong_and_the_same_for_every_replica(
    engine: AsyncEngine, database_url: str
) -> None:
    other = create_engine(database_url)  # a second replica: its own engine on the same database
    try:
        found = await asyncio.gather(*(link_secret(e, Settings()) for e in (engine, other, engine, other)))
    finally:
        await other.dispose()
    assert len(set(found)) == 1 and weak_secret(found[0]) is None
    token = make_token(found[0], "AD-1", "C1", NOW + timedelta(days=1))
    assert read_token(await link_secret(engine, Settings()), token, NOW).case_id == "AD-1"


async def test_a_configured_link_secret_wins_and_is_not_stored(engine: AsyncEngine) -> None:
    settings = Settings.model_validate({"dsa": {"link_secret": CONFIGURED}})
    assert await link_secret(engine, settings) == CONFIGURED
    async with engine.connect() as conn:
        assert await stored_link_secret(conn) is None


async def test_doctor_fails_without_a_link_secret_and_passes_once_one_was_generated(
    engine: AsyncEngine, database_url: str
) -> None:
    settings = Settings.model_validate({"database_url": database_url})
    before = {c.name: c.state for c in await doctor_database(settings)}
    assert before == {"database": "ok", "link secret": "fail", "actions": "ok"}
    await link_secret(engine, settings)
    after = {c.name: c.state for c in await doctor_database(settings)}
    assert after == {"database": "ok", "link secret": "ok", "actions": "ok"}


async def test_a_customer_answer_cannot_be_replayed(engine: AsyncEngine) -> None:
    key = answer_key("token-of-AD-1", "contest")
    async with engine.begin() as conn:
        assert await claim_use(conn, key, "AD-1", "contest", NOW)
    async with engine.begin() as conn:
        assert not await claim_use(conn, key, "AD-1", "contest", NOW)
        assert await claim_use(conn, answer_key("token-of-AD-1", "help"), "AD-1", "help", NOW)


async def test_a_use_recorded_in_a_rolled_back_answer_is_not_kept(engine: AsyncEngine) -> None:
    key = answer_key("token-of-AD-2", "fixed")
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            assert await claim_use(conn, key, "AD-2", "fixed", NOW)
            raise RuntimeError("the answer failed")
    async with engine.begin() as conn:
        assert await claim_use(conn, key, "AD-2", "fixed", NOW)


async def test_receipts_are_limited_per_address_and_per_domain(engine: AsyncEngine) -> None:
    limits = ReceiptLimits(per_address=2, per_domain=3, window_hours=24)
    results = []
    for address in ("a@victim.example", "A@victim.example", "a@victim.example", "b@victim.example", "c@victim.example"):
        async with engine.begin() as conn:
            results.append(await take_receipt(conn, address, NOW, limits))
    assert [ok for ok, _ in results] == [True, True, False, True, False]
    assert "this address" in results[2][1] and "this domain" in results[4][1]
    async with engine.begin() as conn:
        assert (await take_receipt(conn, "someone@elsewhere.example", NOW, limits))[0]


async def test_the_receipt_window_slides(engine: AsyncEngine) -> None:
    limits = ReceiptLimits(per_address=1, per_domain=100, window_hours=2)
    async with engine.begin() as conn:
        assert (await take_receipt(conn, "a@victim.example", NOW, limits))[0]
        assert not (await take_receipt(conn, "a@victim.example", NOW + timedelta(minutes=90), limits))[0]
        assert (await take_receipt(conn, "a@victim.example", NOW + timedelta(hours=4), limits))[0]


async def test_doctor_names_a_case_whose_suspension_failed(engine: AsyncEngine, database_url: str) -> None:
    from datetime import UTC, datetime

    from policy.tables import cases

    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            cases.insert().values(
                id="AD-FAILED0001",
                status="suspending",
                category="phishing",
                service_ids=[],
                opened_at=now,
                updated_at=now,
                rules=[],
                needs_attention=True,
                flags=["action-failed"],
                report_count=1,
                incident_count=0,
                extension_used=False,
            )
        )
    settings = Settings.model_validate({"database_url": database_url})
    checks = {c.name: c for c in await doctor_database(settings)}
    assert checks["actions"].state == "fail" and "AD-FAILED0001" in checks["actions"].detail
