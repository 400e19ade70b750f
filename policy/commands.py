"""Turn a decision into the command messages it implies (suspend, notify), with redacted mail context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.messages import Message, SendNotification, SuspendService
from core.report import AbuseReport
from core.settings import Settings
from policy.model import Decision


def redact(text: str, report: AbuseReport) -> str:
    """Remove the complainant's identity (address, name, FBL recipients) from evidence shown to a customer."""
    secrets = {s for s in (report.reporter, report.reporter_name, report.envelope.mail_from) if s}
    secrets |= {r for r in report.envelope.rcpt_tos if r}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def case_context(
    case: dict[str, Any], report: AbuseReport | None, settings: Settings, *, customer: dict[str, Any] | None
) -> dict[str, Any]:
    """Values every template may use (no complainant identity in the customer's copy)."""
    deadline: datetime | None = case.get("deadline_at")
    return {
        "case_id": case["id"],
        "category": case["category"],
        "organisation": settings.notify.organisation,
        "support_url": settings.notify.support_url,
        "customer_name": (customer or {}).get("name", ""),
        "customer_timezone": (customer or {}).get("timezone") or settings.policy.sla.timezone,
        "service_ids": list(case.get("service_ids") or []),
        "indicators": list(case.get("indicators") or []),
        "deadline_at": deadline.isoformat() if deadline else None,
        "warning_hours": settings.policy.warning_hours,
        "evidence": redact(report.evidence, report)[:2000] if report else "",
        "subject": report.subject[:200] if report else "",
    }


def decision_commands(
    decision: Decision,
    case: dict[str, Any],
    report: AbuseReport | None,
    customer: dict[str, Any] | None,
    settings: Settings,
    *,
    reasons: list[str],
) -> list[Message]:
    """Messages to publish for a decision: a suspension and the mails to customer and complainant."""
    out: list[Message] = []
    ctx = case_context(case, report, settings, customer=customer) | {"reasons": reasons}
    default_lang = settings.notify.default_language
    report_id = report.report_id if report else None
    if decision.suspend_services and customer:
        out.append(
            SuspendService(
                case_id=case["id"],
                report_id=report_id,
                customer_id=customer["id"],
                service_ids=list(decision.suspend_services),
                reason="; ".join(reasons),
            )
        )
    if decision.notify_customer and customer and customer.get("email"):
        out.append(
            SendNotification(
                case_id=case["id"],
                report_id=report_id,
                kind=decision.notify_customer,
                to=customer["email"],
                language=customer.get("language") or default_lang,
                context=ctx,
            )
        )
    if decision.notify_complainant and report and report.reporter and not report.automated:
        out.append(
            SendNotification(
                case_id=case["id"],
                report_id=report_id,
                kind=decision.notify_complainant,
                to=report.reporter,
                language=report.language or default_lang,
                in_reply_to=report.message_id,
                context=ctx | {"outcome": decision.outcome.value, "evidence": "", "status": decision.status},
            )
        )
    return out
