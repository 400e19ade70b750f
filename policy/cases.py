"""The case store: one transaction turns a report (or a deadline) into case state, history and commands."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport
from core.settings import Settings
from policy import facts as facts_mod
from policy import inventory, outbox
from policy.commands import Plan, acknowledgement, decision_commands
from policy.decide import decide
from policy.model import Decision, Facts, Outcome
from policy.resolve import Resolver
from policy.sla import add_working_hours
from policy.tables import case_history, case_reports, cases, customers, deadlines, statements


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
    await lock_customers(conn, report, now)
    existing = await conn.scalar(select(case_reports.c.case_id).where(case_reports.c.report_id == report.report_id))
    if existing:
        return str(existing)
    threaded = await thread_of(conn, report)
    if threaded is not None:
        return await _attach_reply(conn, threaded, report, now, settings)
    found = await facts_mod.gather(
        conn,
        report,
        settings.policy,
        now,
        trust=settings.trust,
        resolver=resolver,
        authorities=settings.dsa.authorities,
    )
    decision = decide(report, found, settings.policy)
    kind = facts_mod.effective_kind(report, settings.trust)
    received = report.received_at or now
    rules = _rules_json(decision)
    reasons = [r.reason for r in decision.rules]
    detail = {"report_id": report.report_id, "facts": _facts_json(found)}
    customer = await inventory.customer_row(conn, found.customer.id) if found.customer else None

    flags = [*decision.flags, *(["art18-suspicion"] if report.notice.threat_to_life else [])]
    if decision.outcome is Outcome.JOIN and found.open_case_id:
        case_id = found.open_case_id
        first_from_reporter = not await _reported_before(conn, case_id, report.reporter)
        await _attach(conn, case_id, report, received, kind)
        await conn.execute(
            update(cases).where(cases.c.id == case_id).values(report_count=cases.c.report_count + 1, updated_at=now)
        )
        await add_history(conn, case_id, now, "decision", decision.outcome.value, rules, detail)
        case = await case_row(conn, case_id)
        assert case is not None
        joined = Plan()
        receipt = acknowledgement(case, report, settings) if first_from_reporter else None
        joined.messages += [receipt] if receipt else []
        if report.notice.threat_to_life:
            joined.messages += decision_commands(
                Decision(Outcome.JOIN, decision.rules), case, report, None, settings, reasons=reasons, now=now
            ).messages
            await conn.execute(
                update(cases).where(cases.c.id == case_id).values(flags=[*(case["flags"] or []), "art18-suspicion"])
            )
        await commit_plan(conn, case_id, joined, now)
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
        "flags": flags,
        "automation": "fully",
        "order_due_at": (
            received + timedelta(hours=found.authority_deadline_hours) if found.authority_deadline_hours else None
        ),
    }
    if escalating:
        if found.authority:
            values["origin"] = "authority-order"  # an order on an open case: the order is what took effect
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
                origin=facts_mod.origin_of(report, found),
                received_at=received,
                **values,
            )
        )
        await _attach(conn, case_id, report, received, kind)
    await add_history(conn, case_id, now, "decision", decision.outcome.value, rules, detail)
    if decision.deadline_at is not None:
        await add_deadlines(conn, case_id, now, decision.deadline_at, settings)
    case = await case_row(conn, case_id)
    assert case is not None
    case["indicators"] = list(found.matched_indicators)
    plan = decision_commands(decision, case, report, customer, settings, reasons=reasons, now=now)
    receipt = acknowledgement(case, report, settings)
    if receipt is not None and (not escalating or not await _reported_before(conn, case_id, report.reporter, 1)):
        plan.messages.insert(0, receipt)
    if any(m.type == "notification.send.v1" and getattr(m, "kind", "") == "complainant-result" for m in plan.messages):
        await conn.execute(update(cases).where(cases.c.id == case_id).values(answered_at=now))
    await commit_plan(conn, case_id, plan, now)
    return case_id


async def add_deadlines(
    conn: AsyncConnection, case_id: str, warned_at: datetime, deadline: datetime, settings: Settings
) -> None:
    """The warning's expiry, and reminders to the customer half-way and shortly before it."""
    rows = [{"case_id": case_id, "kind": "warning-expiry", "due_at": deadline, "state": "pending"}]
    half = warned_at + (deadline - warned_at) / 2
    late = deadline - timedelta(hours=settings.dsa.reminder_before_hours)
    for kind, due in (("reminder-half", half), ("reminder-late", late)):
        if warned_at < due < deadline and (kind == "reminder-half" or late > half):
            rows.append({"case_id": case_id, "kind": kind, "due_at": due, "state": "pending"})
    await conn.execute(deadlines.insert(), rows)


async def commit_plan(conn: AsyncConnection, case_id: str, plan: Plan, now: datetime) -> None:
    """Queue a plan's commands, keep its statement of reasons, and note when a first measure took effect."""
    await outbox.add(conn, plan.messages)
    if plan.statement is not None:
        await conn.execute(
            statements.insert().values(
                case_id=case_id,
                customer_id=next(
                    (getattr(m, "customer_id", None) for m in plan.messages if m.type == "service.suspend.v1"), None
                ),
                issued_at=now,
                measure=plan.statement["restriction"]["scope"],
                ground=plan.statement["grounds"]["type"],
                automated=plan.statement["automation"]["decision"],
                data=plan.statement,
            )
        )
    acting = {"service.suspend.v1"} | {"notification.send.v1"}
    if any(
        m.type in acting and (m.type == "service.suspend.v1" or getattr(m, "kind", "") == "customer-warning")
        for m in plan.messages
    ):
        await conn.execute(
            update(cases).where(cases.c.id == case_id, cases.c.effect_at.is_(None)).values(effect_at=now)
        )


CASE_TAG = re.compile(r"\bAD-[0-9A-F]{10}\b")


async def thread_of(conn: AsyncConnection, report: AbuseReport) -> str | None:
    """The case a mail answers: its subject carries one of our case references (replies keep it)."""
    for tag in CASE_TAG.findall(report.subject or "")[:3]:
        if await conn.scalar(select(cases.c.id).where(cases.c.id == tag)):
            return str(tag)
    return None


async def _attach_reply(
    conn: AsyncConnection, case_id: str, report: AbuseReport, now: datetime, settings: Settings
) -> str:
    kind = facts_mod.effective_kind(report, settings.trust)
    await _attach(conn, case_id, report, report.received_at or now, kind)
    await conn.execute(
        update(cases)
        .where(cases.c.id == case_id)
        .values(report_count=cases.c.report_count + 1, updated_at=now, needs_attention=True)
    )
    reason = f"a reply from {'the reporter' if report.reporter_kind == 'person' else 'a third party'} joined the case"
    await add_history(
        conn,
        case_id,
        now,
        "reply",
        "threaded",
        [{"name": "reply-to-case", "reason": reason}],
        {"report_id": report.report_id, "subject": report.subject[:200]},
    )
    return case_id


async def _reported_before(conn: AsyncConnection, case_id: str, reporter: str | None, allowed: int = 0) -> bool:
    """True when the reporter already has more than `allowed` reports in the case (one receipt per reporter)."""
    if not reporter:
        return True
    rows = await conn.execute(select(case_reports.c.report).where(case_reports.c.case_id == case_id))
    count = sum(1 for r in rows if (r.report.get("reporter") or "").lower() == reporter.lower())
    return count > allowed


async def lock_customers(conn: AsyncConnection, report: AbuseReport, now: datetime) -> None:
    """PostgreSQL: lock the customers the report points at, so that replicas decide one customer's reports in turn
    (two reports at once would otherwise both see no open case and open two). SQLite serialises writers already.
    """
    if conn.dialect.name != "postgresql":
        return
    at = facts_mod.incident_time(report, now)
    domains = [*report.domains, *facts_mod.url_hosts(report.urls)]
    matches = await inventory.lookup(conn, ips=report.source_ips, domains=domains, mailboxes=report.emails, at=at)
    ids = sorted({m.customer_id for m in matches})
    if ids:
        locking = select(customers.c.id).where(customers.c.id.in_(ids)).order_by(customers.c.id).with_for_update()
        await conn.execute(locking)


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
