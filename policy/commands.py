"""Turn a decision into the command messages it implies (suspend, notify), with redacted mail context."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

from core.messages import SendNotification, SuspendService
from core.report import AbuseReport
from core.settings import Settings
from policy import statements
from policy.incidents import EXCERPT_ROWS
from policy.links import make_token
from policy.model import Decision
from policy.unit import Plan

# Header fields (of the reported mail or of an ARF/DSN part) that name whoever received it: the complainant.
_RECIPIENT_FIELDS = re.compile(
    r"(to|cc|bcc|delivered-to|x-original-to|original-rcpt-to|removal-recipient|envelope-to|x-envelope-to"
    r"|x-rcpt-to|x-apparently-to|x-forwarded-to|final-recipient|original-recipient|x-failed-recipients)\s*:",
    re.I,
)
_ADDRESS = re.compile(r"[\w.+'=-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")


def redact(text: str, report: AbuseReport) -> str:
    """Remove the complainant's identity (address, name, FBL recipients) from evidence shown to a customer.

    Removed wherever they appear, in any case: the reporter's address and name (and each word of the name),
    the envelope sender and recipients of the abuse@ mail, and every address in the recipient fields of the
    quoted mail (To, Cc, Delivered-To, ARF Original-Rcpt-To and Removal-Recipient, DSN Final-Recipient...).
    """
    secrets = {s for s in (report.reporter, report.reporter_name, report.envelope.mail_from) if s}
    secrets |= {r for r in report.envelope.rcpt_tos if r}
    lines = text.splitlines(keepends=True)
    in_field = False
    for line in lines:
        if not line[:1].isspace():
            in_field = bool(_RECIPIENT_FIELDS.match(line))
        if in_field:
            secrets |= set(_ADDRESS.findall(line))
    for secret in sorted(secrets, key=len, reverse=True):
        text = re.sub(re.escape(secret), "[redacted]", text, flags=re.I)
    for word in sorted(set((report.reporter_name or "").split()), key=len, reverse=True):
        if len(word) >= 3 and word.isalpha():
            text = re.sub(rf"\b{re.escape(word)}\b", "[redacted]", text, flags=re.I)
    return text


def statement_url(case: dict[str, Any], settings: Settings, now: datetime | None) -> str | None:
    """The customer's signed, expiring link to answer about the case (no login)."""
    if not case.get("customer_id") or now is None:
        return None
    expires = now + timedelta(days=settings.dsa.link_days)
    token = make_token(settings.dsa.link_secret, case["id"], case["customer_id"], expires)
    return f"{settings.dsa.public_url.rstrip('/')}/s/{token}"


def case_context(
    case: dict[str, Any],
    report: AbuseReport | None,
    settings: Settings,
    *,
    customer: dict[str, Any] | None,
    now: datetime | None = None,
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
        # read by actions.notify, which never mails a complainant that is not a person
        "reporter_kind": report.reporter_kind if report else "unknown",
        "automated": report.automated if report else False,
        "sla_due_at": sla.isoformat() if (sla := case.get("sla_due_at")) else None,
        "timezone": settings.policy.sla.timezone,
        "automation": case.get("automation") or "fully",
        "origin": case.get("origin") or "notice",
        "statement_url": statement_url(case, settings, now) if customer else None,
        "missing_elements": report.notice.missing if report else [],
        "confirmation": case.get("confirmation") or "none",
        "deadline_hours": deadline_hours(case, settings),
        "severity": case.get("severity"),
        "urgent": bool(URGENT_FLAGS & set(case.get("flags") or ())),
        "rejection_reason": rejection_reason(case),
        "rule_names": list(case.get("rules") or ()),
        "finding_texts": settings.policy.notice_texts,
    } | incident_context(report)


def incident_context(report: AbuseReport | None) -> dict[str, Any]:
    """The customer's own incidents: a readable excerpt, and all of them as CSV when there are many."""
    rows = [
        {
            "ip": i.ip or "",
            "port": "" if i.port is None else str(i.port),
            "protocol": i.protocol or "",
            "tag": i.tag or "",
            "observed_at": i.observed_at.isoformat() if i.observed_at else "",
            "url": i.url or "",
            "domain": i.domain or "",
        }
        for i in (report.incidents if report else [])
    ]
    out = io.StringIO()
    if len(rows) > EXCERPT_ROWS:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return {
        "incident_rows": rows[:EXCERPT_ROWS],
        "incident_total": len(rows),
        "incidents_csv": out.getvalue() or None,
        "findings": sorted({r["tag"] for r in rows if r["tag"]}),
    }


URGENT_FLAGS = frozenset({"art18-suspicion", "legal-escalation", "authority-order", "urgent"})


def deadline_hours(case: dict[str, Any], settings: Settings) -> float | None:
    """The real length of the case's warning period, in hours (never the default when the case has its own)."""
    deadline, warned = case.get("deadline_at"), case.get("warned_at")
    if deadline is not None and warned is not None:
        return round(float((deadline - warned).total_seconds()) / 3600, 1)
    handling = settings.policy.severity_handling.get(case.get("severity") or "")
    hours = (handling.warning_hours if handling else None) or settings.policy.warning_hours
    return float(hours)


def rejection_reason(case: dict[str, Any]) -> str | None:
    """Why a case was rejected, in the words the mails use: not-ours, not-enough-facts, decided-by-person."""
    rules = set(case.get("rules") or ())
    if any(r.startswith("ops-") for r in rules):
        return "decided-by-person"
    if "not-our-resource" in rules:
        return "not-ours"
    if rules & {"no-indicators", "reporter-unverified"}:
        return "not-enough-facts"
    return None


def may_auto_answer(report: AbuseReport | None) -> bool:
    """RFC 3834: answer people only, never feedback loops, robots, null senders or Auto-Submitted mail."""
    if report is None or not report.reporter or report.automated:
        return False
    if report.reporter_kind not in ("person", "unknown"):
        return False
    null_sender = report.envelope.received_at is not None and not report.envelope.mail_from
    return not null_sender and report.reporter.split("@")[0].lower() not in ("mailer-daemon", "postmaster")


def acknowledgement(
    case: dict[str, Any], report: AbuseReport, settings: Settings, *, customer: dict[str, Any] | None = None
) -> SendNotification | None:
    """The complainant's acknowledgement with the case reference (None when the reporter is not a person)."""
    if not may_auto_answer(report) or report.reporter is None:
        return None
    return SendNotification(
        case_id=case["id"],
        report_id=report.report_id,
        kind="complainant-ack",
        to=report.reporter,
        language=report.language or settings.notify.default_language,
        in_reply_to=report.message_id,
        context=case_context(case, report, settings, customer=None) | {"evidence": ""},
    )


def decision_commands(
    decision: Decision,
    case: dict[str, Any],
    report: AbuseReport | None,
    customer: dict[str, Any] | None,
    settings: Settings,
    *,
    reasons: list[str],
    now: datetime | None = None,
) -> Plan:
    """Messages to publish for a decision: a suspension with its statement of reasons, and the mails."""
    plan = Plan()
    out = plan.messages
    # A suspension's mails (the customer's statement of reasons, the complainant's "suspended") wait for the platform.
    mails = plan.held if decision.suspend_services and customer else plan.messages
    ctx = case_context(case, report, settings, customer=customer, now=now) | {"reasons": reasons}
    default_lang = settings.notify.default_language
    report_id = report.report_id if report else None
    if decision.suspend_services and customer:
        outbound = report is not None and report.format == "outbound-limit" and bool(report.emails)
        scope = "mailbox" if outbound else "account"
        out.append(
            SuspendService(
                case_id=case["id"],
                report_id=report_id,
                customer_id=customer["id"],
                service_ids=list(decision.suspend_services),
                scope=scope,
                targets=list(report.emails) if outbound and report else [],
                reason="; ".join(reasons),
            )
        )
        if now is not None:
            plan.statement = statements.build(
                case=case,
                services=list(decision.suspend_services),
                scope=scope,
                facts=reasons,
                evidence=ctx["evidence"],
                automation=ctx["automation"],
                statement_url=ctx["statement_url"],
                config=settings.dsa,
                now=now,
            )
            ctx["statement"] = plan.statement
    if decision.notify_customer and customer and customer.get("email"):
        mails.append(
            SendNotification(
                case_id=case["id"],
                report_id=report_id,
                kind=decision.notify_customer,
                to=customer["email"],
                language=customer.get("language") or default_lang,
                context=ctx,
            )
        )
    if decision.notify_complainant and report and report.reporter and may_auto_answer(report):
        mails.append(
            SendNotification(
                case_id=case["id"],
                report_id=report_id,
                kind=decision.notify_complainant,
                to=report.reporter,
                language=report.language or default_lang,
                in_reply_to=report.message_id,
                context=ctx
                | {"outcome": decision.outcome.value, "status": decision.status}
                | {"evidence": "", "statement": None, "statement_url": None, "customer_name": ""}
                | {"incidents_csv": None},
            )
        )
    if report is not None and (report.notice.threat_to_life or report.notice.csam or report.notice.authority_order):
        out.append(
            SendNotification(
                case_id=case["id"],
                report_id=report_id,
                kind="ops-art18",
                to=settings.notify.ops_address,
                language="en",
                context=ctx | {"statement": None},
            )
        )
    return plan
