"""The Postfix policy delegation server: 550 for suspended senders, 450 past the recipients-per-hour limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from actions.ledger import Ledger
from actions.outbound import OutboundCounter, OwnerLookup, limit_for, limit_report
from core.action_settings import OutboundConfig
from core.messages import Publish, ReportParsed, utcnow

log = structlog.get_logger("actions.postfix_policy")

MAX_REQUEST = 64 * 1024  # bytes of attributes in one request (Postfix sends ~1 KiB)
IDLE_TIMEOUT = 600.0  # Postfix closes idle policy connections itself ($smtpd_policy_service_max_idle = 300 s)


def _domain(address: str) -> str:
    return address.rpartition("@")[2] if "@" in address else ""


class PolicyService:
    """Answers `check_policy_service` requests (SMTPD_POLICY_README): name=value lines, an empty line, `action=`."""

    def __init__(
        self,
        ledger: Ledger,
        counter: OutboundCounter,
        config: OutboundConfig,
        publish: Publish,
        owner: OwnerLookup | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ledger = ledger
        self.counter = counter
        self.config = config
        self.publish = publish
        self.owner = owner
        self.clock = clock
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, host, port, limit=MAX_REQUEST)
        address = self._server.sockets[0].getsockname()
        log.info("postfix_policy.listening", host=address[0], port=address[1])
        return str(address[0]), int(address[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                attrs = await self._read_request(reader)
                if attrs is None:
                    break
                action = await self.answer(attrs)
                writer.write(f"action={action}\n\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        attrs: dict[str, str] = {}
        size = 0
        while True:
            line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            if not line:
                return None  # the client closed the connection
            size += len(line)
            if size > MAX_REQUEST:
                raise ValueError("policy request too large")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                return attrs
            name, sep, value = text.partition("=")
            if sep:
                attrs[name.strip()] = value

    async def answer(self, attrs: dict[str, str]) -> str:
        """The action for one request; an internal failure answers DUNNO (or DEFER_IF_PERMIT when fail-closed)."""
        try:
            return await self._decide(attrs)
        except Exception as exc:
            log.error("postfix_policy.failed", error=repr(exc))
            return "DUNNO" if self.config.fail_open else "DEFER_IF_PERMIT 4.3.0 policy service unavailable"

    async def _decide(self, attrs: dict[str, str]) -> str:
        if attrs.get("request") != "smtpd_access_policy":
            return "DUNNO"
        sasl = attrs.get("sasl_username", "").strip().lower()
        sender = attrs.get("sender", "").strip().lower()
        mailbox = sasl if "@" in sasl else sender
        owner = await self.owner(mailbox) if self.owner and "@" in mailbox else None
        identities = [i for i in dict.fromkeys((sasl, sender, _domain(sasl), _domain(sender))) if i]
        blocked = await self.ledger.blocking(targets=identities, service_ids=owner.service_ids if owner else ())
        if blocked is not None:
            target = str(blocked.get("target") or "")
            domain = _domain(target) or target or _domain(mailbox) or mailbox or "this sender"
            log.info("postfix_policy.suspended", sender=mailbox, case_id=blocked.get("case_id"))
            return f"550 5.7.1 outgoing mail from {domain} has been suspended"
        if attrs.get("protocol_state", "RCPT").upper() != "RCPT":
            return "DUNNO"
        key = sasl or (sender if owner is not None else "")
        if not key:
            return "DUNNO"  # not one of our senders: nothing to count
        limit = limit_for(key, owner, self.config)
        now = self.clock()
        accepted, _ = await self.counter.admit(key, limit, now)
        if accepted:
            return "DUNNO"
        await self._report(key if "@" in key else mailbox or key, key, limit, now, attrs)
        minutes = self.config.window_minutes
        return f"450 4.7.1 {key} has sent to {limit} recipients in the last {minutes} minutes, try again later"

    async def _report(self, mailbox: str, key: str, limit: int, now: datetime, attrs: dict[str, str]) -> None:
        report = limit_report(mailbox, limit=limit, window_minutes=self.config.window_minutes, now=now, attrs=attrs)
        if not await self.counter.claim_report(key, report.report_id, now):
            return  # already reported in this window
        try:
            await self.publish(ReportParsed(report_id=report.report_id, report=report))
        except Exception as exc:  # the recipient is deferred anyway; the next one tries the report again
            await self.counter.release_report(key, report.report_id)
            log.error("postfix_policy.report_failed", sender=mailbox, error=repr(exc))
            return
        log.warning("postfix_policy.limit_reported", sender=mailbox, limit=limit, report_id=report.report_id)
