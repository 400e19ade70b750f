"""Turn a decision into the command messages it implies (suspend, notify), with redacted mail context."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from core.messages import SendNotification, SuspendService
from core.redact import identity_of, keep_of, redact, redact_json, redact_report
from core.report import AbuseReport
from core.settings import Settings
from policy import statements
from policy.incidents import EXCERPT_ROWS
from policy.links import make_token
from policy.model import Decision
from policy.recipients import clean_subject, receipt_address
from policy.unit import Plan


def customer_keep(case: dict[str, Any], customer: dict[str, Any] | None) -> list[str]:
    """What redaction must leave intact in a customer's copy: their own address and what the case is about."""
    return [*(c for c in ((customer or {}).get("email"),) if c), *(case.get("indicators") or ())]


def for_customer(text: str, report: AbuseReport, keep: list[str]) -> str:
    """Text that leaves for the accused: the complainant's identity removed (core/redact.py, one tested function)."""
    return redact_report(text, report, keep=keep)


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
    evidence: bool = True,
) -> dict[str, Any]:
    """Values every template may use (no complainant identity in the customer's copy; `evidence=False` for a copy
    that shows none, which spares the redaction)."""
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
        "evidence": (
            for_customer(report.evidence, report, customer_keep(case, customer))[:2000] if report and evidence else ""
        ),
        "subject": clean_subject(report.subject) if report else "",
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
    """The customer's own incidents: a readable excerpt, and all of them as CSV when there are many (a URL can
    carry the complainant's address: what leaves is redacted)."""
    if report is None or not report.incidents:
        return {"incident_rows": [], "incident_total": 0, "incidents_csv": None, "findings": []}
    identity, kept = identity_of(report), keep_of(report)
    rows = [
        {
            "ip": i.ip or "",
            "port": "" if i.port is None else str(i.port),
            "protocol": i.protocol or "",
            "tag": i.tag or "",
            "observed_at": i.observed_at.isoformat() if i.observed_at else "",
            "url": redact(i.url, identity, keep=kept) if i.url else "",
            "domain": i.domain or "",
        }
        for i in report.incidents
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


# What the complainant's copy never carries: the customer's name, evidence, statement, link and attachments.
COMPLAINANT_VIEW: dict[str, Any] = {
    "evidence": "",
    "statement": None,
    "statement_url": None,
    "customer_name": "",
    "incidents_csv": None,
}


def complainant_address(report: AbuseReport | None, settings: Settings) -> str | None:
    """THE one rule for mailing a complainant (RFC 3834, backscatter): the address, or None (policy/recipients.py)."""
    return receipt_address(report, own_addresses=settings.abuse_addresses)


def to_complainant(
    case: dict[str, Any], report: AbuseReport | None, settings: Settings, kind: str, extra: dict[str, Any]
) -> SendNotification | None:
    """A mail to the complainant (receipt, result), or None when they may not be mailed."""
    to = complainant_address(report, settings)
    if to is None or report is None:
        return None
    return SendNotification(
        case_id=case["id"],
        report_id=report.report_id,
        kind=kind,
        to=to,
        language=report.language or settings.notify.default_language,
        in_reply_to=report.message_id,
        context=case_context(case, report, settings, customer=None, evidence=False) | extra | COMPLAINANT_VIEW,
    )


def to_customer(
    case: dict[str, Any],
    report: AbuseReport | None,
    customer: dict[str, Any] | None,
    settings: Settings,
    kind: str,
    extra: dict[str, Any],
    *,
    now: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> SendNotification | None:
    """A mail to the customer (their own incidents only, the complainant withheld), or None without an address.

    `context`: the customer's case_context when the caller built it already (it is built once per decision)."""
    if not customer or not customer.get("email"):
        return None
    base = context if context is not None else case_context(case, report, settings, customer=customer, now=now)
    return SendNotification(
        case_id=case["id"],
        report_id=report.report_id if report else None,
        kind=kind,
        to=customer["email"],
        language=customer.get("language") or settings.notify.default_language,
        context=base | {"subject": ""} | extra,
    )


def to_ops(
    case: dict[str, Any], report: AbuseReport | None, settings: Settings, kind: str, extra: dict[str, Any]
) -> SendNotification:
    """A mail to the abuse desk itself (in English, like every ops mail)."""
    return SendNotification(
        case_id=case["id"],
        report_id=report.report_id if report else None,
        kind=kind,
        to=settings.notify.ops_address,
        language="en",
        context=case_context(case, report, settings, customer=None) | extra,
    )


def acknowledgement(case: dict[str, Any], report: AbuseReport, settings: Settings) -> SendNotification | None:
    """The complainant's acknowledgement with the case reference (None when they may not be mailed)."""
    return to_complainant(case, report, settings, "complainant-ack", {})


def ctx_extra(ctx: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """What a decision adds to the customer's mail: the reasons, and the statement of reasons when one was built."""
    return {"reasons": reasons, "statement": ctx.get("statement")}


def decision_commands(
    decision: Decision,
    case: dict[str, Any],
    report: AbuseReport | None,
    customer: dict[str, Any] | None,
    settings: Settings,
    *,
    reasons: list[str],
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Plan:
    """Messages to publish for a decision: a suspension with its statement of reasons, and the mails."""
    plan = Plan()
    out = plan.messages
    # A suspension's mails (the customer's statement of reasons, the complainant's "suspended") wait for the platform.
    mails = plan.held if decision.suspend_services and customer else plan.messages
    ctx = case_context(case, report, settings, customer=customer, now=now) | {"reasons": reasons}
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
                reason=for_customer("; ".join(reasons), report, customer_keep(case, customer)) if report else "",
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
            if report is not None:
                keep = customer_keep(case, customer)
                plan.statement = redact_json(plan.statement, identity_of(report), keep=keep)
            ctx["statement"] = plan.statement
    customer_mail = (
        to_customer(
            case,
            report,
            customer,
            settings,
            decision.notify_customer,
            ctx_extra(ctx, reasons) | (extra or {}),
            now=now,
            context=ctx,
        )
        if decision.notify_customer
        else None
    )
    answer = {"outcome": decision.outcome.value, "status": decision.status, "reasons": reasons}
    result = (
        to_complainant(case, report, settings, decision.notify_complainant, answer)
        if decision.notify_complainant
        else None
    )
    mails += [m for m in (customer_mail, result) if m is not None]
    if report is not None and (report.notice.threat_to_life or report.notice.csam or report.notice.authority_order):
        out.append(to_ops(case, report, settings, "ops-art18", {"reasons": reasons}))
    return plan
