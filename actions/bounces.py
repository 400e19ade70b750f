"""Unknown recipients: distinct hard-failed (5.1.x) recipients per sending mailbox over a window, and the report."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.internal_reports import unknown_recipients_report
from actions.outbound import dialect_insert
from actions.tables import outbound_bounces, outbound_reports
from core.action_settings import OutboundConfig
from core.errors import ContractError
from core.messages import BounceReceived, Message, Publish, ReportParsed

log = structlog.get_logger("actions.bounces")

REPORT_KEY = "unknown-recipients:"  # prefix of the mailbox's row in outbound_reports (one report per window)


class BounceCounter:
    """bounce.received.v1 → rows in `outbound_bounces`; the crossing → one internal report per mailbox per window.

    Redelivery-safe: a recipient is one row per mailbox (re-failing moves its time), and the report is claimed
    in the counting transaction; a failed publish releases the claim and raises, so the bounce is redelivered.
    """

    def __init__(self, engine: AsyncEngine, config: OutboundConfig, publish: Publish) -> None:
        self.engine = engine
        self.config = config
        self.publish = publish
        self.window = timedelta(minutes=config.unknown_recipients_window_minutes)

    async def handle(self, message: Message) -> None:
        if not isinstance(message, BounceReceived):
            raise ContractError(f"actions.bounces got {message.type}")
        mailbox = message.mailbox.strip().lower()
        recipients = sorted({f.recipient.strip().lower() for f in message.failures if "@" in f.recipient})
        if "@" not in mailbox or not recipients:
            return
        now = message.failed_at
        since = now - self.window
        key = REPORT_KEY + mailbox
        async with self.engine.begin() as conn:
            ins = dialect_insert(conn, outbound_bounces)
            await conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["mailbox", "recipient"],
                    set_={"failed_at": func.max(outbound_bounces.c.failed_at, ins.excluded.failed_at)}
                    if conn.dialect.name == "sqlite"
                    else {"failed_at": func.greatest(outbound_bounces.c.failed_at, ins.excluded.failed_at)},
                ),
                [{"mailbox": mailbox, "recipient": r, "failed_at": now} for r in recipients],
            )
            count = (
                await conn.execute(
                    select(func.count()).where(
                        outbound_bounces.c.mailbox == mailbox, outbound_bounces.c.failed_at > since
                    )
                )
            ).scalar_one()
            await conn.execute(delete(outbound_bounces).where(outbound_bounces.c.failed_at <= since - self.window))
            if int(count) < self.config.unknown_recipients_limit:
                return
            latest = await conn.execute(
                select(outbound_bounces.c.recipient)
                .where(outbound_bounces.c.mailbox == mailbox, outbound_bounces.c.failed_at > since)
                .order_by(outbound_bounces.c.failed_at.desc())
                .limit(20)
            )
            report = unknown_recipients_report(
                mailbox,
                count=int(count),
                limit=self.config.unknown_recipients_limit,
                window_minutes=self.config.unknown_recipients_window_minutes,
                now=now,
                failures=[r for (r,) in latest],
            )
            await conn.execute(dialect_insert(conn, outbound_reports).values(sender=key).on_conflict_do_nothing())
            claimed = await conn.execute(
                update(outbound_reports)
                .where(
                    outbound_reports.c.sender == key,
                    outbound_reports.c.reported_at.is_(None) | (outbound_reports.c.reported_at <= since),
                )
                .values(reported_at=now, report_id=report.report_id)
            )
            if not claimed.rowcount:
                return  # reported already in this window
        try:
            await self.publish(ReportParsed(report_id=report.report_id, report=report))
        except Exception:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(outbound_reports)
                    .where(outbound_reports.c.sender == key, outbound_reports.c.report_id == report.report_id)
                    .values(reported_at=None, report_id=None)
                )
            raise
        log.warning("bounces.reported", sender=mailbox, unknown_recipients=int(count), report_id=report.report_id)
