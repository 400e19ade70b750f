"""`abuse-desk report transparency` over a seeded year of cases matches figures computed by hand."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from abuse_desk.database import upgrade
from core.db import create_engine
from policy.tables import cases, customer_answers, statements

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def case(cid: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": cid,
        "status": "warned",
        "category": "spam",
        "customer_id": "C1",
        "service_ids": ["S1"],
        "opened_at": T0,
        "updated_at": T0,
        "received_at": T0,
        "sla_due_at": T0 + 24 * H,
        "answered_at": None,
        "deadline_at": None,
        "report_count": 1,
        "rules": [],
        "reporter_kind": "person",
        "origin": "notice",
        "automation": "fully",
        "effect_at": None,
        "flags": [],
        "needs_attention": False,
        "extension_used": False,
    }
    return base | kw


# A year, by hand:
#  N1 phishing notice, warned after 1 h, answered in time
#  N2 phishing notice, suspended after 3 h, confirmed by a person (partially automated)
#  N3 spam from a feedback loop (automated notice), monitoring
#  N4 intrusion notice, rejected (not ours), answered late
#  O1 own-initiative spam, suspended at once (mailbox)
#  A1 authority order, illegal content, effect after 2 h
#  X1 a case from 2025 (outside the year)
CASES = [
    case("N1", category="phishing", effect_at=T0 + H, answered_at=T0 + H),
    case(
        "N2",
        category="phishing",
        status="suspended",
        effect_at=T0 + 3 * H,
        automation="partially",
        answered_at=T0 + 3 * H,
        customer_id="C2",
    ),
    case("N3", origin="automated-notice", status="monitoring", reporter_kind="feedback-loop", customer_id="C3"),
    case("N4", category="intrusion", status="rejected", customer_id=None, answered_at=T0 + 30 * H),
    case("O1", origin="own-initiative", status="suspended", reporter_kind="internal", effect_at=T0, customer_id="C1"),
    case(
        "A1",
        origin="authority-order",
        category="illegal-content",
        status="suspended",
        effect_at=T0 + 2 * H,
        reporter_kind="machine",
        customer_id="C4",
        flags=["authority-order", "art18-suspicion"],
    ),
    case("X1", received_at=T0 - timedelta(days=400), opened_at=T0 - timedelta(days=400)),
]
STATEMENTS = [
    {
        "case_id": "N2",
        "customer_id": "C2",
        "issued_at": T0 + 3 * H,
        "measure": "account",
        "ground": "both",
        "automated": "partially",
        "data": {},
    },
    {
        "case_id": "O1",
        "customer_id": "C1",
        "issued_at": T0,
        "measure": "mailbox",
        "ground": "contractual",
        "automated": "fully",
        "data": {},
    },
    {
        "case_id": "A1",
        "customer_id": "C4",
        "issued_at": T0 + 2 * H,
        "measure": "account",
        "ground": "legal",
        "automated": "fully",
        "data": {},
    },
]
ANSWERS = [
    {
        "case_id": "N2",
        "at": T0 + 4 * H,
        "kind": "contest",
        "text": "wrong",
        "decided_at": T0 + 10 * H,
        "decision": "reversed",
    },
    {
        "case_id": "O1",
        "at": T0 + H,
        "kind": "contest",
        "text": "it was a newsletter",
        "decided_at": T0 + 3 * H,
        "decision": "upheld",
    },
    {"case_id": "N1", "at": T0 + 2 * H, "kind": "fixed", "text": "done", "decided_at": None, "decision": None},
]
EXPECTED = {
    "year": 2026,
    "orders": {"total": 1, "by_category": {"illegal-content": 1}, "median_hours_to_effect": 2.0},
    "notices": {
        "total": 4,
        "by_category": {"phishing": 2, "spam": 1, "intrusion": 1},
        "from_automated_reporters": 1,
        "outcomes": {"warned": 1, "suspended": 1, "monitoring": 1, "rejected": 1},
        "actions": 2,
        "restrictions_on_legal_ground": 1,
        "restrictions_on_contractual_ground": 0,
        "handled_by_automated_means_share": 0.75,
        "median_hours_to_action": 2.0,
    },
    "own_initiative": {"total": 1, "by_category": {"spam": 1}, "measures": {"mailbox": 1}},
    "contests": {"total": 2, "decided": 2, "upheld": 1, "reversed": 1, "median_hours_to_decide": 4.0},
    "internal": {"answered_within_sla_share": round(2 / 3, 4), "repeat_offenders": 1, "art18_referrals": 1},
}


async def test_transparency_report_matches_the_hand_computed_figures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    engine = create_engine(url)
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(cases.insert(), CASES)
        await conn.execute(statements.insert(), STATEMENTS)
        await conn.execute(customer_answers.insert(), ANSWERS)
    await engine.dispose()
    script = str(Path(sys.executable).with_name("abuse-desk"))
    result = await asyncio.to_thread(
        subprocess.run,
        [script, "report", "transparency", "--year", "2026", "--json"],
        env={"ABUSE_DESK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED
