"""Ops alerts: work that waits (a deadline held, a contest overdue, an SLA near, an action failed, an urgent case).

Each alert is sent once per case and cause, ever: the `ops_alerts` row is written in the caller's transaction
(INSERT ... ON CONFLICT DO NOTHING, so two scheduler replicas cannot both send it). The functions return the
mail commands; the caller queues them in the policy outbox in the same transaction (`queue_due_alerts` does both).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core import metrics
from core.messages import SendNotification
from core.settings import Settings
from policy import outbox
from policy.case import Status
from policy.sla import add_working_hours, sla_applies
from policy.tables import case_history, cases, customer_answers, ops_alerts
from policy.tables import outbox as outbox_table

# cause → the template of its mail
TEMPLATES = {
    "deadline-held": "ops-deadline-held",
    "contest-overdue": "ops-contest-overdue",
    "sla-due": "ops-sla-due",
    "action-failed": "ops-action-failed",
    "urgent": "ops-art18",
}
CAUSES = tuple(TEMPLATES)
SLA_WARNING_HOURS = 2.0  # working hours before the complainant's answer is due
SLA_LOOKBACK = timedelta(days=7)  # older breaches are on the lists, not mailed (no flood on a first start)
URGENT_LOOKBACK = timedelta(days=7)
URGENT_FLAGS = frozenset({"art18-suspicion", "threat-to-life", "urgent", "csam", "authority-order"})
HELD_RULES = frozenset({"deadline-needs-confirmation", "deadline-held", "deadline-still-present"})
ACTION_FAILED = "action.failed.v1"


def alert_id(case_id: str, cause: str) -> str:
    """The alert mail's stable command id: the same case and cause always give the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"abuse-desk:ops-alert:{case_id}:{cause}"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _context(case: Mapping[str, Any] | None, settings: Settings, now: datetime) -> dict[str, Any]:
    """What every ops alert template may use, from the case row."""
    case = case or {}
    sla_due: datetime | None = case.get("sla_due_at")
    return {
        "case_id": case.get("id", ""),
        "category": case.get("category") or "",
        "status": case.get("status") or "",
        "severity": case.get("severity") or "",
        "confirmation": case.get("confirmation") or "none",
        "customer_id": case.get("customer_id") or "",
        "service_ids": list(case.get("service_ids") or []),
        "flags": list(case.get("flags") or []),
        "rules": list(case.get("rules") or []),
        "deadline_at": _iso(case.get("deadline_at")),
        "sla_due_at": _iso(sla_due),
        "sla_state": "past" if sla_due is not None and sla_due <= now else "soon",
        "timezone": settings.policy.sla.timezone,
        "organisation": settings.notify.organisation,
        "urgent": bool(URGENT_FLAGS & set(case.get("flags") or [])),
    }


async def _claim(conn: AsyncConnection, case_id: str, cause: str, message_id: str, now: datetime) -> bool:
    """Write the (case, cause) row; False when it was already there (the alert went out before)."""
    values = {"case_id": case_id, "cause": cause, "at": now, "message_id": message_id}
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(ops_alerts).values(**values).on_conflict_do_nothing(index_elements=["case_id", "cause"])
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def _told_before(conn: AsyncConnection, case_id: str, kind: str) -> bool:
    """Whether an alert of this kind was queued for the case outside this module (the older immediate alerts)."""
    found = await conn.scalar(
        select(outbox_table.c.id)
        .where(outbox_table.c.case_id == case_id, outbox_table.c.body.contains(f'"kind":"{kind}"'))
        .limit(1)
    )
    return found is not None


async def alert_once(
    conn: AsyncConnection,
    case_id: str,
    cause: str,
    settings: Settings,
    now: datetime,
    *,
    context: Mapping[str, Any] | None = None,
) -> SendNotification | None:
    """The alert mail for (case, cause), or None when it was sent before. Records it; the caller queues it.

    `context` adds template values (action, reason, command_id for an action failure; answer details...).
    """
    if cause not in TEMPLATES:
        raise ValueError(f"unknown ops alert cause {cause!r}")
    message_id = alert_id(case_id, cause)
    if not await _claim(conn, case_id, cause, message_id, now):
        return None
    metrics.OPS_ALERTS.labels(cause).inc()
    row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    extra = dict(context or {})
    return SendNotification(
        message_id=message_id,
        case_id=case_id,
        kind=TEMPLATES[cause],
        to=settings.notify.ops_address,
        language="en",
        context=_context(dict(row) if row else {"id": case_id}, settings, now) | {"cause": cause} | extra,
    )


def _not_alerted(cause: str) -> Any:
    return ~exists().where(and_(ops_alerts.c.case_id == cases.c.id, ops_alerts.c.cause == cause))


async def _deadline_held(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    """Warned cases whose deadline passed and that were held for a person's review."""
    query = (
        select(case_history.c.case_id, case_history.c.rules, case_history.c.at)
        .join(cases, cases.c.id == case_history.c.case_id)
        .where(cases.c.status == Status.NEEDS_REVIEW, case_history.c.kind == "deadline", _not_alerted("deadline-held"))
        .order_by(case_history.c.id)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(query):
        names = {r.get("name") for r in (row.rules or []) if isinstance(r, dict)}
        if names & HELD_RULES:
            reasons = [str(r.get("reason", "")) for r in row.rules if isinstance(r, dict)]
            found[row.case_id] = {"held_at": row.at.isoformat(), "reasons": reasons}
    return list(found.items())


async def _contests_overdue(conn: AsyncConnection, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Contests whose review is due and not decided."""
    query = (
        select(customer_answers.c.case_id, customer_answers.c.sla_due_at, customer_answers.c.at)
        .join(cases, cases.c.id == customer_answers.c.case_id)
        .where(
            customer_answers.c.kind == "contest",
            customer_answers.c.decided_at.is_(None),
            customer_answers.c.sla_due_at.is_not(None),
            customer_answers.c.sla_due_at <= now,
            _not_alerted("contest-overdue"),
        )
        .order_by(customer_answers.c.sla_due_at)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(query):
        found.setdefault(row.case_id, {"contested_at": row.at.isoformat(), "review_due_at": row.sla_due_at.isoformat()})
    return list(found.items())


async def _sla_due(conn: AsyncConnection, settings: Settings, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Unanswered complainants whose answer is due within two working hours (or already late, recently)."""
    horizon = add_working_hours(now, SLA_WARNING_HOURS, settings.policy.sla)
    query = select(cases).where(
        cases.c.answered_at.is_(None),
        cases.c.sla_due_at.is_not(None),
        cases.c.sla_due_at <= horizon,
        cases.c.sla_due_at > now - SLA_LOOKBACK,
        _not_alerted("sla-due"),
    )
    rows = (await conn.execute(query.order_by(cases.c.sla_due_at))).mappings()
    return [(row["id"], {}) for row in rows if sla_applies(dict(row))]


async def _actions_failed(conn: AsyncConnection) -> list[tuple[str, dict[str, Any]]]:
    """Flagged cases whose last failure was never alerted (a safety net for the immediate alert)."""
    query = (
        select(case_history.c.case_id, case_history.c.detail)
        .join(cases, cases.c.id == case_history.c.case_id)
        .where(
            cases.c.needs_attention.is_(True),
            case_history.c.kind == "action",
            case_history.c.outcome == ACTION_FAILED,
            _not_alerted("action-failed"),
        )
        .order_by(case_history.c.id)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(query):
        detail = row.detail or {}
        found[row.case_id] = {
            "action": str(detail.get("action", "")),
            "reason": str(detail.get("reason", "")),
            "command_id": str(detail.get("command_id", "")),
        }
    return list(found.items())


async def _urgent(conn: AsyncConnection, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Recent cases flagged urgent (threat to life, child abuse material, authority order)."""
    query = select(cases.c.id, cases.c.flags).where(
        cases.c.flags.is_not(None), cases.c.opened_at > now - URGENT_LOOKBACK, _not_alerted("urgent")
    )
    return [(row.id, {}) for row in await conn.execute(query) if URGENT_FLAGS & set(row.flags or [])]


async def due_alerts(conn: AsyncConnection, settings: Settings, now: datetime) -> list[SendNotification]:
    """Every ops alert due at `now`, each recorded once per (case, cause); the caller queues the commands."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    found += [(cid, "deadline-held", ctx) for cid, ctx in await _deadline_held(conn)]
    found += [(cid, "contest-overdue", ctx) for cid, ctx in await _contests_overdue(conn, now)]
    found += [(cid, "sla-due", ctx) for cid, ctx in await _sla_due(conn, settings, now)]
    found += [(cid, "action-failed", ctx) for cid, ctx in await _actions_failed(conn)]
    found += [(cid, "urgent", ctx) for cid, ctx in await _urgent(conn, now)]
    out: list[SendNotification] = []
    for case_id, cause, ctx in found:
        if cause in ("action-failed", "urgent") and await _told_before(conn, case_id, TEMPLATES[cause]):
            await _claim(conn, case_id, cause, alert_id(case_id, cause), now)  # sent at once elsewhere: noted
            continue
        alert = await alert_once(conn, case_id, cause, settings, now, context=ctx)
        if alert is not None:
            out.append(alert)
    return out


async def queue_due_alerts(conn: AsyncConnection, settings: Settings, now: datetime) -> list[SendNotification]:
    """`due_alerts`, queued in the policy outbox in the same transaction (what the scheduler's tick calls)."""
    alerts = await due_alerts(conn, settings, now)
    await outbox.add(conn, alerts)
    return alerts
