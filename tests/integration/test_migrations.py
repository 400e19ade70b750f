"""The Alembic history builds exactly the schema the code declares, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

import actions.tables  # noqa: F401 - registers the tables
import policy.tables  # noqa: F401
from abuse_desk.database import upgrade
from core.db import create_engine, metadata
from tests.conftest import PG_URL, chosen_databases, require_service


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, metadata))


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_the_code(tmp_path: Path) -> None:
    await _check(f"sqlite:///{tmp_path}/m.db")


async def test_postgresql_schema_matches_the_code(request: pytest.FixtureRequest) -> None:
    if "postgresql" not in chosen_databases(request.config):
        pytest.skip("PostgreSQL is not among the test backends here (no server on 127.0.0.1:5432, not in CI)")
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"abuse_desk_m_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        await _check(PG_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await admin.dispose()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
