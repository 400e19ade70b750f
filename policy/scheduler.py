"""Deadlines: stored with due_at (UTC), polled, claimed safely (SKIP LOCKED on PostgreSQL); firing twice is harmless."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.messages import SendNotification
from core.settings import Settings
from policy import inventory, outbox
from policy.cases import add_history, case_row, commit_plan, first_report, reports_since
from policy.commands import case_context, decision_commands
from policy.decide import decide_deadline
from policy.model import Confirmation, Outcome
from policy.tables import cases, deadlines


async def fire_due(engine: AsyncEngine, settings: Settings, now: datetime, *, batch: int = 100) -> list[str]:
    """Fire every pending deadline due at `now`; returns the ids of the cases touched."""
    fired: list[str] = []
    while True:
        async with engine.begin() as conn:
            query = (
                select(deadlines.c.id, deadlines.c.case_id, deadlines.c.kind)
                .where(deadlines.c.state == "pending", deadlines.c.due_at <= now)
                .order_by(deadlines.c.due_at)
                .limit(batch)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            due = (await conn.execute(query)).all()
            for row in due:
                if row.kind.startswith("reminder"):
                    await _remind(conn, row.id, row.case_id, settings, now)
                else:
                    await _fire(conn, row.id, row.case_id, settings, now)
                fired.append(row.case_id)
        if len(due) < batch:
            return fired


async def _remind(conn: AsyncConnection, deadline_id: int, case_id: str, settings: Settings, now: datetime) -> None:
    """Remind a warned customer of the deadline (nothing if the case moved on)."""
    await conn.execute(update(deadlines).where(deadlines.c.id == deadline_id).values(state="done", fired_at=now))
    case = await case_row(conn, case_id)
    if case is None or case["status"] != "warned" or not case["customer_id"]:
        return
    customer = await inventory.customer_row(conn, case["customer_id"])
    if not customer or not customer.get("email"):
        return
    report = await first_report(conn, case_id)
    reminder = SendNotification(
        case_id=case_id,
        kind="customer-reminder",
        to=customer["email"],
        language=customer.get("language") or settings.notify.default_language,
        context=case_context(case, report, settings, customer=customer, now=now),
    )
    await add_history(conn, case_id, now, "deadline", "reminded", [], {"deadline_id": deadline_id})
    await outbox.add(conn, [reminder])


async def _fire(conn: AsyncConnection, deadline_id: int, case_id: str, settings: Settings, now: datetime) -> None:
    await conn.execute(update(deadlines).where(deadlines.c.id == deadline_id).values(state="done", fired_at=now))
    case = await case_row(conn, case_id)
    if case is None:
        return
    since = case["warned_at"] or case["opened_at"]
    decision = decide_deadline(
        case["status"],
        await reports_since(conn, case_id, since),
        settings.policy,
        case["confirmation"] or Confirmation.NONE,
    )
    rules = [asdict(r) for r in decision.rules]
    await add_history(conn, case_id, now, "deadline", decision.outcome.value, rules, {"deadline_id": deadline_id})
    if decision.outcome is Outcome.REVIEW:
        await conn.execute(
            update(cases)
            .where(cases.c.id == case_id)
            .values(status="needs-review", updated_at=now, rules=[r["name"] for r in rules])
        )
        return
    if decision.outcome is not Outcome.SUSPEND:
        return
    customer = await inventory.customer_row(conn, case["customer_id"]) if case["customer_id"] else None
    services = await inventory.account_services(conn, case["customer_id"]) if customer else []
    await conn.execute(
        update(cases)
        .where(cases.c.id == case_id)
        .values(status="suspended", updated_at=now, rules=[r["name"] for r in rules])
    )
    case = await case_row(conn, case_id)
    assert case is not None
    decision = replace(decision, suspend_services=tuple(services or case["service_ids"]))
    report = await first_report(conn, case_id)
    plan = decision_commands(
        decision, case, report, customer, settings, reasons=[r.reason for r in decision.rules], now=now
    )
    await commit_plan(conn, case_id, plan, now)
