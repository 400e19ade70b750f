"""Readings for ops: case and mail counts from the database, queue depths from the broker, SLA countdowns."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.tables import mail_outbox
from core import metrics
from core.broker import Broker, QueueStat
from core.messages import utcnow
from policy.case import Status
from policy.queries import DUE_SOON
from policy.tables import cases
from policy.tables import outbox as policy_outbox

log = structlog.get_logger("abuse_desk.watch")

STATUSES = tuple(s.value for s in Status)  # every case status, `suspending` included (policy/case.py)
NO_SLA_KINDS = ("feedback-loop", "machine", "internal")  # as policy.queries.sla_state: nobody waits for an answer


def countdown(due: datetime | None, now: datetime) -> str:
    """'in 3 h 20 min' or 'overdue by 1 d 2 h' (empty when there is no instant)."""
    if due is None:
        return ""
    delta = due - now
    late = delta.total_seconds() < 0
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours or days:
        parts.append(f"{hours} h")
    if not days:
        parts.append(f"{mins} min")
    text = " ".join(parts)
    return f"overdue by {text}" if late else f"in {text}"


async def database_readings(engine: AsyncEngine, now: datetime) -> dict[str, dict[str, int]]:
    """Cases by status, SLA due soon / breached, mail outbox by state, unpublished policy commands."""
    async with engine.connect() as conn:
        by_status = {
            r.status: int(r.n)
            for r in await conn.execute(select(cases.c.status, func.count().label("n")).group_by(cases.c.status))
        }
        unanswered = (  # the SQL form of policy.queries.sla_state
            cases.c.answered_at.is_(None),
            or_(cases.c.reporter_kind.is_(None), cases.c.reporter_kind.not_in(NO_SLA_KINDS)),
            cases.c.sla_due_at.is_not(None),
        )
        breached = await conn.scalar(select(func.count()).where(*unanswered, cases.c.sla_due_at <= now))
        soon = await conn.scalar(
            select(func.count()).where(*unanswered, cases.c.sla_due_at > now, cases.c.sla_due_at <= now + DUE_SOON)
        )
        mails: dict[str, int] = {}
        tried = mail_outbox.c.attempts > 0
        for r in await conn.execute(
            select(mail_outbox.c.state, tried.label("tried"), func.count().label("n")).group_by(
                mail_outbox.c.state, tried
            )
        ):
            state = "deferred" if r.state == "pending" and r.tried else str(r.state)
            mails[state] = mails.get(state, 0) + int(r.n)
        pending = await conn.scalar(select(func.count()).where(policy_outbox.c.published_at.is_(None)))
    return {
        "cases": {s: by_status.get(s, 0) for s in STATUSES},
        "sla": {"breached": int(breached or 0), "due-soon": int(soon or 0)},
        "mails": {s: mails.get(s, 0) for s in ("pending", "deferred", "sent", "failed")},
        "outbox": {"pending": int(pending or 0)},
    }


def record_database(readings: dict[str, dict[str, int]]) -> None:
    """Set the database gauges."""
    for status, n in readings["cases"].items():
        metrics.CASES.labels(status).set(n)
    for state, n in readings["sla"].items():
        metrics.SLA.labels(state).set(n)
    for state, n in readings["mails"].items():
        metrics.MAIL_OUTBOX.labels(state).set(n)
    metrics.OUTBOX_PENDING.set(readings["outbox"]["pending"])


def record_queues(stats: list[QueueStat]) -> None:
    """Set the queue gauges."""
    for s in stats:
        metrics.QUEUE_MESSAGES.labels(s.queue).set(s.messages)
        metrics.QUEUE_CONSUMERS.labels(s.queue).set(s.consumers)
        metrics.QUEUE_DEAD.labels(s.queue).set(s.dead)


async def collect_forever(broker: Broker, engine: AsyncEngine | None, interval: float = 5.0) -> None:
    """Refresh the gauges every `interval` seconds (queue depths always; database counts when given an engine)."""
    while True:
        try:
            record_queues(await broker.stats())
            if engine is not None:
                record_database(await database_readings(engine, utcnow()))
        except Exception as exc:  # the broker or database may be away for a while: try again later
            log.warning("watch.collect_failed", error=repr(exc))
        await asyncio.sleep(interval)
