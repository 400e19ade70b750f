"""The Art. 15 DSA transparency figures of a hosting service for one calendar year (plus internal figures)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from policy.model import CONFIRMED_STATUSES
from policy.sla import answered_within_sla_share
from policy.tables import cases, customer_answers, statements

NOTICE_ORIGINS = ("notice", "automated-notice")
Row = Mapping[str, Any]


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 3600


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(median(present), 2) if present else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(
    year: int,
    case_rows: Sequence[Row],
    statement_rows: Sequence[Row],
    answer_rows: Sequence[Row],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Compute the report from rows (pure): cases received in `year`, their statements and customer answers.

    `now` settles the SLA share: a case still within its answer time is not counted (without it, the period is
    closed and an unanswered case counts as late)."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    in_year = [c for c in case_rows if start <= (c["received_at"] or c["opened_at"]) < end]
    ids = {c["id"] for c in in_year}
    grounds = {s["case_id"]: s["ground"] for s in statement_rows if s["case_id"] in ids}
    measures = {s["case_id"]: s["measure"] for s in statement_rows if s["case_id"] in ids}

    def received(c: Row) -> datetime:
        when: datetime = c["received_at"] or c["opened_at"]
        return when

    orders = [c for c in in_year if c["origin"] == "authority-order"]
    notices = [c for c in in_year if (c["origin"] or "notice") in NOTICE_ORIGINS]
    own = [c for c in in_year if c["origin"] == "own-initiative"]
    acted = [c for c in notices if c["effect_at"] is not None]
    restricted = [c for c in notices if c["id"] in grounds]
    contests = [a for a in answer_rows if a["kind"] == "contest" and a["case_id"] in ids]
    decided = [a for a in contests if a["decision"]]
    confirmed = Counter(c["customer_id"] for c in in_year if c["status"] in CONFIRMED_STATUSES and c["customer_id"])
    return {
        "year": year,
        "orders": {
            "total": len(orders),
            "by_category": dict(Counter(c["category"] for c in orders)),
            "median_hours_to_effect": _median(_hours(received(c), c["effect_at"]) for c in orders),
        },
        "notices": {
            "total": len(notices),
            "by_category": dict(Counter(c["category"] for c in notices)),
            "from_automated_reporters": sum(1 for c in notices if c["origin"] == "automated-notice"),
            "outcomes": dict(Counter(c["status"] for c in notices)),
            "actions": len(acted),
            "restrictions_on_legal_ground": sum(1 for c in restricted if grounds[c["id"]] in ("legal", "both")),
            "restrictions_on_contractual_ground": sum(1 for c in restricted if grounds[c["id"]] == "contractual"),
            "handled_by_automated_means_share": _share(
                sum(1 for c in notices if c["automation"] == "fully"), len(notices)
            ),
            "median_hours_to_action": _median(_hours(received(c), c["effect_at"]) for c in acted),
        },
        "own_initiative": {
            "total": len(own),
            "by_category": dict(Counter(c["category"] for c in own)),
            "measures": dict(Counter(measures[c["id"]] for c in own if c["id"] in measures)),
        },
        "contests": {
            "total": len(contests),
            "decided": len(decided),
            "upheld": sum(1 for a in decided if a["decision"] == "upheld"),
            "reversed": sum(1 for a in decided if a["decision"] == "reversed"),
            "median_hours_to_decide": _median(_hours(a["at"], a["decided_at"]) for a in decided),
        },
        "internal": {
            "answered_within_sla_share": answered_within_sla_share(in_year, now),  # the rules of sla_state
            "repeat_offenders": sum(1 for n in confirmed.values() if n >= 2),
            "art18_referrals": sum(1 for c in in_year if "art18-suspicion" in (c["flags"] or [])),
        },
    }


async def report(conn: AsyncConnection, year: int) -> dict[str, Any]:
    """Read the year's rows and compute the figures."""
    case_rows = [dict(r) for r in (await conn.execute(select(cases))).mappings()]
    statement_rows = [dict(r) for r in (await conn.execute(select(statements))).mappings()]
    answer_rows = [dict(r) for r in (await conn.execute(select(customer_answers))).mappings()]
    return figures(year, case_rows, statement_rows, answer_rows, datetime.now(UTC))
