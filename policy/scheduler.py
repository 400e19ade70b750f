"""Use case "a deadline is due": reminders, and at the warning's end a re-check, then resolve, suspend or hold.

Deadlines are stored with due_at (UTC), polled and claimed safely (SKIP LOCKED on PostgreSQL); firing twice is harmless.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.report import AbuseReport
from core.settings import Settings
from policy import alerts, inventory
from policy import cases as store
from policy.case import Case, Status, may
from policy.commands import decision_commands, to_complainant, to_customer
from policy.decide import decide_deadline
from policy.model import Confirmation, Outcome, RuleHit
from policy.recheck import Fetcher, HttpFetcher, recheck
from policy.resolve import Resolver, SystemResolver
from policy.tables import deadlines
from policy.unit import Plan, Unit


async def fire_due(
    engine: AsyncEngine,
    settings: Settings,
    now: datetime,
    *,
    batch: int = 100,
    fetcher: Fetcher | None = None,
    resolver: Resolver | None = None,
) -> list[str]:
    """Fire every pending deadline due at `now`; returns the ids of the cases touched."""
    trust = settings.trust
    fetcher = fetcher or HttpFetcher()
    resolver = resolver or SystemResolver(trust.hosts, trust.dns_timeout, enabled=trust.resolve_urls)
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
            unit = Unit(conn, settings, now)
            for row in due:
                await conn.execute(update(deadlines).where(deadlines.c.id == row.id).values(state="done", fired_at=now))
                case = await unit.load(row.case_id)
                if case is None:
                    continue
                if row.kind.startswith("reminder"):
                    await remind(unit, case, row.id)
                else:
                    await deadline_due(unit, case, row.id, fetcher=fetcher, resolver=resolver)
                fired.append(row.case_id)
        if len(due) < batch:
            break
    async with engine.begin() as conn:  # what waits for a person: deadlines held, contests, SLA, failures, urgent
        await alerts.queue_due_alerts(conn, settings, now)
    return fired


async def remind(unit: Unit, case: Case, deadline_id: int) -> None:
    """Remind a warned customer of the deadline (nothing if the case moved on)."""
    if case.status is not Status.WARNED or not case.customer_id:
        return
    if case.deadline_at is not None and case.deadline_at <= unit.now:
        return  # too late to remind: the deadline itself is being decided
    customer = await inventory.customer_row(unit.conn, case.customer_id)
    report = await store.first_report(unit.conn, case.id)
    reminder = to_customer(case.as_dict(), report, customer, unit.settings, "customer-reminder", {}, now=unit.now)
    if reminder is None:
        return
    await unit.history(case.id, "deadline", "reminded", [], {"deadline_id": deadline_id})
    await unit.send([reminder], case_id=case.id)


async def deadline_due(
    unit: Unit, case: Case, deadline_id: int, *, fetcher: Fetcher | None, resolver: Resolver
) -> None:
    """The warning period is over: is the reported problem still there? Gone → resolved; there → suspend or hold."""
    report = await store.first_report(unit.conn, case.id)
    checked = None
    if case.status is Status.WARNED and report is not None and report.urls:
        checked = await recheck(unit.conn, case.as_dict(), report, fetcher=fetcher, resolver=resolver, now=unit.now)
    if checked is not None and checked.proven_gone:
        hits = (RuleHit("deadline-recheck-gone", "; ".join(checked.passes)),)
        await _gone(unit, case, report, hits, deadline_id)
        return
    since = case.warned_at or case.opened_at
    decision = decide_deadline(
        case.status.value,
        await store.reports_since(unit.conn, case.id, since),
        unit.settings.policy,
        Confirmation(case.confirmation or Confirmation.NONE),
    )
    if checked is not None and not checked.passed:
        decision = replace(
            decision, rules=(RuleHit("deadline-recheck-still-there", "; ".join(checked.failures)), *decision.rules)
        )
    rules = [asdict(r) for r in decision.rules]
    await unit.history(case.id, "deadline", decision.outcome.value, rules, {"deadline_id": deadline_id})
    if decision.outcome is Outcome.REVIEW and may("deadline-hold", case.status):
        held = case.transition("deadline-hold", unit.now, rules=tuple(decision.rule_names), needs_attention=True)
        await unit.save(case, held)
        return
    if decision.outcome is not Outcome.SUSPEND or not may("deadline-suspend", case.status):
        return
    customer = await inventory.customer_row(unit.conn, case.customer_id) if case.customer_id else None
    services = await inventory.account_services(unit.conn, customer["id"]) if customer else []
    after = case.transition("deadline-suspend", unit.now, rules=tuple(decision.rule_names))
    await unit.save(case, after)
    decision = replace(decision, suspend_services=tuple(services or case.service_ids))
    reasons = [r.reason for r in decision.rules]
    plan = decision_commands(decision, after.as_dict(), report, customer, unit.settings, reasons=reasons, now=unit.now)
    await unit.commit_plan(after, plan)


async def _gone(
    unit: Unit, case: Case, report: AbuseReport | None, hits: tuple[RuleHit, ...], deadline_id: int
) -> None:
    """Resolved at the deadline by our own re-check: the complainant and the customer are told."""
    after = case.transition("deadline-gone", unit.now, rules=tuple(h.name for h in hits))
    await unit.save(case, after)
    await unit.history(case.id, "deadline", "resolve", [asdict(h) for h in hits], {"deadline_id": deadline_id})
    customer = await inventory.customer_row(unit.conn, case.customer_id) if case.customer_id else None
    recheck_ctx = {"outcome": "resolved", "passes": [h.reason for h in hits], "failures": []}
    told = (
        to_customer(after.as_dict(), report, customer, unit.settings, "customer-recheck", recheck_ctx),
        to_complainant(after.as_dict(), report, unit.settings, "complainant-result", {"outcome": "resolved"}),
    )
    plan = Plan(messages=[m for m in told if m is not None])
    await unit.commit_plan(after, plan)
