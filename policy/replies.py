"""Use case "a reply to one of our mails arrived": it joins its case, when it comes from someone who may add to it."""

from __future__ import annotations

from core.report import AbuseReport
from policy import cases as store
from policy import facts as facts_mod
from policy.case import Case
from policy.unit import Unit


def may_join(report: AbuseReport, case: Case) -> bool:
    """A reply joins a case only when it comes from the case's reporter (envelope and header agree) or is authenticated
    (an aligned DKIM signature of the reporter's domain); a stranger quoting a case reference is a fresh report."""
    reporter = (case.reporter or "").lower()
    sender = (report.reporter or "").lower()
    if not reporter or sender != reporter:
        return False
    envelope = report.envelope.mail_from.lower()
    if envelope == sender:
        return True
    domain = sender.rsplit("@", 1)[-1]
    return bool(report.auth.dkim_aligned and report.auth.from_domain and report.auth.from_domain.lower() == domain)


async def attach_reply(unit: Unit, report: AbuseReport) -> str | None:
    """Attach a reply to the case its subject names (once); None when the mail is not a reply that may join."""
    case = await store.thread_of(unit.conn, report)
    if case is None or not may_join(report, case):
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
