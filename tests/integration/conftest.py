"""Integration fixtures: the action stage's tables on the module's database, emptied for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from actions.tables import mail_outbox, outbound_counts, outbound_reports, suspensions
from core.db import create_engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)  # the module's database, SQLite or PostgreSQL: emptied for each test
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (suspensions, mail_outbox, outbound_counts, outbound_reports):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()
