"""Use case "an operator decided": resolve, confirm, suspend now, reject, lift, uphold — each a transition with a note.

The note is the audit trail's; what the customer reads is `customer_text` (or nothing), never the note.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from core.errors import AbuseDeskError
from core.messages import LiftSuspension, SendNotification
from core.report import AbuseReport
from core.settings import Settings
from policy import cases as store
from policy import inventory
from policy.case import RESTRICTING, TRANSITIONS, Case, Status
from policy.commands import decision_commands, to_complainant, to_customer
from policy.decide import decide, decide_deadline
from policy.facts import gather
from policy.model import Confirmation, Decision, Outcome, RuleHit
from policy.tables import cases, customer_answers
from policy.unit import Plan, Unit

CONTEST_DECISION = {"lift": "reversed", "reject": "reversed", "confirm": "upheld", "uphold": "upheld"}


class CaseActionError(AbuseDeskError):
    """The ops action does not apply to the case in its current state."""


@dataclass(frozen=True)
class Action:
    """What an operator's action needs to know: the case, its customer and first report, the note and the text."""

    unit: Unit
    case: Case
    customer: dict[str, Any] | None
    report: AbuseReport | None
    note: str
    customer_text: str | None
    actor: str


Handler = Callable[[Action], Awaitable[tuple[Case, Plan, str]]]


def _statuses(*names: str) -> set[str]:
    return {s.value for n in names for s in TRANSITIONS[n][0]}


async def apply(
    conn: Any,
    case_id: str,
    action: str,
    reason: str,
    settings: Settings,
    now: datetime,
    *,
    actor: str = "ops",
    customer_text: str | None = None,
) -> dict[str, Any]:
    """Carry out an ops action in the caller's transaction; returns the updated case."""
    if not reason.strip():
        raise CaseActionError("a reason is required")
    if action not in HANDLERS:
        raise CaseActionError(f"unknown action {action!r} (choose from {', '.join(HANDLERS)})")
    unit = Unit(conn, settings, now)
    case = await unit.load(case_id)
    if case is None:
        raise CaseActionError(f"no case {case_id}")
    if case.status.value not in ALLOWED[action]:
        raise CaseActionError(f"cannot {action} case {case_id}: it is {case.status.value}")
    customer = await inventory.customer_row(conn, case.customer_id) if case.customer_id else None
    report = await store.first_report(conn, case_id)
    todo = Action(unit, case, customer, report, reason, customer_text, actor)
    case, plan, outcome = await HANDLERS[action](todo)
    if case.needs_attention:  # a person decided: what waited for one has been seen
        seen = case.change(now, needs_attention=False)
        await unit.save(case, seen)
        case = seen
    await unit.history(case_id, "ops", outcome, [{"name": f"ops-{action}", "reason": reason}], {"actor": actor})
    decided = CONTEST_DECISION.get(action)
    if decided and await _decide_contests(unit, case_id, decided):
        after = case.change(now, needs_attention=False)
        await unit.save(case, after)
        case = after
        await unit.history(
            case_id, "ops", f"contest-{decided}", [{"name": f"contest-{decided}", "reason": reason}], {"actor": actor}
        )
        plan.messages += _customer_mail(todo, case, "customer-contest-result", {"contest_outcome": decided})
    await unit.commit_plan(case, plan)
    loaded = await store.case_row(conn, case_id)
    assert loaded is not None
    return loaded


def _customer_mail(a: Action, case: Case, kind: str, extra: dict[str, Any]) -> list[SendNotification]:
    """The customer's mail about an operator's decision: the operator's text for them, never the audit note."""
    words = {"reasons": [a.customer_text] if a.customer_text else [], "operator_text": a.customer_text}
    mail = to_customer(case.as_dict(), a.report, a.customer, a.unit.settings, kind, words | extra, now=a.unit.now)
    return [mail] if mail else []


async def _confirm(a: Action) -> tuple[Case, Plan, str]:
    unit, case = a.unit, a.case
    if a.report is None or a.customer is None:
        raise CaseActionError(f"case {case.id} names no customer of ours: reject it instead")
    if "deadline-needs-confirmation" in case.rules:
        # Warned, the deadline passed, held for want of confirmation: confirming enforces it.
        decision = decide_deadline(Status.WARNED.value, 0, unit.settings.policy, Confirmation.STRONG)
        services = await inventory.account_services(unit.conn, a.customer["id"])
        decision = replace(decision, suspend_services=tuple(services or case.service_ids))
    else:
        found = await gather(
            unit.conn,
            a.report,
            unit.settings.policy,
            unit.now,
            trust=unit.settings.trust,
            authorities=unit.settings.dsa.authorities,
            customer_id=case.customer_id,
        )
        found = replace(found, open_case_id=None, open_case_status=None, feedback_loop_volume=10**6, ops_confirmed=True)
        decision = decide(a.report, found, unit.settings.policy)
    if decision.outcome not in (Outcome.WARN, Outcome.SUSPEND):
        raise CaseActionError(f"after confirmation the policy says {decision.outcome.value}: nothing to do")
    name = "ops-confirm-warn" if decision.outcome is Outcome.WARN else "ops-confirm-suspend"
    values: dict[str, Any] = {
        "rules": tuple(decision.rule_names),
        "confirmation": Confirmation.STRONG.value,
        "flags": case.flagged(*decision.flags),
        "automation": "partially",
    }
    if decision.outcome is Outcome.WARN and decision.deadline_at is not None:
        values |= {"warned_at": unit.now, "deadline_at": decision.deadline_at}
        await unit.add_deadlines(case.id, unit.now, decision.deadline_at)
    after = case.transition(name, unit.now, **values)
    await unit.save(case, after)
    return after, _plan(a, after, decision), decision.outcome.value


def _plan(a: Action, case: Case, decision: Decision) -> Plan:
    reasons = [r.reason for r in decision.rules] + ([a.customer_text] if a.customer_text else [])
    words = {"operator_text": a.customer_text}
    return decision_commands(
        decision, case.as_dict(), a.report, a.customer, a.unit.settings, reasons=reasons, now=a.unit.now, extra=words
    )


async def _suspend_now(a: Action) -> tuple[Case, Plan, str]:
    """A live phishing kit, an order read by a person: suspended at once, on strong facts (a person saw them)."""
    unit, case = a.unit, a.case
    if a.customer is None:
        raise CaseActionError(f"case {case.id} names no customer of ours: nothing to suspend")
    services = await inventory.account_services(unit.conn, a.customer["id"])
    hit = RuleHit("ops-suspend-now", "suspended at once by a person on the abuse desk")
    decision = Decision(
        Outcome.SUSPEND,
        (hit,),
        suspend_services=tuple(services or case.service_ids),
        notify_customer="customer-suspension",
        notify_complainant="complainant-result" if unit.settings.policy.notify_complainant else None,
        confirmation=Confirmation.STRONG,
        severity=case.severity,
    )
    after = case.transition(
        "ops-suspend-now", unit.now, rules=(hit.name,), confirmation=Confirmation.STRONG.value, automation="partially"
    )
    await unit.save(case, after)
    return after, _plan(a, after, decision), "suspend"


async def _resolve(a: Action) -> tuple[Case, Plan, str]:
    after = a.case.transition("ops-resolve", a.unit.now, automation="partially")
    await a.unit.save(a.case, after)
    return after, Plan(), "resolve"


async def _reject(a: Action) -> tuple[Case, Plan, str]:
    after = a.case.transition("ops-reject", a.unit.now, rules=("ops-reject",), automation="partially")
    await a.unit.save(a.case, after)
    plan = Plan()
    answer = {"outcome": "reject", "status": "rejected", "reasons": [], "rejection_reason": "decided-by-person"}
    result = to_complainant(after.as_dict(), a.report, a.unit.settings, "complainant-result", answer)
    plan.messages += [result] if result else []
    return after, plan, "reject"


async def _lift(a: Action) -> tuple[Case, Plan, str]:
    after = a.case.transition("ops-lift", a.unit.now)
    await a.unit.save(a.case, after)
    plan = Plan()
    if a.customer is not None:
        others = await _restricting_cases(a, exclude=after.id)
        plan.messages.append(
            LiftSuspension(case_id=after.id, customer_id=a.customer["id"], service_ids=[], reason=a.note)
        )
        still = sorted({s for c in others for s in c.service_ids})
        plan.messages += _customer_mail(
            a, after, "customer-lift", {"still_suspended": still, "still_suspended_cases": [c.id for c in others]}
        )
    return after, plan, "lift"


async def _restricting_cases(a: Action, *, exclude: str) -> list[Case]:
    """The customer's other cases whose suspension stays in force."""
    rows = await a.unit.conn.execute(
        select(cases.c.id).where(
            cases.c.customer_id == a.case.customer_id,
            cases.c.status.in_(sorted(RESTRICTING)),
            cases.c.id != exclude,
        )
    )
    return await store.cases_of(a.unit.conn, [r.id for r in rows])


async def _uphold(a: Action) -> tuple[Case, Plan, str]:
    return a.case, Plan(), "uphold"


HANDLERS: dict[str, Handler] = {
    "resolve": _resolve,
    "confirm": _confirm,
    "suspend-now": _suspend_now,
    "reject": _reject,
    "lift": _lift,
    "uphold": _uphold,
}
ALLOWED: dict[str, set[str]] = {
    "resolve": _statuses("ops-resolve"),
    "confirm": _statuses("ops-confirm-warn", "ops-confirm-suspend"),
    "suspend-now": _statuses("ops-suspend-now"),
    "reject": _statuses("ops-reject"),
    "lift": _statuses("ops-lift"),
    "uphold": {Status.SUSPENDING.value, Status.SUSPENDED.value, Status.NEEDS_REVIEW.value, Status.WARNED.value},
}


async def _decide_contests(unit: Unit, case_id: str, decision: str) -> int:
    """Close the case's open contests with the ops decision (reversed or upheld); returns how many."""
    open_contests = (
        customer_answers.c.case_id == case_id,
        customer_answers.c.kind == "contest",
        customer_answers.c.decided_at.is_(None),
    )
    result = await unit.conn.execute(
        update(customer_answers).where(*open_contests).values(decided_at=unit.now, decision=decision)
    )
    return int(result.rowcount or 0)
