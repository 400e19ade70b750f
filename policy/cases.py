"""The case store: one transaction turns a report (or a deadline) into case state, history and commands."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport
from core.settings import Settings
from policy import facts as facts_mod
from policy import inventory, outbox
from policy.commands import decision_commands
from policy.decide import decide
from policy.model import Decision, Facts, Outcome
from policy.resolve import Resolver
from policy.sla import add_working_hours
from policy.tables import case_history, case_reports, cases, deadlines


def new_case_id() -> str:
    """A short, readable, unique case reference (AD-XXXXXXXXXX)."""
    return "AD-" + uuid.uuid4().hex[:10].upper()


def _rules_json(decision: Decision) -> list[dict[str, str]]:
    return [asdict(r) for r in decision.rules]


async def case_row(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    """One case as a dict, or None."""
    row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    return dict(row) if row else None


async def add_history(
    conn: AsyncConnection,
    case_id: str,
    at: datetime,
    kind: str,
    outcome: str | None,
    rules: list[dict[str, str]],
    detail: dict[str, Any],
) -> None:
    """Append to a case's audit trail."""
    await conn.execute(
        case_history.insert().values(case_id=case_id, at=at, kind=kind, outcome=outcome, rules=rules, detail=detail)
    )


def _facts_json(facts: Facts) -> dict[str, Any]:
    data = asdict(facts)
    data["now"] = facts.now.isoformat()
    if facts.customer and facts.customer.created_at:
        data["customer"]["created_at"] = facts.customer.created_at.isoformat()
    return data


async def handle_report(
    conn: AsyncConnection, report: AbuseReport, settings: Settings, now: datetime, *, resolver: Resolver | None = None
) -> str:
    """Decide one report and persist everything (case, history, deadline, outbox) in the caller's transaction.

    Idempotent: a report already attached to a case returns that case and changes nothing.
    """
    existing = await conn.scalar(select(case_reports.c.case_id).where(case_reports.c.report_id == report.report_id))
    if existing:
        return str(existing)
    found = await facts_mod.gather(conn, report, settings.policy, now, trust=settings.trust, resolver=resolver)
    decision = decide(report, found, settings.policy)
    kind = facts_mod.effective_kind(report, settings.trust)
    received = report.received_at or now
    rules = _rules_json(decision)
    reasons = [r.reason for r in decision.rules]
    detail = {"report_id": report.report_id, "facts": _facts_json(found)}
    customer = await inventory.customer_row(conn, found.customer.id) if found.customer else None

    if decision.outcome is Outcome.JOIN and found.open_case_id:
        case_id = found.open_case_id
        await _attach(conn, case_id, report, received, kind)
        await conn.execute(
            update(cases).where(cases.c.id == case_id).values(report_count=cases.c.report_count + 1, updated_at=now)
        )
        await add_history(conn, case_id, now, "decision", decision.outcome.value, rules, detail)
        return case_id

    escalating = found.open_case_id is not None  # a monitoring or review case that this report decides
    case_id = found.open_case_id if escalating and found.open_case_id else new_case_id()
    values: dict[str, Any] = {
        "status": decision.status or "received",
        "updated_at": now,
        "rules": [r["name"] for r in rules],
        "deadline_at": decision.deadline_at,
        "warned_at": now if decision.outcome is Outcome.WARN else None,
        "confirmation": decision.confirmation.value,
        "severity": decision.severity,
        "flags": list(decision.flags),
    }
    if escalating:
        await _attach(conn, case_id, report, received, kind)
        await conn.execute(
            update(cases).where(cases.c.id == case_id).values(report_count=cases.c.report_count + 1, **values)
        )
    else:
        await conn.execute(
            cases.insert().values(
                id=case_id,
                category=report.category,
                customer_id=found.customer.id if found.customer else None,
                service_ids=list(found.matched_services),
                opened_at=now,
                sla_due_at=add_working_hours(received, settings.policy.sla.hours, settings.policy.sla),
                report_count=1,
                reporter=report.reporter,
                reporter_kind=kind,
                language=report.language,
                complaint_message_id=report.message_id,
                **values,
            )
        )
        await _attach(conn, case_id, report, received, kind)
    await add_history(conn, case_id, now, "decision", decision.outcome.value, rules, detail)
    if decision.deadline_at is not None:
        await conn.execute(
            deadlines.insert().values(
                case_id=case_id, kind="warning-expiry", due_at=decision.deadline_at, state="pending"
            )
        )
    case = await case_row(conn, case_id)
    assert case is not None
    case["indicators"] = list(found.matched_indicators)
    messages = decision_commands(decision, case, report, customer, settings, reasons=reasons)
    if any(m.type == "notification.send.v1" and getattr(m, "to", None) == report.reporter for m in messages):
        await conn.execute(update(cases).where(cases.c.id == case_id).values(answered_at=now))
    await outbox.add(conn, messages)
    return case_id


async def _attach(conn: AsyncConnection, case_id: str, report: AbuseReport, received: datetime, kind: str) -> None:
    await conn.execute(
        case_reports.insert().values(
            report_id=report.report_id,
            case_id=case_id,
            received_at=received,
            reporter_kind=kind,
            report=report.model_dump(mode="json"),
        )
    )


async def first_report(conn: AsyncConnection, case_id: str) -> AbuseReport | None:
    """The report that opened a case."""
    row = (
        await conn.execute(
            select(case_reports.c.report)
            .where(case_reports.c.case_id == case_id)
            .order_by(case_reports.c.received_at)
            .limit(1)
        )
    ).first()
    return AbuseReport.model_validate(row.report) if row else None


async def reports_since(conn: AsyncConnection, case_id: str, since: datetime) -> int:
    """Reports attached to a case after an instant (new evidence since the warning)."""
    return int(
        await conn.scalar(
            select(func.count()).where(case_reports.c.case_id == case_id, case_reports.c.received_at > since)
        )
        or 0
    )
