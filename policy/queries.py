"""Read-side queries on cases for ops and scripts (the JSON shapes of design §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from policy.sla import DUE_SOON, sla_fields, sla_matches, sla_state
from policy.tables import case_history, case_reports, cases

__all__ = ["DUE_SOON", "list_cases", "show_case", "sla_state"]  # sla_state and DUE_SOON live in policy.sla

LIST_FIELDS = (
    "id",
    "status",
    "category",
    "customer_id",
    "service_ids",
    "report_count",
    "opened_at",
    "updated_at",
    "sla_due_at",
    "answered_at",
    "deadline_at",
    "rules",
    "reporter_kind",
    "needs_attention",
    "confirmation",
    "severity",
    "flags",
)

async def list_cases(
    conn: AsyncConnection,
    status: str | None = None,
    limit: int = 1000,
    *,
    sla: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Cases, newest first, optionally of one status and/or one SLA state (breached, due-soon, ...)."""
    now = now or datetime.now(UTC)
    query = select(cases).order_by(cases.c.opened_at.desc(), cases.c.id).limit(limit)
    if status:
        query = query.where(cases.c.status == status)
    rows = (await conn.execute(query)).mappings().all()
    out = [{k: row[k] for k in LIST_FIELDS} | sla_fields(dict(row), now) for row in rows]  # SLA rules: policy.sla
    return [c for c in out if sla is None or sla_matches(c, sla)]


async def show_case(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    """One case with its reports (summaries) and full history (rules, reasons, facts)."""
    row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    if row is None:
        return None
    case: dict[str, Any] = dict(row)
    reports = await conn.execute(
        select(case_reports).where(case_reports.c.case_id == case_id).order_by(case_reports.c.received_at)
    )
    case["reports"] = [
        {
            "report_id": r.report_id,
            "received_at": r.received_at,
            "format": r.report.get("format"),
            "category": r.report.get("category"),
            "reporter": r.report.get("reporter"),
            "source_ips": r.report.get("source_ips"),
            "domains": r.report.get("domains"),
            "urls": r.report.get("urls"),
            "subject": r.report.get("subject"),
        }
        for r in reports
    ]
    history = await conn.execute(
        select(case_history).where(case_history.c.case_id == case_id).order_by(case_history.c.id)
    )
    case["history"] = [dict(h) for h in history.mappings()]
    return case
