"""Notifications: render once into the mail outbox when the command is first handled, then send with retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.mailer import Mailer
from actions.render import render, wire_bytes
from actions.tables import mail_outbox
from core.db import insert_new
from core.errors import ContractError, PermanentError
from core.messages import ActionFailed, Message, NotificationSent, Publish, SendNotification, utcnow
from core.settings import NotifyConfig

log = structlog.get_logger("actions.notify")
CLAIM_LEASE = timedelta(minutes=5)

Signer = Callable[[bytes], bytes]
NOT_PEOPLE = ("feedback-loop", "machine", "internal")


def answers_a_machine(command: SendNotification) -> bool:
    """A mail to a complainant that is not a person (feedback loop, robot, Auto-Submitted): never sent."""
    if not command.kind.startswith("complainant-"):
        return False
    ctx = command.context
    to = command.to.strip().lower()
    null = to in ("", "<>") or to.split("@")[0] in ("mailer-daemon", "postmaster", "noreply", "no-reply")
    return bool(ctx.get("automated")) or ctx.get("reporter_kind") in NOT_PEOPLE or null


class NotifyWorker:
    """Handles notification.send.v1: one outbox row per command (never two mails), sends due rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        mailer: Mailer,
        config: NotifyConfig,
        publish: Publish,
        clock: Callable[[], datetime] = utcnow,
        signer: Signer | None = None,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.mailer = mailer
        self.config = config
        self.publish = publish
        self.clock = clock
        self._send_lock = asyncio.Lock()

    async def handle(self, message: Message) -> None:
        """Store the rendered mail (idempotent on the command id), then try to send it now."""
        if not isinstance(message, SendNotification):
            raise ContractError(f"actions.notify got {message.type}")
        if answers_a_machine(message):
            log.warning("notify.not_to_machines", kind=message.kind, to=message.to, case_id=message.case_id)
            return
        now = self.clock()
        try:
            mail = render(
                message, sender=self.config.from_address, default_language=self.config.default_language, now=now
            )
        except PermanentError as exc:
            await self.publish(
                ActionFailed(case_id=message.case_id, action="notify", reason=str(exc), command_id=message.message_id)
            )
            return
        raw = wire_bytes(mail)
        if self.signer is not None:
            raw = self.signer(raw)
        row = {
            "command_id": message.message_id,
            "case_id": message.case_id,
            "kind": message.kind,
            "recipient": message.to,
            "mail_message_id": str(mail["Message-ID"]),
            "raw": raw,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now + CLAIM_LEASE,  # stored claimed by this attempt: due again if it dies first
        }
        async with self.engine.begin() as conn:
            row_id = await insert_new(conn, mail_outbox, row, ["command_id"])
        if row_id is None:  # a command delivered again: its row keeps its own state and schedule
            await self.send_due(command_id=message.message_id)
            return
        async with self._send_lock:
            await self._attempt(row | {"id": row_id}, now)

    async def send_due(self, *, command_id: str | None = None, limit: int = 50) -> int:
        """Send pending mails whose time has come; returns how many were sent."""
        sent = 0
        async with self._send_lock:
            now = self.clock()
            query = select(mail_outbox).where(mail_outbox.c.state == "pending", mail_outbox.c.next_attempt_at <= now)
            if command_id is not None:
                query = query.where(mail_outbox.c.command_id == command_id)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query.order_by(mail_outbox.c.id).limit(limit))).mappings().all()
            for row in rows:
                if await self._claim(row["id"], now):
                    sent += await self._attempt(dict(row), now)
        return sent

    async def _claim(self, row_id: int, now: datetime) -> bool:
        """Take a due row for one attempt, atomically: of several notify replicas that see it due, one sends it.

        The claim is a lease (the row is due again after CLAIM_LEASE): a replica that dies while sending
        leaves the mail to another one instead of losing it.
        """
        async with self.engine.begin() as conn:
            due = (mail_outbox.c.id == row_id, mail_outbox.c.state == "pending", mail_outbox.c.next_attempt_at <= now)
            claimed = await conn.execute(update(mail_outbox).where(*due).values(next_attempt_at=now + CLAIM_LEASE))
        return bool(claimed.rowcount == 1)

    async def _attempt(self, row: dict[str, Any], now: datetime) -> int:
        attempts = int(row["attempts"]) + 1
        try:
            await self.mailer.send(bytes(row["raw"]), self.config.from_address, str(row["recipient"]))
        except PermanentError as exc:
            await self._mark(row, state="failed", attempts=attempts, last_error=str(exc)[:1000])
            await self.publish(
                ActionFailed(
                    case_id=row["case_id"],
                    action="notify",
                    reason=str(exc),
                    command_id=str(row["command_id"]),
                )
            )
            return 0
        except Exception as exc:
            created = row["created_at"]
            give_up = isinstance(created, datetime) and now - created > timedelta(days=self.config.give_up_after_days)
            delays = self.config.retry_seconds
            delay = delays[min(attempts - 1, len(delays) - 1)]
            await self._mark(
                row,
                state="failed" if give_up else "pending",
                attempts=attempts,
                last_error=str(exc)[:1000],
                next_attempt_at=now + timedelta(seconds=delay),
            )
            log.warning("notify.deferred", recipient=row["recipient"], error=str(exc), attempts=attempts)
            if give_up:
                await self.publish(
                    ActionFailed(
                        case_id=row["case_id"],
                        action="notify",
                        reason=f"gave up: {exc}",
                        command_id=str(row["command_id"]),
                    )
                )
            return 0
        await self._mark(row, state="sent", attempts=attempts, sent_at=now)
        await self.publish(
            NotificationSent(
                case_id=row["case_id"],
                kind=str(row["kind"]),
                to=str(row["recipient"]),
                mail_message_id=str(row["mail_message_id"]),
                command_id=str(row["command_id"]),
            )
        )
        return 1

    async def _mark(self, row: dict[str, Any], **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(mail_outbox).where(mail_outbox.c.id == row["id"]).values(**values))

    async def send_forever(self, interval: float = 10.0) -> None:
        """Background loop sending deferred mails."""
        while True:
            try:
                await self.send_due()
            except Exception as exc:
                log.warning("notify.loop_failed", error=repr(exc))
            await asyncio.sleep(interval)
