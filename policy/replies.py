"""Use case "a reply to one of our mails arrived": it joins its case, when it comes from someone who may add to it."""

from __future__ import annotations

from core.report import AbuseReport
from policy import cases as store
from policy import facts as facts_mod
from policy.trust import may_join_case
from policy.unit import Unit


async def attach_reply(unit: Unit, report: AbuseReport) -> str | None:
    """Attach a reply to the case its subject names (once); None when the mail is not a reply that may join."""
    case = await store.thread_of(unit.conn, report)
    if case is None or not may_join_case(report, case.reporter):
        return None
    if case.id in (await store.attached_cases(unit.conn, report.report_id)).values():
        return case.id  # redelivered
    kind = facts_mod.effective_kind(report, unit.settings.trust)
    await store.attach(unit.conn, case.id, report, report.received_at or unit.now, kind)
    await unit.save(case, case.change(unit.now, report_count=case.report_count + 1, needs_attention=True))
    await unit.history(
        case.id,
        "reply",
        "threaded",
        [{"name": "reply-to-case", "reason": "a reply from the reporter joined the case"}],
        {"report_id": report.report_id, "subject": report.subject[:200]},
    )
    return case.id
