"""Ops decisions on a case (resolve, confirm, reject, lift), each with a reason, recorded in the history."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import AbuseDeskError
from core.messages import LiftSuspension, Message, SendNotification
from core.settings import Settings
from policy import inventory
from policy.cases import add_deadlines, add_history, case_row, commit_plan, first_report
from policy.commands import Plan, case_context, decision_commands
from policy.decide import decide, decide_deadline
from policy.facts import gather
from policy.model import Confirmation, Outcome
from policy.tables import cases, customer_answers

ALLOWED: dict[str, set[str]] = {
    "resolve": {"warned", "monitoring", "needs-review", "received"},
    "confirm": {"needs-review", "monitoring", "received"},
    "reject": {"needs-review", "monitoring", "received", "warned"},
    "lift": {"suspended"},
    "uphold": {"suspended", "needs-review", "warned"},
}
CONTEST_DECISION = {"lift": "reversed", "reject": "reversed", "confirm": "upheld", "uphold": "upheld"}
NEW_STATUS = {"resolve": "resolved", "reject": "rejected", "lift": "lifted"}


class CaseActionError(AbuseDeskError):
    """The ops action does not apply to the case in its current state."""


async def apply(
    conn: AsyncConnection,
    case_id: str,
    action: str,
    reason: str,
    settings: Settings,
    now: datetime,
    *,
    actor: str = "ops",
) -> dict[str, Any]:
    """Carry out an ops action in the caller's transaction; returns the updated case."""
    if not reason.strip():
        raise CaseActionError("a reason is required")
    case = await case_row(conn, case_id)
    if case is None:
        raise CaseActionError(f"no case {case_id}")
    if case["status"] not in ALLOWED[action]:
        raise CaseActionError(f"cannot {action} case {case_id}: it is {case['status']}")
    customer = await inventory.customer_row(conn, case["customer_id"]) if case["customer_id"] else None
    report = await first_report(conn, case_id)
    plan = Plan()
    messages: list[Message] = plan.messages
    outcome = action
    if action == "confirm":
        if report is None or customer is None:
            raise CaseActionError(f"case {case_id} names no customer of ours: reject it instead")
        if "deadline-needs-confirmation" in (case["rules"] or []):
            # Warned, the deadline passed, held for want of confirmation: confirming enforces it.
            decision = decide_deadline("warned", 0, settings.policy, Confirmation.STRONG)
            services = await inventory.account_services(conn, customer["id"])
            decision = replace(decision, suspend_services=tuple(services or case["service_ids"]))
        else:
            found = await gather(
                conn, report, settings.policy, now, trust=settings.trust, authorities=settings.dsa.authorities
            )
            found = replace(
                found, open_case_id=None, open_case_status=None, feedback_loop_volume=10**6, ops_confirmed=True
            )
            decision = decide(report, found, settings.policy)
        if decision.outcome not in (Outcome.WARN, Outcome.SUSPEND):
            raise CaseActionError(f"after confirmation the policy says {decision.outcome.value}: nothing to do")
        new_status = decision.status
        values: dict[str, Any] = {
            "status": new_status,
            "rules": decision.rule_names,
            "deadline_at": decision.deadline_at if decision.outcome is Outcome.WARN else case["deadline_at"],
            "confirmation": Confirmation.STRONG.value,
            "flags": [*(case["flags"] or []), *decision.flags],
            "automation": "partially",
        }
        if decision.outcome is Outcome.WARN and decision.deadline_at is not None:
            values["warned_at"] = now
            await add_deadlines(conn, case_id, now, decision.deadline_at, settings)
        await conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=now, **values))
        case = await case_row(conn, case_id)
        assert case is not None
        plan = decision_commands(
            decision, case, report, customer, settings, reasons=[reason, *(r.reason for r in decision.rules)], now=now
        )
        outcome = decision.outcome.value
    else:
        if action in NEW_STATUS:
            await conn.execute(
                update(cases).where(cases.c.id == case_id).values(status=NEW_STATUS[action], updated_at=now)
            )
        case = await case_row(conn, case_id)
        assert case is not None
        if action == "lift" and customer is not None:
            messages.append(LiftSuspension(case_id=case_id, customer_id=customer["id"], service_ids=[], reason=reason))
            if customer.get("email"):
                messages.append(
                    SendNotification(
                        case_id=case_id,
                        kind="customer-lift",
                        to=customer["email"],
                        language=customer.get("language") or settings.notify.default_language,
                        context=case_context(case, report, settings, customer=customer) | {"reasons": [reason]},
                    )
                )
        if action == "reject" and report and report.reporter and not report.automated:
            messages.append(
                SendNotification(
                    case_id=case_id,
                    kind="complainant-result",
                    to=report.reporter,
                    language=report.language or settings.notify.default_language,
                    in_reply_to=report.message_id,
                    context=case_context(case, report, settings, customer=None)
                    | {"outcome": "reject", "status": "rejected", "evidence": "", "reasons": [reason]},
                )
            )
    await add_history(
        conn, case_id, now, "ops", outcome, [{"name": f"ops-{action}", "reason": reason}], {"actor": actor}
    )
    contests = await _decide_contests(conn, case_id, CONTEST_DECISION.get(action), now)
    if contests:
        await conn.execute(update(cases).where(cases.c.id == case_id).values(needs_attention=False))
        await add_history(
            conn,
            case_id,
            now,
            "ops",
            f"contest-{CONTEST_DECISION[action]}",
            [{"name": f"contest-{CONTEST_DECISION[action]}", "reason": reason}],
            {"contests": contests},
        )
    await commit_plan(conn, case_id, plan, now)
    case = await case_row(conn, case_id)
    assert case is not None
    return case


async def _decide_contests(conn: AsyncConnection, case_id: str, decision: str | None, now: datetime) -> int:
    """Close the case's open contests with the ops decision (reversed or upheld); returns how many."""
    if decision is None:
        return 0
    open_contests = (
        customer_answers.c.case_id == case_id,
        customer_answers.c.kind == "contest",
        customer_answers.c.decided_at.is_(None),
    )
    result = await conn.execute(
        update(customer_answers).where(*open_contests).values(decided_at=now, decision=decision)
    )
    return int(result.rowcount or 0)
