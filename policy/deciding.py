"""Deciding the part of a report about one customer: gather the facts, decide(), then join, escalate or open a case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from core.messages import SendNotification
from core.report import AbuseReport
from policy import cases as store
from policy import facts as facts_mod
from policy import inventory, receipt_limits
from policy.case import Case, Status
from policy.commands import acknowledgement, decision_commands
from policy.decide import decide
from policy.model import Confirmation, Decision, Facts, Outcome
from policy.resolve import Resolver
from policy.sla import add_working_hours
from policy.tables import case_history
from policy.unit import Plan, Unit


def urgent_flags(report: AbuseReport) -> tuple[str, ...]:
    """Flags that put a case on top of every list and alert ops at once."""
    notice = report.notice
    signs = {"art18-suspicion": notice.threat_to_life, "csam": notice.csam, "authority-order": notice.authority_order}
    found = tuple(name for name, present in signs.items() if present)
    return (*found, "urgent") if found else ()


def facts_json(facts: Facts) -> dict[str, Any]:
    """The facts of a decision as stored in the audit trail."""
    data = asdict(facts)
    data["now"] = facts.now.isoformat()
    if facts.customer and facts.customer.created_at:
        data["customer"]["created_at"] = facts.customer.created_at.isoformat()
    return data


async def decide_part(
    unit: Unit,
    report: AbuseReport,
    customer_id: str | None,
    *,
    resolver: Resolver | None,
    matches: Sequence[inventory.Match] | None = None,
) -> str:
    """Decide one part (or a whole single-customer report) and persist case, incidents, trail and commands."""
    settings = unit.settings
    found = await facts_mod.gather(
        unit.conn,
        report,
        settings.policy,
        unit.now,
        trust=settings.trust,
        resolver=resolver,
        authorities=settings.dsa.authorities,
        customer_id=customer_id,
        matches=matches,
        known=unit.known,
    )
    decision = decide(report, found, settings.policy)
    if decision.outcome is Outcome.JOIN and found.open_case_id:
        return await _join(unit, report, decision, found.open_case_id)
    return await _open_or_escalate(unit, report, decision, found)


async def _record(
    unit: Unit, case: Case, report: AbuseReport, decision: Decision, detail: dict[str, Any], *, stored: bool = True
) -> Case:
    """Attach the report and its incidents to the case and write the decision to its trail (`stored`: the case
    row exists already; a new one is inserted once, complete, by the caller)."""
    kind = facts_mod.effective_kind(report, unit.settings.trust)
    received = report.received_at or unit.now
    await store.attach(unit.conn, case.id, report, received, kind, decision.confirmation.value)
    window = timedelta(hours=unit.settings.policy.incident_window_hours)
    new, repeated = await store.add_incidents(
        unit.conn, case.id, report.report_id, report.incidents, unit.now, window, fresh=not stored
    )
    rules = [asdict(r) for r in decision.rules]
    await unit.history(case.id, "decision", decision.outcome.value, rules, detail | {"incidents": [new, repeated]})
    after = case.change(unit.now, incident_count=case.incident_count + new + repeated)
    if stored:
        await unit.save(case, after)
    return after


async def _join(unit: Unit, report: AbuseReport, decision: Decision, case_id: str) -> str:
    """More evidence for an open case: counted, no new decision; a first receipt per reporter; Art. 18 alerts."""
    case = await unit.load(case_id)
    assert case is not None
    first_from_reporter = not await store.reported_before(unit.conn, case_id, report.reporter)
    joined = case.change(unit.now, report_count=case.report_count + 1)
    await unit.save(case, joined)
    case = await _record(unit, joined, report, decision, {"report_id": report.report_id})
    plan = Plan()
    receipt = await _receipt(unit, case, report) if first_from_reporter else None
    plan.messages += [receipt] if receipt else []
    if urgent_flags(report):
        reasons = [r.reason for r in decision.rules]
        alert = decision_commands(
            Decision(Outcome.JOIN, decision.rules),
            case.as_dict(),
            report,
            None,
            unit.settings,
            reasons=reasons,
            now=unit.now,
        )
        plan.extend(alert)
        flagged = case.change(unit.now, flags=case.flagged(*urgent_flags(report)))
        await unit.save(case, flagged)
        case = flagged
    if "notice" in case.flags and case.customer_id and await _notice_due(unit, case):
        plan.extend(await _notice_reminder(unit, case, report))
    await unit.commit_plan(case, plan)
    return case_id


async def _receipt(unit: Unit, case: Case, report: AbuseReport) -> SendNotification | None:
    """The complainant's receipt, unless they may not be mailed or too many receipts went to them or their domain."""
    if report.report_id in unit.receipted:  # one complaint about two customers: one receipt, not two
        return None
    receipt = acknowledgement(case.as_dict(), report, unit.settings)
    if receipt is None:
        return None
    unit.receipted.add(report.report_id)
    allowed, why = await receipt_limits.take_receipt(unit.conn, receipt.to, unit.now, unit.settings.notify.receipts)
    if not allowed:
        await unit.history(case.id, "receipt", "withheld", [{"name": "receipt-rate-limited", "reason": why}], {})
        return None
    return receipt


async def _notice_due(unit: Unit, case: Case) -> bool:
    """A finding named again by a feed: remind the customer at most every `notice_reminder_hours`."""
    last = await unit.conn.scalar(
        select(func.max(case_history.c.at)).where(
            case_history.c.case_id == case.id, case_history.c.outcome.in_(["notice", "notice-reminder"])
        )
    )
    return last is None or unit.now - last >= timedelta(hours=unit.settings.policy.notice_reminder_hours)


async def _notice_reminder(unit: Unit, case: Case, report: AbuseReport) -> Plan:
    customer = await inventory.customer_row(unit.conn, case.customer_id or "")
    reminder = Decision(
        Outcome.NOTICE, (), notify_customer="customer-notice", confirmation=Confirmation(case.confirmation or "none")
    )
    await unit.history(case.id, "notice", "notice-reminder", [], {"report_id": report.report_id})
    return decision_commands(reminder, case.as_dict(), report, customer, unit.settings, reasons=[], now=unit.now)


async def _open_or_escalate(unit: Unit, report: AbuseReport, decision: Decision, found: Facts) -> str:
    settings = unit.settings
    now = unit.now
    received = report.received_at or now
    flags = (*decision.flags, *urgent_flags(report))
    values: dict[str, Any] = {
        "rules": tuple(decision.rule_names),
        "deadline_at": decision.deadline_at,
        "warned_at": now if decision.outcome is Outcome.WARN else None,
        "confirmation": decision.confirmation.value,
        "severity": decision.severity,
        "automation": "fully",
        "order_due_at": (
            received + timedelta(hours=found.authority_deadline_hours) if found.authority_deadline_hours else None
        ),
    }
    escalating = await unit.load(found.open_case_id) if found.open_case_id else None
    if escalating is not None:
        before = escalating.change(now, report_count=escalating.report_count + 1)
        if found.authority:
            values["origin"] = "authority-order"  # an order on an open case: the order is what took effect
    else:
        before = Case(
            id=store.new_case_id(),
            status=Status.RECEIVED,
            category=report.category,
            customer_id=found.customer.id if found.customer else None,
            service_ids=tuple(found.matched_services),
            opened_at=now,
            updated_at=now,
            sla_due_at=add_working_hours(received, settings.policy.sla.hours, settings.policy.sla),
            reporter=report.reporter,
            reporter_kind=facts_mod.effective_kind(report, settings.trust),
            language=report.language,
            complaint_message_id=report.message_id,
            origin=facts_mod.origin_of(report, found),
            received_at=received,
        )
    values["flags"] = before.flagged(*flags)
    name = decision.transition
    after = before.transition(name, now, **values) if name else before.change(now, **values)
    if escalating is not None:
        await unit.save(escalating, after)
    detail = {"report_id": report.report_id, "facts": facts_json(found)}
    case = await _record(unit, after, report, decision, detail, stored=escalating is not None)
    if decision.deadline_at is not None:
        await unit.add_deadlines(case.id, now, decision.deadline_at)
    customer = await unit.known.customer(unit.conn, found.customer.id) if found.customer else None
    shown = case.with_indicators(found.matched_indicators)
    reasons = [r.reason for r in decision.rules]
    plan = decision_commands(decision, shown.as_dict(), report, customer, settings, reasons=reasons, now=now)
    if escalating is None or not await store.reported_before(unit.conn, case.id, report.reporter, 1):
        receipt = await _receipt(unit, shown, report)
        plan.messages[:0] = [receipt] if receipt else []
    if escalating is None:  # a new case is written once, with what this transaction knows
        case = case.change(
            now,
            effect_at=now if unit.acts(plan) else None,
            answered_at=now if any(getattr(m, "kind", "") == "complainant-result" for m in plan.messages) else None,
        )
        await store.insert(unit.conn, case)
    await unit.commit_plan(case, plan)
    return case.id
