"""Use case "a report arrived": split it by the customers its incidents name, then decide each part on its own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import upsert
from core.report import AbuseReport, Incident
from core.settings import Settings
from policy import cases as store
from policy import facts as facts_mod
from policy import inventory
from policy.deciding import decide_part
from policy.incidents import incident_time, incidents_of, lookups, part_for
from policy.replies import attach_reply
from policy.resolve import Resolver
from policy.tables import customers, report_summaries
from policy.unit import Unit

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """The incidents of one report that concern one customer and one category (None: nothing of ours)."""

    customer_id: str | None
    category: str
    incidents: tuple[Incident, ...]


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


async def split(conn: AsyncConnection, report: AbuseReport, now: datetime) -> Split:
    """Map every incident to the customer that held it at the incident's own time (one batch lookup), and group."""
    items = incidents_of(report)
    fallback = facts_mod.incident_time(report, now)
    queries: list[inventory.Query] = []
    owners: list[int] = []
    for n, incident in enumerate(items):
        at = incident_time(incident, fallback)
        for kind, value in lookups(incident):
            queries.append(inventory.Query(kind, value, at))  # type: ignore[arg-type]
            owners.append(n)
    found = await inventory.lookup_batch(conn, queries) if queries else []
    owner_of: dict[int, str] = {}
    for n, matches in zip(owners, found, strict=True):
        if n not in owner_of and matches:
            owner_of[n] = matches[0].customer_id
    grouped: dict[tuple[str, str], list[Incident]] = {}
    for n, incident in enumerate(items):
        if n in owner_of:
            grouped.setdefault((owner_of[n], incident.category or report.category), []).append(incident)
    not_ours = len(items) - len(owner_of)
    if not grouped:
        return Split([Group(None, report.category, tuple(items))], len(items), not_ours)
    groups = [Group(c, k, tuple(v)) for (c, k), v in sorted(grouped.items())]
    return Split(groups, len(items), not_ours)


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def report_arrived(
    engine: AsyncEngine, report: AbuseReport, settings: Settings, now: datetime, *, resolver: Resolver | None = None
) -> list[str]:
    """Decide one report: a reply joins its case; otherwise one decision per (customer, category) it names.

    Each batch of customers is one transaction; a redelivered report skips the customers already decided, so a
    crash in the middle of a bulk report neither loses nor repeats a decision or a mail.
    """
    async with engine.begin() as conn:
        threaded = await attach_reply(Unit(conn, settings, now), report)
        if threaded is not None:
            return [threaded]
        parts = await split(conn, report, now)
        done = await store.attached_cases(conn, report.report_id)
    todo = [g for g in parts.groups if (g.customer_id, g.category) not in done]
    decided = list(done.values())
    for chunk in batches(todo, settings.policy.group_batch):
        async with engine.begin() as conn:
            await lock_customers(conn, [g.customer_id for g in chunk if g.customer_id])
            again = await store.attached_cases(conn, report.report_id)  # a replica may have decided some meanwhile
            unit = Unit(conn, settings, now)
            for group in chunk:
                if (group.customer_id, group.category) in again:
                    continue
                part = part_for(report, group.incidents, whole=parts.whole).model_copy(
                    update={"category": group.category}
                )
                decided.append(await decide_part(unit, part, group.customer_id, resolver=resolver))
    async with engine.begin() as conn:
        await upsert(
            conn,
            report_summaries,
            [
                {
                    "report_id": report.report_id,
                    "received_at": report.received_at or now,
                    "format": report.format,
                    "reporter": report.reporter,
                    "incident_count": parts.total,
                    "not_ours": parts.not_ours,
                    "case_ids": sorted(set(decided)),
                }
            ],
            ["report_id"],
        )
    return decided


async def lock_customers(conn: AsyncConnection, customer_ids: list[str]) -> None:
    """PostgreSQL: lock the customers about to be decided, in one order, so that replicas decide one customer's
    reports in turn (two at once would both see no open case and open two). SQLite serialises writers already."""
    if conn.dialect.name != "postgresql" or not customer_ids:
        return
    ids = sorted(set(customer_ids))
    await conn.execute(select(customers.c.id).where(customers.c.id.in_(ids)).order_by(customers.c.id).with_for_update())
