"""Use case "a report arrived": split it by the customers its incidents name, then decide each part on its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import upsert
from core.report import AbuseReport, Incident
from core.settings import Settings
from core.steps import Steps, at_once, in_turns
from policy import cases as store
from policy import facts as facts_mod
from policy import inventory
from policy.deciding import decide_part
from policy.incidents import incident_time, incidents_of, lookups, part_for
from policy.replies import attach_reply
from policy.resolve import Resolver
from policy.tables import report_summaries
from policy.unit import Unit

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """The incidents of one report that concern one customer and one category (None: nothing of ours)."""

    customer_id: str | None
    category: str
    incidents: tuple[Incident, ...]
    matches: tuple[inventory.Match, ...] = ()  # what the inventory said about them (facts need not ask again)


@dataclass(frozen=True)
class Split:
    """A report split by customer: the groups, how many incidents it had, how many were about nothing of ours."""

    groups: list[Group]
    total: int
    not_ours: int

    @property
    def whole(self) -> bool:
        """The report concerns one customer and nothing else: its own text may serve as evidence."""
        return len(self.groups) == 1 and self.not_ours == 0


LOOKUP_TURN = 5000  # a bulk report's inventory queries asked per turn (the others wait one short read)
STEP = 1000  # incidents listed or grouped per turn of the event loop (a few milliseconds)


async def split(conn: AsyncConnection, report: AbuseReport, now: datetime) -> Split:
    """Map every incident to the customer that held it at the incident's own time (one batch lookup), and group."""
    items, queries, owners = at_once(_queries(report, now))
    found = await inventory.lookup_batch(conn, queries) if queries else []
    return at_once(_grouped(report, items, owners, found))


async def split_in_turns(
    engine: AsyncEngine, report: AbuseReport, now: datetime, turn: Callable[[], AbstractAsyncContextManager[object]]
) -> Split:
    """`split` for a bulk report: its queries asked `LOOKUP_TURN` at a time, each read in its own turn. Listing
    the queries and grouping the answers (about a second each for 100,000 rows) go `STEP` incidents per turn of
    the event loop (core.steps), so the loop decides other reports in between."""
    items, queries, owners = await in_turns(_queries(report, now))
    found: list[list[inventory.Match]] = []
    for chunk in batches(queries, LOOKUP_TURN):
        async with turn(), engine.begin() as conn:  # reads only (SQLite: the lookup's own temporary table)
            found += await inventory.lookup_batch(conn, chunk)
    return await in_turns(_grouped(report, items, owners, found))


def _queries(report: AbuseReport, now: datetime) -> Steps[tuple[list[Incident], list[inventory.Query], list[int]]]:
    """The report's incidents, what to ask the inventory about them, and which incident asked each query."""
    items = incidents_of(report)
    fallback = facts_mod.incident_time(report, now)
    queries: list[inventory.Query] = []
    owners: list[int] = []
    for n, incident in enumerate(items):
        if n and not n % STEP:
            yield
        at = incident_time(incident, fallback)
        for kind, value in lookups(incident):
            queries.append(inventory.Query(kind, value, at))  # type: ignore[arg-type]
            owners.append(n)
    return items, queries, owners


def _grouped(
    report: AbuseReport, items: list[Incident], owners: list[int], found: Sequence[list[inventory.Match]]
) -> Steps[Split]:
    """Each incident to the customer its most specific match names, grouped by (customer, category)."""
    owner_of: dict[int, str] = {}
    matched: dict[int, list[inventory.Match]] = {}
    for step, (n, matches) in enumerate(zip(owners, found, strict=True)):
        if step and not step % STEP:
            yield
        if n not in owner_of and matches:
            owner_of[n] = matches[0].customer_id
        matched.setdefault(n, []).extend(matches)
    grouped: dict[tuple[str, str], list[Incident]] = {}
    group_matches: dict[tuple[str, str], dict[tuple[str, str], inventory.Match]] = {}
    for n, incident in enumerate(items):
        if n and not n % STEP:
            yield
        if n in owner_of:
            key = (owner_of[n], incident.category or report.category)
            grouped.setdefault(key, []).append(incident)
            mine = group_matches.setdefault(key, {})
            for m in matched[n]:
                if m.customer_id == key[0]:
                    mine.setdefault((m.indicator, m.service_id), m)
    not_ours = len(items) - len(owner_of)
    if not grouped:
        return Split([Group(None, report.category, tuple(items))], len(items), not_ours)
    groups = [Group(c, k, tuple(v), tuple(group_matches[(c, k)].values())) for (c, k), v in sorted(grouped.items())]
    return Split(groups, len(items), not_ours)


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def report_arrived(
    engine: AsyncEngine, report: AbuseReport, settings: Settings, now: datetime, *, resolver: Resolver | None = None
) -> list[str]:
    """Decide one report: a reply joins its case; otherwise one decision per (customer, category) it names.

    A report about a few customers is one transaction. A bulk report is decided in batches of customers, each
    its own transaction; a redelivered report skips the customers already decided, so a crash in the middle of
    a bulk report neither loses nor repeats a decision or a mail.
    """
    batch = settings.policy.group_batch
    async with engine.begin() as conn:
        unit = Unit(conn, settings, now)
        threaded = await attach_reply(unit, report)
        if threaded is not None:
            return [threaded]
        parts = await split(conn, report, now)
        if len(parts.groups) <= batch:  # the usual report: everything in this one transaction
            decided = await _decide(unit, report, parts, parts.groups, resolver)
            await _summarize(conn, report, parts, decided, now)
            return decided
        done = await store.attached_cases(conn, report.report_id)
    todo = [g for g in parts.groups if (g.customer_id, g.category) not in done]
    decided = list(done.values())
    for chunk in batches(todo, batch):
        async with engine.begin() as conn:
            decided += await _decide(Unit(conn, settings, now), report, parts, chunk, resolver)
    async with engine.begin() as conn:
        await _summarize(conn, report, parts, decided, now)
    return decided


async def bulk_arrived(
    engine: AsyncEngine,
    report: AbuseReport,
    settings: Settings,
    now: datetime,
    *,
    resolver: Resolver | None = None,
    turn: Callable[[], AbstractAsyncContextManager[object]] = nullcontext,
    batch: int | None = None,
) -> list[str]:
    """`report_arrived` for a report that names many customers, when its writes share a writer with others.

    Every transaction, its reads of the inventory included, is entered with `turn` (e.g. one that waits while
    ordinary reports are decided, then takes an SQLite process's writer lock), so other reports are decided
    between its steps: the split asks `LOOKUP_TURN` queries per turn, the decisions go `batch` customers
    (default `policy.group_batch`) per transaction. Each batch skips the customers already decided, read again
    in its own transaction: a redelivered report neither repeats nor loses a decision.
    """
    async with turn(), engine.begin() as conn:
        threaded = await attach_reply(Unit(conn, settings, now), report)
        if threaded is not None:
            return [threaded]
    parts = await split_in_turns(engine, report, now, turn)
    decided: dict[tuple[str | None, str], str] = {}
    for chunk in [*batches(parts.groups, batch or settings.policy.group_batch), []]:
        async with turn(), engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            if chunk:  # what an earlier copy decided is skipped by _decide
                await _decide(Unit(conn, settings, now), report, parts, chunk, resolver)
            decided = await store.attached_cases(conn, report.report_id)
            if not chunk:  # after the last batch: the report's own record
                await _summarize(conn, report, parts, list(decided.values()), now)
    return list(decided.values())


async def reports_arrived(
    engine: AsyncEngine,
    reports: Sequence[AbuseReport],
    settings: Settings,
    now: datetime,
    *,
    resolver: Resolver | None = None,
) -> list[list[str]]:
    """Decide several small reports in one transaction, in order (the cases each decided, per report).

    For reports about a few customers each (a bulk report would make the transaction long: give it to
    `report_arrived`). Each is decided as `report_arrived` would, one after the other in the same transaction, so
    a later report about the customer of an earlier one sees the earlier one's case; a redelivered report
    decides nothing again. One commit for all: when it fails, none of them is decided (retry them one by one).
    """
    out: list[list[str]] = []
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # the writer's lock first: no other commit can make our reads stale
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        unit = Unit(conn, settings, now)
        for report in reports:
            threaded = await attach_reply(unit, report)
            if threaded is not None:
                out.append([threaded])
                continue
            parts = await split(conn, report, now)
            decided = await _decide(unit, report, parts, parts.groups, resolver)
            await _summarize(conn, report, parts, decided, now)
            out.append(decided)
    return out


async def _decide(
    unit: Unit, report: AbuseReport, parts: Split, groups: Sequence[Group], resolver: Resolver | None
) -> list[str]:
    """Decide some of a report's groups in the unit's transaction (customers locked first, in one order); a group
    the report was already decided into (a redelivery; on PostgreSQL, another replica until the lock) is its case."""
    conn = unit.conn
    unit.known.customers |= await lock_customers(conn, [g.customer_id for g in groups if g.customer_id])
    if len(groups) > 1:  # several customers in one transaction: their files in one query each
        await unit.known.prefetch(conn, [g.customer_id for g in groups if g.customer_id])
    again = await store.attached_cases(conn, report.report_id)  # read after the lock
    decided = []
    for group in groups:
        if (group.customer_id, group.category) in again:
            decided.append(again[(group.customer_id, group.category)])  # decided by an earlier copy: still its case
            continue
        part = part_for(report, group.incidents, whole=parts.whole).model_copy(update={"category": group.category})
        matches = group.matches if group.customer_id else None
        decided.append(await decide_part(unit, part, group.customer_id, resolver=resolver, matches=matches))
    return decided


async def _summarize(
    conn: AsyncConnection, report: AbuseReport, parts: Split, decided: list[str], now: datetime
) -> None:
    """The report's own record: how many incidents it had, how many were about nothing of ours, its cases."""
    row = {
        "report_id": report.report_id,
        "received_at": report.received_at or now,
        "format": report.format,
        "reporter": report.reporter,
        "incident_count": parts.total,
        "not_ours": parts.not_ours,
        "case_ids": sorted(set(decided)),
    }
    await upsert(conn, report_summaries, [row], ["report_id"])


async def lock_customers(conn: AsyncConnection, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """PostgreSQL: lock the customers about to be decided, in one order, so that replicas decide one customer's
    reports in turn (two at once would both see no open case and open two); their files, read with the lock, by
    id. SQLite serialises writers already (nothing is read here)."""
    if conn.dialect.name != "postgresql" or not customer_ids:
        return {}
    return await inventory.customers_rows(conn, customer_ids, lock=True)
