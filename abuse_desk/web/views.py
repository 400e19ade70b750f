"""What the ops pages show, read from the stages' tables: cases with countdowns, one case in full, actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from abuse_desk.watch import countdown
from abuse_desk.web.casework import available
from actions.ledger import suspension_progress
from actions.tables import mail_outbox
from core.redact import redact_report
from core.report import AbuseReport
from policy import inventory, queries
from policy.queries import sla_state
from policy.tables import case_reports

EVIDENCE_LIMIT = 4000


def _with_clocks(case: dict[str, Any], now: datetime) -> dict[str, Any]:
    return case | {
        "sla_state": sla_state(case, now),
        "sla_countdown": countdown(case.get("sla_due_at"), now),
        "deadline_countdown": countdown(case.get("deadline_at"), now) if case.get("status") == "warned" else "",
    }


async def case_list(
    conn: AsyncConnection, now: datetime, **filters: Any
) -> tuple[list[dict[str, Any]], int, dict[str, dict[str, int]]]:
    """One page of cases (filters of policy.queries.find_cases) with countdowns, the total, and the counts."""
    rows, total = await queries.find_cases(conn, now=now, **filters)
    return [_with_clocks(c, now) for c in rows], total, await queries.case_counts(conn, now)


async def case_page(conn: AsyncConnection, case_id: str, now: datetime) -> dict[str, Any] | None:
    """One case: summary, customer, reports with redacted evidence, decision history, actions, allowed buttons."""
    case = await queries.show_case(conn, case_id)
    if case is None:
        return None
    case = _with_clocks(case, now)
    case["customer"] = await inventory.customer_row(conn, case["customer_id"]) if case["customer_id"] else None
    rows = await conn.execute(
        select(case_reports.c.report).where(case_reports.c.case_id == case_id).order_by(case_reports.c.received_at)
    )
    evidence: dict[str, str] = {}
    for row in rows:
        report = AbuseReport.model_validate(row.report)
        text = redact_report(report.evidence or "", report)
        evidence[report.report_id] = text[:EVIDENCE_LIMIT] + ("\n[…]" if len(text) > EVIDENCE_LIMIT else "")
    for r in case["reports"]:
        r["evidence"] = evidence.get(r["report_id"], "")
    case["suspensions"] = await suspension_progress(conn, case_id)  # state, attempts, last error, also held by
    case["mails"] = [
        dict(r)
        for r in (
            await conn.execute(
                select(
                    mail_outbox.c.kind,
                    mail_outbox.c.recipient,
                    mail_outbox.c.state,
                    mail_outbox.c.attempts,
                    mail_outbox.c.created_at,
                    mail_outbox.c.sent_at,
                    mail_outbox.c.last_error,
                )
                .where(mail_outbox.c.case_id == case_id)
                .order_by(mail_outbox.c.id)
            )
        ).mappings()
    ]
    case["allowed"] = available(case["status"])
    case["customer_cases"] = (
        [c for c in await queries.customer_cases(conn, case["customer_id"]) if c["id"] != case_id]
        if case["customer_id"]
        else []
    )
    return case
