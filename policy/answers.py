"""Customer answers through the statement link: fixed (re-check), the report is wrong (contest), more time, help."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import AbuseDeskError
from core.messages import Message
from core.report import AbuseReport
from core.settings import Settings
from policy import cases as store
from policy import inventory
from policy.case import Case, Status
from policy.commands import to_complainant, to_customer, to_ops
from policy.model import RuleHit
from policy.recheck import Fetcher, recheck
from policy.resolve import Resolver
from policy.sla import add_working_hours
from policy.tables import customer_answers, deadlines
from policy.unit import Unit

CAUSES = ("stolen-password", "vulnerable-software", "malicious-user", "misconfiguration", "legitimate", "other")


class AnswerError(AbuseDeskError):
    """The answer does not apply to the case as it stands; the message says why, for the customer."""


async def apply(
    conn: AsyncConnection,
    case_id: str,
    customer_id: str,
    kind: str,
    text: str,
    data: dict[str, Any],
    settings: Settings,
    now: datetime,
    *,
    fetcher: Fetcher | None,
    resolver: Resolver,
) -> dict[str, Any]:
    """Record a customer's answer and act on it, in the caller's transaction; returns what to tell the customer."""
    unit = Unit(conn, settings, now)
    case = await unit.load(case_id)
    if case is None or case.customer_id != customer_id:
        raise AnswerError("this case does not exist")
    if kind not in ANSWERS:
        raise AnswerError(f"unknown answer {kind!r}")
    customer = await inventory.customer_row(conn, customer_id)
    report = await store.first_report(conn, case_id)
    answer = Answer(unit, case, customer, report, text.strip()[:5000], data, fetcher, resolver)
    row: dict[str, Any] = {"case_id": case_id, "at": now, "kind": kind, "text": answer.text, "data": data}
    outcome, messages, extra = await ANSWERS[kind](answer)
    await conn.execute(customer_answers.insert().values(**row | extra))
    await unit.send(messages, case_id=case_id)
    return outcome


@dataclass(frozen=True)
class Answer:
    """A customer's answer about one of their cases, with what handling it needs."""

    unit: Unit
    case: Case
    customer: dict[str, Any] | None
    report: AbuseReport | None
    text: str
    data: dict[str, Any]
    fetcher: Fetcher | None
    resolver: Resolver

    def to_customer(self, kind: str, extra: dict[str, Any]) -> list[Message]:
        mail = to_customer(self.case.as_dict(), self.report, self.customer, self.unit.settings, kind, extra)
        return [mail] if mail else []

    def to_ops(self, what: str) -> Message:
        extra = {"answer": what, "answer_text": self.text[:2000]}
        return to_ops(self.case.as_dict(), self.report, self.unit.settings, "ops-customer-answer", extra)


Result = tuple[dict[str, Any], list[Message], dict[str, Any]]


async def _fixed(a: Answer) -> Result:
    """Fixed: re-checked at once; a warning is resolved when it passes, a suspension goes to a person to lift."""
    case, unit = a.case, a.unit
    if case.status not in (Status.WARNED, Status.SUSPENDING, Status.SUSPENDED):
        raise AnswerError(f"the case is {case.status.value}: there is nothing to fix")
    result = await recheck(unit.conn, case.as_dict(), a.report, fetcher=a.fetcher, resolver=a.resolver, now=unit.now)
    data = a.data | {"recheck": result.as_dict()}
    outcome = {"outcome": "resolved" if result.passed else "still-failing"} | result.as_dict()
    messages: list[Message] = []
    if result.passed and case.status is Status.WARNED:
        hits = [
            RuleHit("customer-fixed", a.text or "the customer says it is fixed"),
            RuleHit("recheck-passed", "; ".join(result.passes)),
        ]
        after = case.transition("customer-fixed", unit.now, rules=tuple(h.name for h in hits))
        await unit.save(case, after)
        await unit.history(case.id, "customer", "resolve", [asdict(h) for h in hits], data)
        answer = to_complainant(
            after.as_dict(),
            a.report,
            unit.settings,
            "complainant-result",
            {"outcome": "resolved", "status": "resolved"},
        )
        messages += [answer] if answer else []
    elif result.passed:  # suspended: a person reviews and lifts
        outcome["outcome"] = "review-requested"
        await unit.save(case, case.change(unit.now, needs_attention=True))
        await unit.history(
            case.id,
            "customer",
            "fixed-review",
            [{"name": "customer-fixed", "reason": a.text or "the customer says it is fixed"}],
            data,
        )
        messages.append(a.to_ops("fixed"))
    else:
        await unit.history(
            case.id,
            "customer",
            "recheck-failed",
            [{"name": "recheck-failed", "reason": "; ".join(result.failures)}],
            data,
        )
    messages += a.to_customer("customer-recheck", outcome)
    return outcome, messages, {"recheck_passed": result.passed, "data": data}


async def _more_time(a: Answer) -> Result:
    case, unit = a.case, a.unit
    if case.status is not Status.WARNED or case.deadline_at is None:
        raise AnswerError(f"the case is {case.status.value}: there is no deadline to extend")
    if case.extension_used:
        raise AnswerError("the deadline was already extended once; contact support if you need help")
    extra = timedelta(hours=unit.settings.dsa.extension_hours)
    outcome = {"outcome": "extended", "deadline_at": (case.deadline_at + extra).isoformat()}
    await unit.save(case, case.change(unit.now, deadline_at=case.deadline_at + extra, extension_used=True))
    pending = await unit.conn.execute(
        select(deadlines.c.id, deadlines.c.due_at).where(deadlines.c.case_id == case.id, deadlines.c.state == "pending")
    )
    for item in pending.all():  # in Python: date arithmetic in SQL differs between SQLite and PostgreSQL
        await unit.conn.execute(update(deadlines).where(deadlines.c.id == item.id).values(due_at=item.due_at + extra))
    await unit.history(
        case.id,
        "customer",
        "extended",
        [{"name": "deadline-extended", "reason": a.text or "the customer asked for more time"}],
        a.data,
    )
    return outcome, [], {}


async def _contest(a: Answer) -> Result:
    """The report is wrong: a person reviews it (with its own SLA); no suspension meanwhile."""
    case, unit = a.case, a.unit
    if case.status not in (Status.WARNED, Status.SUSPENDING, Status.SUSPENDED):
        raise AnswerError(f"the case is {case.status.value}: there is nothing to contest")
    due = add_working_hours(unit.now, unit.settings.dsa.contest_sla_hours, unit.settings.policy.sla)
    if case.status is Status.WARNED:
        after = case.transition("customer-contest", unit.now, needs_attention=True)
    else:
        after = case.change(unit.now, needs_attention=True)
    await unit.save(case, after)
    await unit.history(
        case.id,
        "customer",
        "contested",
        [{"name": "customer-contest", "reason": a.text or "the customer says the report is wrong"}],
        a.data | {"review_due_at": due.isoformat()},
    )
    outcome = {"outcome": "contest-received", "review_due_at": due.isoformat()}
    return outcome, [a.to_ops("contest")], {"sla_due_at": due}


async def _help(a: Answer) -> Result:
    await a.unit.history(
        a.case.id,
        "customer",
        "help",
        [{"name": "customer-help", "reason": a.text or "the customer asks for help"}],
        a.data,
    )
    await a.unit.save(a.case, a.case.change(a.unit.now, needs_attention=True))
    return {"outcome": "help-requested"}, [a.to_ops("help")], {}


ANSWERS: dict[str, Callable[[Answer], Awaitable[Result]]] = {
    "fixed": _fixed,
    "contest": _contest,
    "more-time": _more_time,
    "help": _help,
}
