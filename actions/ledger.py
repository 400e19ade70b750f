"""The suspension ledger: what each case stopped, in which state, read by the Postfix policy service."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.remote import LedgerItem
from actions.tables import suspensions
from core.errors import PermanentError, TransientError
from core.messages import LiftSuspension, SuspendService, utcnow

# Rows in force (lifted_at NULL): pending (the platform has not confirmed), active, lifting (the platform is being
# asked to restore; mail stays refused until it has). Closed rows: failed, lifted (restored), released (this case
# let go; another case's row keeps the service suspended).
OPEN_STATES = ("pending", "active", "lifting")


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


def name_of(item: LedgerItem) -> str:
    """What a person calls the thing stopped: the mailbox/domain, else the service id."""
    return item.target or item.service_id


def _same(item: LedgerItem) -> Any:
    if item.target is None:
        return and_(suspensions.c.service_id == item.service_id, suspensions.c.target.is_(None))
    return suspensions.c.target == item.target


def _item(row: Any) -> LedgerItem:
    return LedgerItem(row.service_id, row.target, row.scope)


async def _one_claim_at_a_time(conn: AsyncConnection, items: Iterable[LedgerItem]) -> None:
    """PostgreSQL: suspend replicas handling the same service at once (a redelivery, a duplicate publish, a second
    case, a lift) would each decide on what they read; a transaction-scoped advisory lock per service/target, taken
    in a fixed order, makes the second wait and then see the first's rows. SQLite serialises writers already.
    """
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({f"suspension:{item.target or item.service_id}" for item in items}):
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def _open_rows_of(conn: AsyncConnection, item: LedgerItem) -> list[Any]:
    query = select(suspensions.c.id, suspensions.c.case_id, suspensions.c.state).where(
        _same(item), suspensions.c.lifted_at.is_(None)
    )
    return list(await conn.execute(query.order_by(suspensions.c.id)))


async def _case_rows(conn: AsyncConnection, command: LiftSuspension) -> list[tuple[int, LedgerItem]]:
    where = [suspensions.c.lifted_at.is_(None), suspensions.c.case_id == command.case_id]
    if command.service_ids:
        where.append(suspensions.c.service_id.in_(command.service_ids))
    rows = await conn.execute(select(suspensions).where(*where).order_by(suspensions.c.id))
    return [(int(r.id), _item(r)) for r in rows]


@dataclass
class Release:
    """What a lift found: rows to restore on the platform (now `lifting`), rows restored already (ledger only),
    and what stays suspended because another open case holds it."""

    remote: list[tuple[int, LedgerItem]] = field(default_factory=list)
    restored: list[LedgerItem] = field(default_factory=list)
    kept: list[LedgerItem] = field(default_factory=list)


class Ledger:
    """Rows of `suspensions`: one open row per case and service (or target); the service is stopped on the
    platform while any case's row is open, and restored only when the last one closes."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    async def claim(
        self, command: SuspendService, items: list[LedgerItem], *, backend: str, pending: bool
    ) -> list[tuple[int, LedgerItem]]:
        """Record the case's hold on each item (pending when a remote backend must still confirm, else active).

        Returns the case's open rows still pending (new ones, or left pending by an interrupted delivery): the
        only ones a remote backend is called for. An item another case already holds active is recorded active
        at once (already suspended is success). An item whose lift is under way raises TransientError: the
        command is retried once the platform has restored it, so the suspend call comes after the lift call.
        """
        todo: list[tuple[int, LedgerItem]] = []
        now = self.clock()
        async with self.engine.begin() as conn:
            await _one_claim_at_a_time(conn, items)
            for item in items:
                rows = await _open_rows_of(conn, item)
                mine = [r for r in rows if r.case_id == command.case_id]
                if any(r.state == "lifting" for r in rows):
                    raise TransientError(f"a lift of {name_of(item)} is under way; the suspension waits for it")
                if mine:
                    if mine[0].state == "pending":
                        todo.append((int(mine[0].id), item))
                    continue
                state = "pending" if pending and not any(r.state == "active" for r in rows) else "active"
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
                        state=state,
                        attempts=0,
                    )
                )
                if state == "pending":
                    todo.append((int(result.inserted_primary_key[0]), item))  # type: ignore[index]
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

    async def _set(self, ids: Iterable[int], **values: Any) -> None:
        ids = list(ids)
        if ids:
            async with self.engine.begin() as conn:
                await conn.execute(update(suspensions).where(suspensions.c.id.in_(ids)).values(**values))

    async def activate(self, ids: Iterable[int], *, remote_called: bool = True) -> None:
        if remote_called:
            await self.mark(ids, state="active")
        else:
            await self._set(ids, state="active")

    async def refuse(self, ids: Iterable[int], error: str) -> None:
        """The backend refused for good: the row is closed (nothing is in force), the reason kept."""
        await self.mark(ids, error=error[:2000], state="failed", lifted_at=self.clock(), lift_reason="backend refused")

    async def open_rows(self, command: LiftSuspension) -> list[tuple[int, LedgerItem]]:
        """What the case holds and is still in force (optionally only the named services)."""
        async with self.engine.connect() as conn:
            return await _case_rows(conn, command)

    async def release(self, command: LiftSuspension, remote: Callable[[LedgerItem], bool]) -> Release:
        """The case lets go of its rows. An item another open case still holds: the row closes `released`, the
        platform is not called. The last holder: a ledger-only item closes `lifted` here; one the platform must
        restore turns `lifting` (the caller calls the platform, then `lifted`); a redelivered lift finds it so.
        """
        out = Release()
        now = self.clock()
        reason = command.reason[:2000]
        async with self.engine.begin() as conn:
            await _one_claim_at_a_time(conn, [item for _, item in await _case_rows(conn, command)])
            mine = await _case_rows(conn, command)
            for row_id, item in mine:
                others = [r for r in await _open_rows_of(conn, item) if r.case_id != command.case_id]
                query = update(suspensions).where(suspensions.c.id == row_id)
                if others:
                    held = ", ".join(sorted({str(r.case_id) for r in others}))
                    note = f"{reason} (still suspended for case {held})"
                    await conn.execute(query.values(state="released", lifted_at=now, lift_reason=note[:2000]))
                    out.kept.append(item)
                elif remote(item):
                    await conn.execute(query.values(state="lifting"))
                    out.remote.append((row_id, item))
                else:
                    await conn.execute(query.values(state="lifted", lifted_at=now, lift_reason=reason))
                    out.restored.append(item)
        return out

    async def lifted(self, ids: Iterable[int], reason: str, *, remote_called: bool) -> None:
        values: dict[str, Any] = {"state": "lifted", "lifted_at": self.clock(), "lift_reason": reason[:2000]}
        if remote_called:
            await self.mark(ids, **values)
        else:
            await self._set(ids, **values)

    async def lift_refused(self, ids: Iterable[int], error: str) -> None:
        """The platform refused to restore for good: the rows are in force again (active), the error kept."""
        await self.mark(ids, error=error[:2000], state="active")

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


PROGRESS_FIELDS = (
    "id",
    "service_id",
    "target",
    "scope",
    "state",
    "attempts",
    "last_error",
    "backend",
    "suspended_at",
    "lifted_at",
    "lift_reason",
)


async def _progress(conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    query = select(suspensions).where(suspensions.c.case_id == case_id).order_by(suspensions.c.id)
    out: list[dict[str, Any]] = []
    for row in await conn.execute(query):
        entry = {name: getattr(row, name) for name in PROGRESS_FIELDS}
        entry["name"] = name_of(_item(row))
        others: set[str] = set()
        if row.lifted_at is None:
            others = {str(r.case_id) for r in await _open_rows_of(conn, _item(row)) if r.case_id != case_id}
        entry["also_held_by"] = sorted(others)
        out.append(entry)
    return out


async def suspension_progress(engine_or_conn: AsyncEngine | AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    """A case's suspension rows for its page, oldest first: `state` (pending = under way, not confirmed; active;
    lifting; lifted; released = let go while another case keeps it suspended; failed), `attempts` (platform calls
    made), `last_error`, `service_id` / `target` / `name`, `also_held_by` (other open cases holding the same thing).
    """
    if isinstance(engine_or_conn, AsyncConnection):
        return await _progress(engine_or_conn, case_id)
    async with engine_or_conn.connect() as conn:
        return await _progress(conn, case_id)
