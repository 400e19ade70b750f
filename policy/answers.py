"""Customer answers through the statement link: fixed (re-check), the report is wrong (contest), more time, help."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import AbuseDeskError
from core.messages import Message, SendNotification
from core.settings import Settings
from policy import inventory, outbox
from policy.cases import add_history, case_row, first_report
from policy.commands import case_context, may_auto_answer
from policy.model import RuleHit
from policy.recheck import Fetcher, recheck
from policy.resolve import Resolver
from policy.sla import add_working_hours
from policy.tables import cases, customer_answers, deadlines

KINDS = ("fixed", "contest", "more-time", "help")
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
    case = await case_row(conn, case_id)
    if case is None or case["customer_id"] != customer_id:
        raise AnswerError("this case does not exist")
    if kind not in KINDS:
        raise AnswerError(f"unknown answer {kind!r}")
    text = text.strip()[:5000]
    row: dict[str, Any] = {"case_id": case_id, "at": now, "kind": kind, "text": text, "data": data}
    messages: list[Message] = []
    customer = await inventory.customer_row(conn, customer_id)
    report = await first_report(conn, case_id)
    ctx = case_context(case, report, settings, customer=customer)
    if kind == "fixed":
        if case["status"] != "warned":
            raise AnswerError(f"the case is {case['status']}: a re-check applies to a warning")
        result = await recheck(conn, case, report, fetcher=fetcher, resolver=resolver, now=now)
        row |= {"recheck_passed": result.passed, "data": data | {"recheck": result.as_dict()}}
        outcome = {"outcome": "resolved" if result.passed else "still-failing"} | result.as_dict()
        if result.passed:
            hits = [
                RuleHit("customer-fixed", text or "the customer says it is fixed"),
                RuleHit("recheck-passed", "; ".join(result.passes)),
            ]
            await _set(conn, case_id, now, status="resolved", rules=[h.name for h in hits])
            await add_history(conn, case_id, now, "customer", "resolve", [asdict(h) for h in hits], row["data"])
            if report is not None and may_auto_answer(report) and report.reporter:
                messages.append(
                    _mail(
                        case,
                        "complainant-result",
                        report.reporter,
                        report.language,
                        settings,
                        ctx | {"outcome": "resolved", "evidence": "", "status": "resolved"},
                        in_reply_to=report.message_id,
                    )
                )
        else:
            await add_history(
                conn,
                case_id,
                now,
                "customer",
                "recheck-failed",
                [{"name": "recheck-failed", "reason": "; ".join(result.failures)}],
                row["data"],
            )
        if customer and customer.get("email"):
            messages.append(
                _mail(case, "customer-recheck", customer["email"], customer.get("language"), settings, ctx | outcome)
            )
    elif kind == "more-time":
        if case["status"] != "warned" or case["deadline_at"] is None:
            raise AnswerError(f"the case is {case['status']}: there is no deadline to extend")
        if case["extension_used"]:
            raise AnswerError("the deadline was already extended once; contact support if you need help")
        extra = timedelta(hours=settings.dsa.extension_hours)
        outcome = {"outcome": "extended", "deadline_at": (case["deadline_at"] + extra).isoformat()}
        await _set(conn, case_id, now, deadline_at=case["deadline_at"] + extra, extension_used=True)
        pending = await conn.execute(
            select(deadlines.c.id, deadlines.c.due_at).where(
                deadlines.c.case_id == case_id, deadlines.c.state == "pending"
            )
        )
        for item in pending.all():  # in Python: date arithmetic in SQL differs between SQLite and PostgreSQL
            await conn.execute(update(deadlines).where(deadlines.c.id == item.id).values(due_at=item.due_at + extra))
        await add_history(
            conn,
            case_id,
            now,
            "customer",
            "extended",
            [{"name": "deadline-extended", "reason": text or "the customer asked for more time"}],
            data,
        )
    elif kind == "contest":
        if case["status"] not in ("warned", "suspended"):
            raise AnswerError(f"the case is {case['status']}: there is nothing to contest")
        due = add_working_hours(now, settings.dsa.contest_sla_hours, settings.policy.sla)
        row["sla_due_at"] = due
        values: dict[str, Any] = {"needs_attention": True}
        if case["status"] == "warned":
            values["status"] = "needs-review"  # no suspension while a person reviews the contest
        await _set(conn, case_id, now, **values)
        await add_history(
            conn,
            case_id,
            now,
            "customer",
            "contested",
            [{"name": "customer-contest", "reason": text or "the customer says the report is wrong"}],
            data | {"review_due_at": due.isoformat()},
        )
        outcome = {"outcome": "contest-received", "review_due_at": due.isoformat()}
        messages.append(_ops(case, "contest", text, settings, ctx))
    else:
        await add_history(
            conn,
            case_id,
            now,
            "customer",
            "help",
            [{"name": "customer-help", "reason": text or "the customer asks for help"}],
            data,
        )
        await _set(conn, case_id, now, needs_attention=True)
        outcome = {"outcome": "help-requested"}
        messages.append(_ops(case, "help", text, settings, ctx))
    await conn.execute(customer_answers.insert().values(**row))
    await outbox.add(conn, messages)
    return outcome


async def _set(conn: AsyncConnection, case_id: str, now: datetime, **values: Any) -> None:
    await conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=now, **values))


def _mail(
    case: dict[str, Any],
    kind: str,
    to: str,
    language: str | None,
    settings: Settings,
    context: dict[str, Any],
    *,
    in_reply_to: str | None = None,
) -> SendNotification:
    return SendNotification(
        case_id=case["id"],
        kind=kind,
        to=to,
        language=language or settings.notify.default_language,
        in_reply_to=in_reply_to,
        context=context,
    )


def _ops(case: dict[str, Any], what: str, text: str, settings: Settings, ctx: dict[str, Any]) -> SendNotification:
    return _mail(
        case,
        "ops-customer-answer",
        settings.notify.ops_address,
        "en",
        settings,
        ctx | {"answer": what, "answer_text": text[:2000]},
    )
