"""Ops alerts on SQLite and PostgreSQL: each cause found from rows, sent once per case and cause, counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from core import metrics
from core.db import create_engine
from core.settings import Settings
from policy import alerts
from policy.tables import case_history, cases, customer_answers, ops_alerts
from policy.tables import outbox as policy_outbox

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Paris
H = timedelta(hours=1)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (cases, case_history, customer_answers, ops_alerts, policy_outbox):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


def case(cid: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": cid,
        "status": "warned",
        "category": "phishing",
        "customer_id": "C1",
        "service_ids": ["S1"],
        "opened_at": NOW - 30 * H,
        "updated_at": NOW - H,
        "received_at": NOW - 30 * H,
        "sla_due_at": NOW + 40 * H,
        "answered_at": NOW - 29 * H,
        "deadline_at": None,
        "report_count": 1,
        "rules": [],
        "reporter": "victim@example.org",
        "reporter_kind": "person",
        "needs_attention": False,
        "extension_used": False,
        "flags": [],
    }
    return base | kw


def history(cid: str, kind: str, outcome: str, rules: list[dict[str, str]], detail: dict[str, Any]) -> dict[str, Any]:
    return {"case_id": cid, "at": NOW - H, "kind": kind, "outcome": outcome, "rules": rules, "detail": detail}


CASES = [
    case("HELD", status="needs-review", deadline_at=NOW - H),
    case("CONTEST", status="needs-review", needs_attention=True),
    case("CONTEST-DONE", status="warned"),
    case("SLA-SOON", answered_at=None, sla_due_at=NOW + 90 * timedelta(minutes=1)),
    case("SLA-LATER", answered_at=None, sla_due_at=NOW + 5 * H),
    case("SLA-ANSWERED", answered_at=NOW - H, sla_due_at=NOW + H),  # answered: nothing to alert
    case("SLA-FBL", answered_at=None, reporter_kind="feedback-loop", sla_due_at=NOW + H),
    case("FAILED", status="warned", needs_attention=True),
    case("URGENT", status="suspended", flags=["art18-suspicion", "preserve-evidence"]),
    case("CALM", status="suspended", flags=["preserve-evidence"]),
    case("REVIEW-ONLY", status="needs-review"),  # held at decision time, not at a deadline
]
HISTORY = [
    history(
        "HELD",
        "deadline",
        "review",
        [
            {"name": "warning-expired", "reason": "still not resolved"},
            {"name": "deadline-needs-confirmation", "reason": "the facts were never confirmed"},
        ],
        {"deadline_id": 1},
    ),
    history("REVIEW-ONLY", "decision", "review", [{"name": "suspension-needs-confirmation", "reason": "x"}], {}),
    history(
        "FAILED",
        "action",
        "action.failed.v1",
        [],
        {"action": "service.suspend.v1", "reason": "ConnectError", "command_id": "cmd-1"},
    ),
]
ANSWERS = [
    {
        "case_id": "CONTEST",
        "at": NOW - 20 * H,
        "kind": "contest",
        "text": "",
        "sla_due_at": NOW - H,
        "decided_at": None,
        "decision": None,
    },
    {
        "case_id": "CONTEST-DONE",
        "at": NOW - 20 * H,
        "kind": "contest",
        "text": "",
        "sla_due_at": NOW - H,
        "decided_at": NOW - 2 * H,
        "decision": "upheld",
    },
]


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(cases.insert(), CASES)
        await conn.execute(case_history.insert(), HISTORY)
        await conn.execute(customer_answers.insert(), ANSWERS)


def counted(cause: str) -> float:
    return metrics.REGISTRY.get_sample_value("abuse_desk_ops_alerts_total", {"cause": cause}) or 0.0


async def test_each_cause_is_found_and_sent_once(engine: AsyncEngine) -> None:
    await seed(engine)
    settings = Settings()
    before = {cause: counted(cause) for cause in alerts.CAUSES}
    async with engine.begin() as conn:
        first = await alerts.queue_due_alerts(conn, settings, NOW)
    found = {(a.case_id, a.context["cause"]) for a in first}
    assert found == {
        ("HELD", "deadline-held"),
        ("CONTEST", "contest-overdue"),
        ("SLA-SOON", "sla-due"),
        ("FAILED", "action-failed"),
        ("URGENT", "urgent"),
    }
    by_cause = {a.context["cause"]: a for a in first}
    assert by_cause["deadline-held"].kind == "ops-deadline-held"
    assert "the facts were never confirmed" in by_cause["deadline-held"].context["reasons"]
    assert by_cause["action-failed"].context["reason"] == "ConnectError"
    assert by_cause["contest-overdue"].context["review_due_at"] == (NOW - H).isoformat()
    assert all(a.to == settings.notify.ops_address for a in first)
    assert {cause: counted(cause) - before[cause] for cause in alerts.CAUSES} == dict.fromkeys(alerts.CAUSES, 1.0)
    async with engine.begin() as conn:
        queued = await conn.scalar(select(func.count()).select_from(policy_outbox))
        assert queued == 5
        # The next tick, and one a day later: nothing again (once per case and cause, ever).
        assert await alerts.queue_due_alerts(conn, settings, NOW + timedelta(minutes=1)) == []
        later = await alerts.due_alerts(conn, settings, NOW + 3 * H)  # SLA-LATER is now 2 working hours away
        assert [(a.case_id, a.context["cause"]) for a in later] == [("SLA-LATER", "sla-due")]


async def test_the_sla_alert_counts_working_hours(engine: AsyncEngine) -> None:
    """Friday 17:30 Paris: an answer due Monday 09:00 is 1.5 working hours away (alert), Monday 11:00 is not."""
    friday = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            cases.insert(),
            [
                case("MONDAY-9", answered_at=None, sla_due_at=datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
                case("MONDAY-11", answered_at=None, sla_due_at=datetime(2026, 12, 7, 10, 0, tzinfo=UTC)),
            ],
        )
        due = await alerts.due_alerts(conn, Settings(), friday)
    assert [(a.case_id, a.kind) for a in due] == [("MONDAY-9", "ops-sla-due")]


async def test_alert_once_for_an_immediate_alert(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(cases.insert(), [case("NOW")])
        settings = Settings()
        context = {"action": "service.suspend.v1", "reason": "retries exhausted", "command_id": "c9"}
        first = await alerts.alert_once(conn, "NOW", "action-failed", settings, NOW, context=context)
        assert first is not None and first.kind == "ops-action-failed"
        assert first.context["reason"] == "retries exhausted"
        assert first.message_id == alerts.alert_id("NOW", "action-failed")
        assert await alerts.alert_once(conn, "NOW", "action-failed", settings, NOW + H, context=context) is None
        assert await alerts.alert_once(conn, "NOW", "urgent", settings, NOW) is not None  # another cause
        rows = (await conn.execute(select(ops_alerts.c.cause).where(ops_alerts.c.case_id == "NOW"))).scalars().all()
    assert sorted(rows) == ["action-failed", "urgent"]
    with pytest.raises(ValueError):
        async with engine.begin() as conn:
            await alerts.alert_once(conn, "NOW", "no-such-cause", settings, NOW)


async def test_an_alert_sent_at_once_elsewhere_is_not_sent_again(engine: AsyncEngine) -> None:
    """The decision's own ops-art18 mail (queued with the case) counts: the tick does not send a second one."""
    from core.messages import SendNotification
    from policy import outbox

    async with engine.begin() as conn:
        await conn.execute(cases.insert(), [case("ART18", flags=["art18-suspicion"])])
        mail = SendNotification(case_id="ART18", kind="ops-art18", to="ops@example.org", context={})
        await outbox.add(conn, [mail])
        assert await alerts.due_alerts(conn, Settings(), NOW) == []
        noted = await conn.scalar(select(ops_alerts.c.cause).where(ops_alerts.c.case_id == "ART18"))
    assert noted == "urgent"
