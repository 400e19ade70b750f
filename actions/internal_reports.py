"""The internal reports the outgoing-mail guard raises: a recipient limit crossed, too many unknown recipients."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from core.report import AbuseReport

ATTRS_IN_EVIDENCE = ("sasl_username", "sender", "client_address", "client_name", "helo_name", "queue_id")


def internal_report(
    mailbox: str, *, key: str, source_label: str, subject: str, evidence: str, now: datetime, window_minutes: int
) -> AbuseReport:
    """One `outbound-limit` report (category spam, reporter internal): the policy decides as for a complaint.

    The id is the key and the window's start: a redelivered crossing of the same window is the same report.
    """
    window_start = now.replace(second=0, microsecond=0) - timedelta(minutes=window_minutes)
    label = "outbound-limit" if source_label == "recipients-per-hour" else source_label
    report_id = hashlib.sha256(f"{label}\n{key}\n{window_start.isoformat()}".encode()).hexdigest()
    return AbuseReport(
        report_id=report_id,
        format="outbound-limit",
        category="spam",
        category_confidence=1.0,
        source_label=source_label,
        emails=[mailbox] if "@" in mailbox else [],
        reporter=None,
        reporter_kind="internal",
        automated=True,
        subject=subject,
        observed_at=now,
        received_at=now,
        evidence=evidence,
    )


def limit_report(
    mailbox: str,
    *,
    limit: int,
    window_minutes: int,
    now: datetime,
    attrs: dict[str, str],
    key: str | None = None,
    who: str | None = None,
) -> AbuseReport:
    """The report published when a login, mailbox or customer crosses its recipients limit."""
    lines = "\n".join(f"{name}: {attrs[name]}" for name in ATTRS_IN_EVIDENCE if attrs.get(name))
    counted = who or mailbox
    return internal_report(
        mailbox,
        key=key or mailbox,
        source_label="recipients-per-hour",
        subject=f"{counted} sent to more than {limit} recipients in {window_minutes} minutes",
        evidence=f"More than {limit} recipients within {window_minutes} minutes for {counted} "
        f"(limit reached at {now.isoformat()}).\n" + lines,
        now=now,
        window_minutes=window_minutes,
    )


def unknown_recipients_report(
    mailbox: str, *, count: int, limit: int, window_minutes: int, now: datetime, failures: Iterable[str]
) -> AbuseReport:
    """The report published when a mailbox's mail bounced for `limit` distinct unknown recipients in the window."""
    sample = "\n".join(list(failures)[:20])
    return internal_report(
        mailbox,
        key=mailbox,
        source_label="unknown-recipients",
        subject=f"{mailbox} sent to {count} unknown recipients in {window_minutes} minutes",
        evidence=f"{count} distinct recipients rejected as unknown (5.1.x) within {window_minutes} minutes "
        f"(limit {limit}, reached at {now.isoformat()}).\nLatest failures:\n{sample}",
        now=now,
        window_minutes=window_minutes,
    )
