"""The case store: loads and saves Cases (the only writer of `cases`), their reports, incidents and audit trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.report import AbuseReport, Incident
from policy.case import Case
from policy.tables import case_history, case_reports, cases, incidents

INSERT_CHUNK = 500  # rows per multi-row INSERT: well under any database's bound-parameter limit

# What every decision reads and writes, built once with bind parameters (no expression or cache key is built
# again per decision: SQLAlchemy memoises both on the statement object); the values go with each execute().
_LOAD = select(cases).where(cases.c.id == bindparam("case_id"))
_ANSWERED = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.answered_at.is_(None))
    .values(answered_at=bindparam("at"))
)
_ATTACHED = (
    select(cases.c.customer_id, cases.c.category, cases.c.id)
    .select_from(case_reports.join(cases, cases.c.id == case_reports.c.case_id))
    .where(case_reports.c.report_id == bindparam("report_id"))
)
_RECENT_INCIDENTS = select(incidents.c.key, incidents.c.id).where(
    incidents.c.case_id == bindparam("case_id"), incidents.c.last_seen >= bindparam("since")
)
_SEEN_AGAIN = (
    update(incidents)
    .where(incidents.c.id == bindparam("incident_id"))
    .values(count=incidents.c.count + bindparam("times"), last_seen=bindparam("at"))
)
_REPORTS_BY = select(func.count()).where(  # counted by the database: a case of thousands of reports is not read back
    case_reports.c.case_id == bindparam("case_id"),
    func.lower(case_reports.c.report["reporter"].as_string()) == bindparam("reporter"),
)


def new_case_id() -> str:
    """A short, readable, unique case reference (AD-XXXXXXXXXX)."""
    return "AD-" + uuid.uuid4().hex[:10].upper()


async def load(conn: AsyncConnection, case_id: str) -> Case | None:
    """One case, or None."""
    row = (await conn.execute(_LOAD, {"case_id": case_id})).mappings().first()
    return Case.from_row(row) if row else None


async def case_row(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    """One case as a plain mapping (read side: pages and statements), or None."""
    case = await load(conn, case_id)
    return case.as_dict() if case else None


async def insert(conn: AsyncConnection, case: Case) -> None:
    """Store a new case."""
    await conn.execute(cases.insert(), case.values())


async def save(conn: AsyncConnection, before: Case, after: Case) -> None:
    """Store what changed between two versions of a case (counters are added, so concurrent joins add up)."""
    if before.id != after.id:
        raise ValueError("save() compares two versions of one case")
    old, new = before.values(), after.values()
    changed = {k: v for k, v in new.items() if old[k] != v and k not in ("report_count", "incident_count")}
    for counter in ("report_count", "incident_count"):
        if new[counter] != old[counter]:
            changed[counter] = getattr(cases.c, counter) + (new[counter] - old[counter])
    if changed:
        await conn.execute(update(cases).where(cases.c.id == after.id).values(**changed))


async def mark_answered(conn: AsyncConnection, case_id: str, now: datetime) -> None:
    """The complainant got the result of the analysis (the SLA clock stops; the first answer counts)."""
    await conn.execute(_ANSWERED, {"case_id": case_id, "at": now})


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
    row = {"case_id": case_id, "at": at, "kind": kind, "outcome": outcome, "rules": rules, "detail": detail}
    await conn.execute(case_history.insert(), row)


async def attach(
    conn: AsyncConnection,
    case_id: str,
    report: AbuseReport,
    received: datetime,
    kind: str,
    confirmation: str | None = None,
) -> None:
    """Attach a report (the part of it that concerns this case) to a case, with how well its facts stand."""
    row = {
        "report_id": report.report_id,
        "case_id": case_id,
        "received_at": received,
        "reporter_kind": kind,
        "confirmation": confirmation,
        "dkim_domain": (report.auth.from_domain or "").lower()[:255] or None if report.auth.dkim_aligned else None,
        "report": report.model_dump(mode="json", exclude={"incidents"}),
    }
    await conn.execute(case_reports.insert(), row)


async def attached_cases(conn: AsyncConnection, report_id: str) -> dict[tuple[str | None, str], str]:
    """The cases a report is already attached to, by (customer, category): what a redelivery must not redo."""
    rows = await conn.execute(_ATTACHED, {"report_id": report_id})
    return {(r.customer_id, r.category): r.id for r in rows}


def incident_key(incident: Incident) -> str:
    """The stored form of an incident's identity (address or name, port, type)."""
    what, port, tag = incident.key
    return f"{what}|{port if port is not None else ''}|{tag}"[:400]


async def add_incidents(
    conn: AsyncConnection,
    case_id: str,
    report_id: str,
    found: Sequence[Incident],
    now: datetime,
    window: timedelta,
    *,
    fresh: bool = False,
) -> tuple[int, int]:
    """Record a case's incidents; one seen again within `window` adds to its count. Returns (new, repeated).

    `fresh`: a case opened in this transaction (nothing to look up: every incident is new)."""
    if not found:
        return 0, 0
    recent = {"case_id": case_id, "since": now - window}
    known = {} if fresh else {r.key: r.id for r in await conn.execute(_RECENT_INCIDENTS, recent)}
    new_rows: dict[str, dict[str, Any]] = {}
    repeated: dict[int, int] = {}
    for incident in found:
        key = incident_key(incident)
        if key in known:
            repeated[known[key]] = repeated.get(known[key], 0) + 1
        elif key in new_rows:
            new_rows[key]["count"] += 1
        else:
            new_rows[key] = _incident_row(case_id, report_id, key, incident, now)
    rows = list(new_rows.values())
    for start in range(0, len(rows), INSERT_CHUNK):
        await conn.execute(incidents.insert(), rows[start : start + INSERT_CHUNK])
    for row_id, times in repeated.items():
        await conn.execute(_SEEN_AGAIN, {"incident_id": row_id, "times": times, "at": now})
    return len(rows), sum(repeated.values())


def _incident_row(case_id: str, report_id: str, key: str, incident: Incident, now: datetime) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "report_id": report_id,
        "key": key,
        "ip": incident.ip,
        "port": incident.port,
        "protocol": (incident.protocol or "")[:16] or None,
        "tag": (incident.tag or "")[:64] or None,
        "url": incident.url,
        "domain": (incident.domain or "")[:255] or None,
        "email": (incident.email or "")[:320] or None,
        "observed_at": incident.observed_at,
        "first_seen": now,
        "last_seen": now,
        "count": 1,
        "evidence": incident.evidence[:2000],
    }


async def case_incidents(conn: AsyncConnection, case_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """A case's incidents, oldest first (what `cases show --json` lists and the customer's attachment holds)."""
    rows = await conn.execute(
        select(incidents).where(incidents.c.case_id == case_id).order_by(incidents.c.id).limit(limit)
    )
    return [{k: v for k, v in r.items() if k not in ("case_id",)} for r in rows.mappings()]


CASE_TAG = re.compile(r"\bAD-[0-9A-F]{10}\b")


async def thread_of(conn: AsyncConnection, report: AbuseReport) -> Case | None:
    """The case a mail answers: its subject carries one of our case references (replies keep it)."""
    for tag in CASE_TAG.findall(report.subject or "")[:3]:
        case = await load(conn, tag)
        if case is not None:
            return case
    return None


async def reported_before(conn: AsyncConnection, case_id: str, reporter: str | None, allowed: int = 0) -> bool:
    """True when the reporter already has more than `allowed` reports in the case (one receipt per reporter)."""
    if not reporter:
        return True
    count = await conn.scalar(_REPORTS_BY, {"case_id": case_id, "reporter": reporter.lower()})
    return int(count or 0) > allowed


async def first_report(conn: AsyncConnection, case_id: str) -> AbuseReport | None:
    """The report that opened a case (the part of it that concerns this case)."""
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
    """Strongly confirmed reports attached to a case after an instant (new evidence since the warning)."""
    return int(
        await conn.scalar(
            select(func.count()).where(
                case_reports.c.case_id == case_id,
                case_reports.c.received_at > since,
                case_reports.c.confirmation == "strong",
            )
        )
        or 0
    )


async def cases_of(conn: AsyncConnection, ids: Iterable[str]) -> list[Case]:
    """Several cases by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = await conn.execute(select(cases).where(cases.c.id.in_(wanted)))
    return [Case.from_row(r) for r in rows.mappings()]
