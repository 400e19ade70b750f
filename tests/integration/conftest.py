"""Integration fixtures: the action stage's tables on the module's database, emptied for each test; every test's
broker prefix deleted afterwards (queues, retry and dead queues, exchanges), whoever declared them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from actions.tables import mail_outbox, outbound_counts, outbound_reports, suspensions
from core.broker import Broker
from core.db import create_engine
from tests.conftest import AMQP_URL, service_up


@pytest.fixture(autouse=True)
async def _delete_the_prefix_afterwards(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A finalizer for tests that use a prefix: whatever they (or a listener, or a worker) declared goes."""
    prefix = request.getfixturevalue("prefix") if "prefix" in request.fixturenames else None
    yield
    if prefix is None or not service_up("127.0.0.1", 5672):
        return
    broker = Broker(AMQP_URL, prefix)
    await broker.connect(attempts=3, declare=False)
    try:
        await broker.delete_topology()
    finally:
        await broker.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)  # the module's database, SQLite or PostgreSQL: emptied for each test
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (suspensions, mail_outbox, outbound_counts, outbound_reports):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()
