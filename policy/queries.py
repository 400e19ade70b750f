"""Read-side queries on cases for ops and scripts (the JSON shapes of design §5)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from policy.case import Status
from policy.cases import case_incidents
from policy.sla import DUE_SOON, SLA_FILTERS, sla_fields, sla_matches, sla_state
from policy.tables import case_history, case_reports, cases, customer_answers, customers, resources, services

__all__ = ["DUE_SOON", "list_cases", "show_case", "sla_state"]  # sla_state and DUE_SOON live in policy.sla

LIST_FIELDS = (
    "id",
    "status",
    "category",
    "customer_id",
    "service_ids",
    "report_count",
    "opened_at",
    "updated_at",
    "sla_due_at",
    "answered_at",
    "deadline_at",
    "rules",
    "reporter_kind",
    "needs_attention",
    "confirmation",
    "severity",
    "flags",
    "incident_count",
)
STATUSES = tuple(s.value for s in Status)  # the case's statuses (policy/case.py), `suspending` included


async def list_cases(
    conn: AsyncConnection,
    status: str | None = None,
    limit: int = 1000,
    *,
    sla: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Cases, newest first, optionally of one status and/or one SLA state (breached, due-soon, ...)."""
    now = now or datetime.now(UTC)
    query = select(cases).order_by(cases.c.opened_at.desc(), cases.c.id).limit(limit)
    if status:
        query = query.where(cases.c.status == status)
    rows = (await conn.execute(query)).mappings().all()
    out = [{k: row[k] for k in LIST_FIELDS} | sla_fields(dict(row), now) for row in rows]  # SLA rules: policy.sla
    return [c for c in out if sla is None or sla_matches(c, sla)]


async def show_case(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    """One case with its reports (summaries) and full history (rules, reasons, facts)."""
    row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    if row is None:
        return None
    case: dict[str, Any] = dict(row)
    reports = await conn.execute(
        select(case_reports).where(case_reports.c.case_id == case_id).order_by(case_reports.c.received_at)
    )
    case["reports"] = [
        {
            "report_id": r.report_id,
            "received_at": r.received_at,
            "format": r.report.get("format"),
            "category": r.report.get("category"),
            "reporter": r.report.get("reporter"),
            "source_ips": r.report.get("source_ips"),
            "domains": r.report.get("domains"),
            "urls": r.report.get("urls"),
            "subject": r.report.get("subject"),
        }
        for r in reports
    ]
    history = await conn.execute(
        select(case_history).where(case_history.c.case_id == case_id).order_by(case_history.c.id)
    )
    case["history"] = [dict(h) for h in history.mappings()]
    case["incidents"] = await case_incidents(conn, case_id)
    return case


# --- triage: search, sort, pages, counts, the "needs me" view (design §5 keys are kept; new keys are added) ---

SORT_FIELDS = (
    "id",
    "status",
    "category",
    "customer_id",
    "customer_name",
    "report_count",
    "opened_at",
    "updated_at",
    "sla_due_at",
    "deadline_at",
    "severity",
    "confirmation",
)
DEFAULT_SORT = "-opened_at"
ATTENTION = ("review", "sla-due-soon", "sla-breached", "contest", "action-failed", "customer-waiting", "urgent")
URGENT_FLAGS = ("art18-suspicion", "legal-escalation", "urgent")
INDICATORS_SHOWN = 3


class QueryError(ValueError):
    """A filter or sort value that is not one of the known ones (the message lists the valid ones)."""


def check_sort(sort: str) -> tuple[str, bool]:
    """'-opened_at' -> ('opened_at', descending); QueryError for an unknown field."""
    field, descending = sort.removeprefix("-"), sort.startswith("-")
    if field not in SORT_FIELDS:
        raise QueryError(f"unknown sort field {field!r}: one of {', '.join(SORT_FIELDS)} (prefix '-' to reverse)")
    return field, descending


def _search_condition(term: str) -> tuple[ColumnElement[bool] | None, IPv4Network | IPv6Network | None]:
    """SQL condition for a text term, or the network a CIDR term names (filtered in Python)."""
    term = term.strip()
    if "/" in term:
        try:
            return None, ip_network(term, strict=False)
        except ValueError:
            pass  # not a CIDR: a URL or a path, searched as text
    reports = select(case_reports.c.case_id).where(cast(case_reports.c.report, Text).icontains(term, autoescape=True))
    return (
        or_(
            cases.c.id.icontains(term, autoescape=True),
            cases.c.customer_id.icontains(term, autoescape=True),
            customers.c.name.icontains(term, autoescape=True),
            cases.c.reporter.icontains(term, autoescape=True),
            cases.c.id.in_(reports),
        ),
        None,
    )


async def _cases_in_network(conn: AsyncConnection, network: IPv4Network | IPv6Network) -> set[str]:
    found: set[str] = set()
    for row in await conn.execute(select(case_reports.c.case_id, case_reports.c.report)):
        report = row.report or {}
        addresses = [*(report.get("source_ips") or []), *(i.get("ip") for i in report.get("incidents") or [])]
        for value in addresses:
            try:
                if value and ip_address(str(value)) in network:
                    found.add(row.case_id)
                    break
            except ValueError:
                continue
    return found


async def _attention_sets(conn: AsyncConnection) -> tuple[set[str], set[str]]:
    """Case ids with an open contest, and with a failed action in their history."""
    contests = select(customer_answers.c.case_id).where(
        customer_answers.c.kind == "contest", customer_answers.c.decided_at.is_(None)
    )
    failed = select(case_history.c.case_id).where(case_history.c.outcome == "action.failed.v1")
    return (
        {r[0] for r in await conn.execute(contests)},
        {r[0] for r in await conn.execute(failed)},
    )


def attention_reasons(case: Mapping[str, Any], contests: set[str], failed: set[str]) -> list[str]:
    """Why a case needs a person now (empty: it does not)."""
    reasons = []
    if case["status"] == Status.NEEDS_REVIEW:
        reasons.append("review")
    if case.get("sla_state") in ("due-soon", "breached"):
        reasons.append(f"sla-{case['sla_state']}")
    if case["id"] in contests:
        reasons.append("contest")
    if case.get("needs_attention") and case["id"] not in contests:
        reasons.append("action-failed" if case["id"] in failed else "customer-waiting")
    if set(case.get("flags") or []) & set(URGENT_FLAGS):
        reasons.append("urgent")
    return reasons


async def find_cases(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    sla: str | None = None,
    search: str | None = None,
    attention: str | None = None,
    customer_id: str | None = None,
    sort: str = DEFAULT_SORT,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of cases and the number of matching cases. `attention`: a reason of ATTENTION, or "any"."""
    now = now or datetime.now(UTC)
    if status is not None and status not in STATUSES:
        raise QueryError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
    if sla is not None and sla not in SLA_FILTERS:
        raise QueryError(f"unknown SLA state {sla!r}: one of {', '.join(SLA_FILTERS)}")
    if attention is not None and attention not in (*ATTENTION, "any"):
        raise QueryError(f"unknown attention reason {attention!r}: one of any, {', '.join(ATTENTION)}")
    if limit < 1 or offset < 0:
        raise QueryError("--limit must be at least 1 and --offset at least 0")
    field, descending = check_sort(sort)
    column = customers.c.name if field == "customer_name" else cases.c[field]
    query = select(cases, customers.c.name.label("customer_name")).select_from(
        cases.outerjoin(customers, customers.c.id == cases.c.customer_id)
    )
    if status:
        query = query.where(cases.c.status == status)
    if customer_id:
        query = query.where(cases.c.customer_id == customer_id)
    network = None
    if search and search.strip():
        condition, network = _search_condition(search)
        if condition is not None:
            query = query.where(condition)
        else:
            assert network is not None
            query = query.where(cases.c.id.in_(await _cases_in_network(conn, network) or {""}))
    order = column.desc() if descending else column.asc()
    query = query.order_by(order.nulls_last(), cases.c.id.desc() if descending else cases.c.id)
    in_python = sla is not None or attention is not None
    if not in_python:
        total = int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one())
        query = query.limit(limit).offset(offset)
    contests, failed = await _attention_sets(conn)
    rows = []
    for row in (await conn.execute(query)).mappings():
        case = {k: row[k] for k in LIST_FIELDS} | sla_fields(dict(row), now) | {"customer_name": row["customer_name"]}
        case["attention"] = attention_reasons(case, contests, failed)
        if sla is not None and not sla_matches(case, sla):
            continue
        if (attention == "any" and not case["attention"]) or attention not in (None, "any", *case["attention"]):
            continue
        rows.append(case)
    if in_python:
        total = len(rows)
        rows = rows[offset : offset + limit]
    await _add_indicators(conn, rows)
    return rows, total


async def _add_indicators(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Each case's main indicators (the first IPs, domains and URLs of its reports) and its reporters."""
    for r in rows:
        r["indicators"] = {"ips": [], "domains": [], "urls": []}
    index = {r["id"]: r for r in rows}
    if not index:
        return
    found = await conn.execute(
        select(case_reports.c.case_id, case_reports.c.report)
        .where(case_reports.c.case_id.in_(list(index)))
        .order_by(case_reports.c.received_at)
    )
    for row in found:
        shown = index[row.case_id]["indicators"]
        for key, source in (("ips", "source_ips"), ("domains", "domains"), ("urls", "urls")):
            for value in (row.report or {}).get(source) or []:
                if value not in shown[key] and len(shown[key]) < INDICATORS_SHOWN:
                    shown[key].append(value)


async def case_counts(conn: AsyncConnection, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """How many cases per status, and how many need a person per attention reason (the top of the case list)."""
    now = now or datetime.now(UTC)
    per_status = {s: 0 for s in STATUSES}
    for status, n in await conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status)):
        per_status[status] = int(n)
    open_cases = select(cases).where(cases.c.status.notin_((Status.REJECTED, Status.RESOLVED, Status.LIFTED)))
    contests, failed = await _attention_sets(conn)
    per_reason = {a: 0 for a in ATTENTION}
    needs_me = 0
    for row in (await conn.execute(open_cases)).mappings():
        case = dict(row) | sla_fields(dict(row), now)
        reasons = attention_reasons(case, contests, failed)
        needs_me += bool(reasons)
        for reason in reasons:
            per_reason[reason] += 1
    return {"status": per_status, "attention": per_reason | {"any": needs_me}}


async def preview_suspension(
    conn: AsyncConnection, case_id: str, service_ids: list[str] | None = None
) -> dict[str, list[dict[str, str]] | list[str]]:
    """What a suspension of the case's services would stop: the services, their mailboxes and domains, their IPs."""
    if service_ids is None:
        row = (await conn.execute(select(cases.c.service_ids).where(cases.c.id == case_id))).first()
        service_ids = list(row.service_ids or []) if row else []
    found = await conn.execute(select(services).where(services.c.id.in_(service_ids)).order_by(services.c.id))
    out: dict[str, list[Any]] = {
        "services": [{"id": s.id, "kind": s.kind, "name": s.name} for s in found],
        "mailboxes": [],
        "domains": [],
        "ips": [],
    }
    held = await conn.execute(
        select(resources.c.type, resources.c.value)
        .where(resources.c.service_id.in_(service_ids), resources.c.valid_to.is_(None))
        .order_by(resources.c.type, resources.c.value)
    )
    for rtype, value in held:
        key = {"mailbox": "mailboxes", "domain": "domains", "ip": "ips", "cidr": "ips"}.get(rtype)
        if key and value not in out[key]:
            out[key].append(value)
    return out


async def customer_cases(conn: AsyncConnection, customer_id: str) -> list[dict[str, Any]]:
    """Every case of one customer, newest first (id, status, category, opened_at): links between them."""
    rows = await conn.execute(
        select(cases.c.id, cases.c.status, cases.c.category, cases.c.opened_at)
        .where(cases.c.customer_id == customer_id)
        .order_by(cases.c.opened_at.desc())
    )
    return [dict(r) for r in rows.mappings()]
