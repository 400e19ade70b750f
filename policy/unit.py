"""The unit of work every policy handler runs in: one transaction, the case store, the outbox, deadlines, statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from core.messages import Message
from core.settings import Settings
from policy import cases as store
from policy import outbox
from policy.case import Case
from policy.facts import Known
from policy.tables import deadlines, statements


@dataclass
class Plan:
    """What a decision sends out: commands at once, messages held until the platform confirmed, a statement."""

    messages: list[Message] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)  # sent once the suspension is confirmed
    statement: dict[str, Any] | None = None

    def extend(self, other: Plan) -> None:
        """Add another plan's messages (and its statement, if this plan has none)."""
        self.messages += other.messages
        self.held += other.held
        self.statement = self.statement or other.statement


@dataclass
class Unit:
    """One transaction of the policy: handlers read and change cases here, and queue what they send."""

    conn: AsyncConnection
    settings: Settings
    now: datetime
    receipted: set[str] = field(default_factory=set)  # reports acknowledged in this transaction: one receipt each
    known: Known = field(default_factory=Known)  # customers and reporters fetched once for this transaction

    async def load(self, case_id: str) -> Case | None:
        """A case, or None."""
        return await store.load(self.conn, case_id)

    async def save(self, before: Case, after: Case) -> None:
        """Store a changed case."""
        await store.save(self.conn, before, after)

    async def history(
        self, case_id: str, kind: str, outcome: str | None, rules: list[dict[str, str]], detail: dict[str, Any]
    ) -> None:
        """Append to a case's audit trail."""
        await store.add_history(self.conn, case_id, self.now, kind, outcome, rules, detail)

    async def send(self, messages: list[Message], *, case_id: str | None = None, held: bool = False) -> None:
        """Queue messages in the outbox (held ones wait for the platform's confirmation of the case's suspension).

        The complainant's result stops the SLA clock when it is queued to go (a held one: when it is released)."""
        await outbox.add(self.conn, messages, case_id=case_id, held=held)
        if not held:
            for case in {m.case_id for m in messages if getattr(m, "kind", "") == "complainant-result" and m.case_id}:
                await store.mark_answered(self.conn, case, self.now)

    async def commit_plan(self, case: Case, plan: Plan) -> Case:
        """Queue a plan's commands, keep its statement of reasons, and note when a first measure took effect."""
        await self.send(plan.messages, case_id=case.id)
        await self.send(plan.held, case_id=case.id, held=True)
        if plan.statement is not None:
            customer = next(
                (getattr(m, "customer_id", None) for m in plan.messages if m.type == "service.suspend.v1"), None
            )
            await self.conn.execute(
                statements.insert().values(
                    case_id=case.id,
                    customer_id=customer,
                    issued_at=self.now,
                    measure=plan.statement["restriction"]["scope"],
                    ground=plan.statement["grounds"]["type"],
                    automated=plan.statement["automation"]["decision"],
                    data=plan.statement,
                )
            )
        if self.acts(plan) and case.effect_at is None:
            after = case.change(self.now, effect_at=self.now)
            await self.save(case, after)
            return after
        return case

    @staticmethod
    def acts(plan: Plan) -> bool:
        """A plan that restricts or warns: a measure takes effect (DSA: the case's effect_at)."""
        return any(
            m.type == "service.suspend.v1" or getattr(m, "kind", "") in ("customer-warning", "customer-notice")
            for m in plan.messages
        )

    async def add_deadlines(self, case_id: str, warned_at: datetime, deadline: datetime) -> None:
        """The warning's expiry, and reminders to the customer half-way and shortly before it."""
        rows = [{"case_id": case_id, "kind": "warning-expiry", "due_at": deadline, "state": "pending"}]
        half = warned_at + (deadline - warned_at) / 2
        late = deadline - timedelta(hours=self.settings.dsa.reminder_before_hours)
        for kind, due in (("reminder-half", half), ("reminder-late", late)):
            if warned_at < due < deadline and (kind == "reminder-half" or late > half):
                rows.append({"case_id": case_id, "kind": kind, "due_at": due, "state": "pending"})
        await self.conn.execute(deadlines.insert(), rows)
