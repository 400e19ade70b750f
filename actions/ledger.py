"""The suspension ledger: what each case stopped, in which state, read by the Postfix policy service."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.remote import LedgerItem
from actions.tables import suspensions
from core.errors import PermanentError
from core.messages import LiftSuspension, SuspendService, utcnow

OPEN_STATES = ("pending", "active")


def items_of(command: SuspendService) -> list[LedgerItem]:
    """What a suspend command stops: its services (account/service scope) and its mailbox/domain targets."""
    items: list[LedgerItem] = []
    if command.scope in ("account", "service"):
        items += [LedgerItem(s, None, command.scope) for s in dict.fromkeys(command.service_ids)]
    owner = command.service_ids[0] if len(command.service_ids) == 1 else ""
    for target in dict.fromkeys(t.strip().lower() for t in command.targets if t.strip()):
        items.append(LedgerItem(owner, target, "mailbox" if "@" in target else "domain"))
    if not items:
        raise PermanentError(f"a {command.scope} suspension that names nothing to stop")
    return items


def _same(item: LedgerItem) -> Any:
    if item.target is None:
        return and_(suspensions.c.service_id == item.service_id, suspensions.c.target.is_(None))
    return suspensions.c.target == item.target


async def _one_claim_at_a_time(conn: AsyncConnection, items: list[LedgerItem]) -> None:
    """PostgreSQL: suspend replicas handling the same command at once (a redelivery, a duplicate publish) would
    both find no open row and both insert one; a transaction-scoped advisory lock per service/target, taken in
    a fixed order, makes the second wait and then see the first's row. SQLite serialises writers already.
    """
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({f"suspension:{item.target or item.service_id}" for item in items}):
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


class Ledger:
    """Rows of `suspensions`: at most one open (pending or active) row per service or per target."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    async def claim(
        self, command: SuspendService, items: list[LedgerItem], *, backend: str, pending: bool
    ) -> list[tuple[int, LedgerItem]]:
        """Record the items (state pending when a remote backend must still confirm, else active).

        Returns the open rows still pending (new ones, or left pending by an interrupted delivery): the only
        ones a remote backend is called for. Items already active (this case or another) are left alone.
        """
        todo: list[tuple[int, LedgerItem]] = []
        now = self.clock()
        async with self.engine.begin() as conn:
            await _one_claim_at_a_time(conn, items)
            for item in items:
                query = select(suspensions.c.id, suspensions.c.state).where(
                    _same(item), suspensions.c.lifted_at.is_(None)
                )
                row = (await conn.execute(query)).first()
                if row is None:
                    result = await conn.execute(
                        suspensions.insert().values(
                            service_id=item.service_id,
                            target=item.target,
                            scope=item.scope,
                            customer_id=command.customer_id,
                            case_id=command.case_id,
                            backend=backend,
                            reason=command.reason[:2000],
                            command_id=command.message_id,
                            suspended_at=now,
                            state="pending" if pending else "active",
                            attempts=0,
                        )
                    )
                    if pending:
                        todo.append((int(result.inserted_primary_key[0]), item))  # type: ignore[index]
                elif row.state == "pending":
                    todo.append((int(row.id), item))
        return todo

    async def mark(self, ids: Iterable[int], *, error: str | None = None, **values: Any) -> None:
        """Update rows after a remote call: counts the attempt, keeps the last error."""
        ids = list(ids)
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(suspensions)
                .where(suspensions.c.id.in_(ids))
                .values(attempts=suspensions.c.attempts + 1, last_error=error, **values)
            )

    async def activate(self, ids: Iterable[int], *, remote_called: bool = True) -> None:
        if remote_called:
            await self.mark(ids, state="active")
        else:
            async with self.engine.begin() as conn:
                await conn.execute(update(suspensions).where(suspensions.c.id.in_(list(ids))).values(state="active"))

    async def refuse(self, ids: Iterable[int], error: str) -> None:
        """The backend refused for good: the row is closed (nothing is in force), the reason kept."""
        await self.mark(ids, error=error[:2000], state="failed", lifted_at=self.clock(), lift_reason="backend refused")

    async def open_rows(self, command: LiftSuspension) -> list[tuple[int, LedgerItem]]:
        """What the case suspended and is still in force (optionally only the named services)."""
        where = [suspensions.c.lifted_at.is_(None), suspensions.c.case_id == command.case_id]
        if command.service_ids:
            where.append(suspensions.c.service_id.in_(command.service_ids))
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(suspensions).where(*where).order_by(suspensions.c.id))
            return [(int(r.id), LedgerItem(r.service_id, r.target, r.scope)) for r in rows]

    async def lifted(self, ids: Iterable[int], reason: str, *, remote_called: bool) -> None:
        values: dict[str, Any] = {"state": "lifted", "lifted_at": self.clock(), "lift_reason": reason[:2000]}
        if remote_called:
            await self.mark(ids, **values)
        else:
            async with self.engine.begin() as conn:
                await conn.execute(update(suspensions).where(suspensions.c.id.in_(list(ids))).values(**values))

    async def blocking(self, *, targets: Iterable[str], service_ids: Iterable[str]) -> dict[str, Any] | None:
        """The open row that stops this sender: one of its mailbox/domain targets, or a service it belongs to."""
        targets = [t.lower() for t in targets if t]
        service_ids = [s for s in service_ids if s]
        if not targets and not service_ids:
            return None
        clauses: list[Any] = []
        if targets:
            clauses.append(suspensions.c.target.in_(targets))
        if service_ids:
            clauses.append(and_(suspensions.c.service_id.in_(service_ids), suspensions.c.target.is_(None)))
        query = select(suspensions).where(suspensions.c.lifted_at.is_(None), or_(*clauses)).limit(1)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return dict(row) if row else None
