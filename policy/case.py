"""The case as a domain object: its statuses, the one transition table, and the Case value the store loads and saves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.errors import AbuseDeskError

RowLike = Any  # a database row mapping (SQLAlchemy's RowMapping)


class Status(StrEnum):
    """A case's status (design §5; `suspending` is the time between the decision and the platform's confirmation)."""

    RECEIVED = "received"
    MONITORING = "monitoring"
    NEEDS_REVIEW = "needs-review"
    REJECTED = "rejected"
    WARNED = "warned"
    RESOLVED = "resolved"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    LIFTED = "lifted"


S = Status
UNDECIDED = frozenset({S.RECEIVED, S.MONITORING, S.NEEDS_REVIEW})
OPEN = frozenset({*UNDECIDED, S.WARNED})
# A new report about the same customer and category joins these (a burst about a suspended account is more evidence
# for its case, not a new case and a new suspension notice each time).
JOINABLE = frozenset({*OPEN, S.SUSPENDING, S.SUSPENDED})
CONFIRMED = frozenset({S.WARNED, S.RESOLVED, S.SUSPENDING, S.SUSPENDED, S.LIFTED})
# Cases whose restriction is (being) in force: a lift of another case must leave their suspension rows alone.
RESTRICTING = frozenset({S.SUSPENDING, S.SUSPENDED})

# The one transition table: name -> (statuses it applies to, status it leads to). Every status change goes through it.
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    # a report decided by the rules
    "decide-monitor": (frozenset({S.RECEIVED, S.MONITORING}), S.MONITORING),
    "decide-review": (UNDECIDED, S.NEEDS_REVIEW),
    "decide-reject": (frozenset({S.RECEIVED}), S.REJECTED),
    "decide-warn": (UNDECIDED, S.WARNED),
    "decide-suspend": (JOINABLE, S.SUSPENDING),  # an authority order also applies to a suspended case
    # what the platform confirmed
    "platform-suspended": (frozenset({S.SUSPENDING, S.SUSPENDED}), S.SUSPENDED),
    # the warning's deadline
    "deadline-suspend": (frozenset({S.WARNED, S.RESOLVED}), S.SUSPENDING),
    "deadline-hold": (frozenset({S.WARNED, S.RESOLVED}), S.NEEDS_REVIEW),
    "deadline-gone": (frozenset({S.WARNED}), S.RESOLVED),
    # a person on the abuse desk
    "ops-resolve": (OPEN, S.RESOLVED),
    "ops-confirm-warn": (UNDECIDED, S.WARNED),
    "ops-confirm-suspend": (UNDECIDED, S.SUSPENDING),
    "ops-suspend-now": (OPEN, S.SUSPENDING),
    "ops-reject": (OPEN, S.REJECTED),
    "ops-lift": (RESTRICTING, S.LIFTED),
    # the customer, through the statement link
    "customer-fixed": (frozenset({S.WARNED}), S.RESOLVED),
    "customer-contest": (frozenset({S.WARNED}), S.NEEDS_REVIEW),
}


class IllegalTransition(AbuseDeskError):
    """A status change the transition table does not allow; the message names the transition and the case."""

    def __init__(self, name: str, case_id: str, status: str) -> None:
        allowed = TRANSITIONS.get(name)
        expected = ", ".join(sorted(allowed[0])) if allowed else "no status (unknown transition)"
        super().__init__(f"{name}: case {case_id} is {status} (allowed from: {expected})")
        self.name = name
        self.status = status


def may(name: str, status: str) -> bool:
    """True when the transition applies to a case in this status."""
    return name in TRANSITIONS and status in TRANSITIONS[name][0]


@dataclass(frozen=True)
class Case:
    """One case: a customer and a category, the reports and incidents about it, and where it stands."""

    id: str
    status: Status
    category: str
    customer_id: str | None
    service_ids: tuple[str, ...]
    opened_at: datetime
    updated_at: datetime
    sla_due_at: datetime | None = None
    answered_at: datetime | None = None
    deadline_at: datetime | None = None
    warned_at: datetime | None = None
    report_count: int = 1
    incident_count: int = 0
    rules: tuple[str, ...] = ()
    reporter: str | None = None
    reporter_kind: str | None = None
    language: str | None = None
    complaint_message_id: str | None = None
    needs_attention: bool = False
    confirmation: str | None = None
    severity: str | None = None
    flags: tuple[str, ...] = ()
    origin: str | None = None
    automation: str | None = None
    received_at: datetime | None = None
    effect_at: datetime | None = None
    order_due_at: datetime | None = None
    extension_used: bool = False
    # Not stored in `cases`: what the decision matched, for the mails of this transaction.
    indicators: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | RowLike) -> Case:
        """A case from its `cases` row."""
        names = {f.name for f in fields(cls)} - {"indicators"}
        data = {k: row[k] for k in names if k in row}
        data["status"] = Status(row["status"])
        for key in ("service_ids", "rules", "flags"):
            data[key] = tuple(row.get(key) or ())
        data["incident_count"] = int(row.get("incident_count") or 0)
        return cls(**data)

    def values(self) -> dict[str, Any]:
        """The `cases` row of this case."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "indicators"}
        out["status"] = self.status.value
        for key in ("service_ids", "rules", "flags"):
            out[key] = list(out[key])
        return out

    def as_dict(self) -> dict[str, Any]:
        """A plain mapping for templates and statements (with the indicators matched in this transaction)."""
        return self.values() | {"indicators": list(self.indicators)}

    def transition(self, name: str, now: datetime, **changes: Any) -> Case:
        """The case after the named transition (IllegalTransition if the table does not allow it here)."""
        allowed = TRANSITIONS.get(name)
        if allowed is None or self.status not in allowed[0]:
            raise IllegalTransition(name, self.id, self.status.value)
        return replace(self, status=allowed[1], updated_at=now, **changes)

    def change(self, now: datetime, **changes: Any) -> Case:
        """The case with other fields changed (never the status: that is what `transition` is for)."""
        if "status" in changes:
            raise ValueError("a status changes only through Case.transition")
        return replace(self, updated_at=now, **changes)

    def with_indicators(self, indicators: tuple[str, ...] | list[str]) -> Case:
        """The case carrying what the decision matched (shown in this transaction's mails, not stored)."""
        return replace(self, indicators=tuple(indicators))

    def flagged(self, *flags: str) -> tuple[str, ...]:
        """The case's flags with these added (kept in order, no duplicates)."""
        return tuple(dict.fromkeys([*self.flags, *flags]))
