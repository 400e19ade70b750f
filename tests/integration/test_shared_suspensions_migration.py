"""Revision 0011: a case that was suspended on another case's ledger row gets a row of its own."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from types import ModuleType

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import MIGRATIONS
from actions.suspend import LedgerBackend
from actions.tables import suspensions
from core.messages import LiftSuspension, SuspendService
from policy.tables import cases, outbox

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rev0011", MIGRATIONS / "versions" / "0011_shared_suspensions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(connection: Connection, module: ModuleType) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        module.upgrade()


async def test_legacy_second_case_gets_its_row_and_keeps_the_service_suspended(engine: AsyncEngine) -> None:
    backend = LedgerBackend(engine)
    await backend.suspend(SuspendService(case_id="K1", customer_id="C1", service_ids=["S1"], reason="kit"))
    commands = {
        "K1": SuspendService(case_id="K1", customer_id="C1", service_ids=["S1"], reason="kit"),
        "K2": SuspendService(case_id="K2", customer_id="C1", service_ids=["S1", "S2"], reason="spam"),  # S2: no row
        "K3": SuspendService(case_id="K3", customer_id="C1", service_ids=["S1"], reason="old"),  # lifted since
    }
    status = {"K1": "suspended", "K2": "suspended", "K3": "lifted"}
    async with engine.begin() as conn:
        await conn.execute(delete(outbox))
        await conn.execute(delete(cases).where(cases.c.id.in_(list(status))))
        for case_id, command in commands.items():
            await conn.execute(
                insert(cases).values(
                    id=case_id,
                    status=status[case_id],
                    category="phishing",
                    customer_id="C1",
                    service_ids=command.service_ids,
                    opened_at=NOW,
                    updated_at=NOW,
                    rules=[],
                )
            )
            body = json.loads(command.to_bytes())
            await conn.execute(
                insert(outbox).values(
                    message_id=command.message_id,
                    type=command.type,
                    body=json.dumps(body),
                    created_at=NOW,
                    published_at=NOW,
                    case_id=case_id,
                )
            )
        await conn.run_sync(run, revision())
        await conn.run_sync(run, revision())  # again: nothing more
    async with engine.connect() as conn:
        rows = (await conn.execute(select(suspensions).order_by(suspensions.c.id))).all()
    assert [(r.case_id, r.service_id, r.state, r.lifted_at) for r in rows] == [
        ("K1", "S1", "active", None),
        ("K2", "S1", "active", None),
    ]
    assert rows[1].command_id == commands["K2"].message_id and rows[1].reason == "spam"
    done = await backend.lift(LiftSuspension(case_id="K1", customer_id="C1", service_ids=[], reason="fixed"))
    assert list(done) == [] and done.still_suspended == ["S1"]  # K2 still holds it
