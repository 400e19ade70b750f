"""Metrics wiring in the composition root: wrappers around handlers, publishers, backends and mailers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.mailer import Mailer
from actions.suspend import SuspensionBackend
from core import metrics
from core.errors import ContractError, PermanentError
from core.messages import LiftSuspension, Message, Publish, ReportParsed, SuspendService, utcnow
from policy.tables import case_history, case_reports

Handler = Callable[[Message], Awaitable[None]]


def smtp_result(outcome: str) -> None:
    """The SMTP listener's on_result callback: one count per reply that decides a report's fate."""
    metrics.SMTP_RESULTS.labels(outcome).inc()


def timed(queue: str, handler: Handler) -> Handler:
    """A consumer handler that records its latency, its result and the message's age (consumer lag)."""

    async def wrapped(message: Message) -> None:
        metrics.MESSAGE_LAG.labels(queue).observe(max(0.0, (utcnow() - message.occurred_at).total_seconds()))
        start = time.perf_counter()
        result = "ok"
        try:
            await handler(message)
        except ContractError:
            result = "rejected"
            raise
        except Exception:
            result = "error"
            raise
        finally:
            metrics.HANDLER_SECONDS.labels(queue, result).observe(time.perf_counter() - start)

    return wrapped


def counting_parsed(publish: Publish) -> Publish:
    """The normalize worker's publish, counting what it parsed (format, category, warnings)."""

    async def wrapped(message: Message) -> None:
        await publish(message)
        if isinstance(message, ReportParsed):
            report = message.report
            metrics.REPORTS_PARSED.labels(report.format, report.category).inc()
            if report.parse_warnings:
                metrics.PARSE_WARNINGS.labels(report.format).inc(len(report.parse_warnings))

    return wrapped


def count_decisions(rows: list[Any]) -> None:
    """Count case_history rows (kind decision or deadline) by outcome and deciding rule (the last that fired)."""
    for row in rows:
        names = [r.get("name", "") for r in (row.rules or []) if isinstance(r, dict)] or ["none"]
        metrics.DECISIONS.labels(row.outcome or "none", names[-1]).inc()


def counting_decisions(engine: AsyncEngine, on_report: Handler) -> Handler:
    """The policy's report handler, counting the decision it recorded (a redelivered report counts nothing)."""

    async def wrapped(message: Message) -> None:
        started = utcnow()
        await on_report(message)
        if not isinstance(message, ReportParsed):
            return
        report_id = message.report.report_id
        try:
            async with engine.connect() as conn:
                case_id = await conn.scalar(select(case_reports.c.case_id).where(case_reports.c.report_id == report_id))
                rows = (
                    await conn.execute(
                        select(case_history.c.outcome, case_history.c.rules, case_history.c.detail).where(
                            case_history.c.case_id == case_id,
                            case_history.c.kind == "decision",
                            case_history.c.at >= started,
                        )
                    )
                ).all()
        except Exception:  # a metric must never fail the handler (its work is committed)
            return
        count_decisions([r for r in rows if (r.detail or {}).get("report_id") == report_id])

    return wrapped


async def count_deadline_decisions(engine: AsyncEngine, at: datetime) -> None:
    """Count the decisions the scheduler recorded at instant `at`."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(case_history.c.outcome, case_history.c.rules).where(
                    case_history.c.kind == "deadline", case_history.c.at == at
                )
            )
        ).all()
    count_decisions(list(rows))


class CountingBackend:
    """A suspension backend that counts done / failed calls (a failed call is retried by the broker)."""

    def __init__(self, backend: SuspensionBackend) -> None:
        self.backend = backend
        self.name = backend.name

    async def suspend(self, command: SuspendService) -> list[str]:
        return await self._count("suspend", self.backend.suspend(command))

    async def lift(self, command: LiftSuspension) -> list[str]:
        return await self._count("lift", self.backend.lift(command))

    async def _count(self, action: str, call: Awaitable[list[str]]) -> list[str]:
        try:
            done = await call
        except Exception:
            metrics.ACTIONS.labels(action, self.name, "failed").inc()
            raise
        metrics.ACTIONS.labels(action, self.name, "done").inc()
        return done


class CountingMailer:
    """A mailer that counts sent / deferred (transient error) / failed (permanent error) attempts."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    async def send(self, raw: bytes, sender: str, recipient: str) -> None:
        try:
            await self.mailer.send(raw, sender, recipient)
        except PermanentError:
            metrics.MAILS.labels("failed").inc()
            raise
        except Exception:
            metrics.MAILS.labels("deferred").inc()
            raise
        metrics.MAILS.labels("sent").inc()
