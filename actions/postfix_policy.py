"""The Postfix policy delegation server: 550 for suspended senders, 450 past the recipients-per-window limits."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

import structlog

from actions.guard_cache import BlockSet, OwnerCache
from actions.outbound import Limit, OutboundCounter, OwnerLookup, SenderOwner, limit_report, limits_for
from actions.policy_replies import REPLIES, Cause, reply
from core.action_settings import OutboundConfig
from core.messages import Publish, ReportParsed, utcnow

log = structlog.get_logger("actions.postfix_policy")

MAX_REQUEST = 64 * 1024  # bytes of attributes in one request (Postfix sends ~1 KiB)
MAX_PIPELINED = 100  # requests waiting for their answer on one connection
IDLE_TIMEOUT = 600.0  # Postfix closes idle policy connections itself ($smtpd_policy_service_max_idle = 300 s)

Decided = tuple[Cause, dict[str, object]]


def _domain(address: str) -> str:
    return address.rpartition("@")[2] if "@" in address else ""


def parse_request(block: bytes) -> dict[str, str]:
    """name=value lines (already without the ending empty line); lines without '=' are ignored."""
    attrs: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition("=")
        if sep:
            attrs[name.strip()] = value
    return attrs


class _Connection(asyncio.Protocol):
    """One smtpd's connection: requests split on empty lines (LF or CRLF), answered in order."""

    def __init__(self, service: PolicyService) -> None:
        self.service = service
        self.buffer = b""
        self.pending: deque[dict[str, str]] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is no asyncio.Transport subclass
        self.service.connections.add(self)
        self._arm()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _hang_up(self) -> None:
        """Over the request size (or pipelining) bound: hang up, as Postfix's own servers do."""
        self.pending.clear()
        self.buffer = b""
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self)
        if self.idle is not None:
            self.idle.cancel()
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self._arm()
        self.buffer = (self.buffer + data).replace(b"\r\n", b"\n")
        while True:
            if self.buffer.startswith(b"\n"):  # an empty request
                block, self.buffer = b"", self.buffer[1:]
            else:
                end = self.buffer.find(b"\n\n")
                if end < 0:
                    break
                block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if len(block) > MAX_REQUEST:
                return self._hang_up()
            self.pending.append(parse_request(block))
        if len(self.buffer) > MAX_REQUEST or len(self.pending) > MAX_PIPELINED:
            return self._hang_up()
        if self.pending and self.worker is None:
            self.worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        try:
            while self.pending:
                action = await self.service.answer(self.pending.popleft())
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(f"action={action}\n\n".encode())
        finally:
            self.worker = None


class PolicyService:
    """Answers `check_policy_service` requests (SMTPD_POLICY_README): name=value lines, an empty line, `action=`."""

    def __init__(
        self,
        blocks: Callable[[], Awaitable[BlockSet]],
        counter: OutboundCounter,
        config: OutboundConfig,
        publish: Publish,
        owner: OwnerLookup | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self.blocks = blocks
        self.counter = counter
        self.config = config
        self.publish = publish
        self.owners = OwnerCache(owner, config.inventory_cache_seconds) if owner else None
        self.clock = clock
        self.on_result = on_result  # called with the reply row's metric label
        self.connections: set[_Connection] = set()
        self._reported: dict[str, datetime] = {}  # counter key -> the minute it was known reported (claimed in the db)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        await self.blocks()  # fail at start, not on the first request, when the ledger cannot be read
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        address = self._server.sockets[0].getsockname()
        log.info("postfix_policy.listening", host=address[0], port=address[1])
        return str(address[0]), int(address[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            await self._server.wait_closed()
        await self.counter.close()

    async def answer(self, attrs: dict[str, str]) -> str:
        """The action for one request; an internal failure answers DUNNO (or DEFER_IF_PERMIT when fail-closed)."""
        try:
            cause, fields = await self._decide(attrs)
        except Exception as exc:
            log.error("postfix_policy.failed", error=repr(exc))
            cause, fields = (Cause.FAILED_OPEN if self.config.fail_open else Cause.FAILED_CLOSED), {}
        if self.on_result is not None:
            self.on_result(REPLIES[cause].metric)
        return reply(cause, **fields)

    async def _owner(self, key: str) -> SenderOwner | None:
        return await self.owners.get(key) if self.owners is not None and key else None

    async def _decide(self, attrs: dict[str, str]) -> Decided:
        if attrs.get("request") != "smtpd_access_policy":
            return Cause.NOT_ASKED, {}
        login = attrs.get("sasl_username", "").strip().lower()
        sender = attrs.get("sender", "").strip().lower()
        login_owner = await self._owner(login)
        sender_owner = login_owner if sender == login else (await self._owner(sender) if "@" in sender else None)
        owners = [o for o in dict.fromkeys((login_owner, sender_owner)) if o is not None]
        blocks = await self.blocks()
        services = [s for o in owners for s in o.service_ids]
        block = blocks.sender((login, sender), services)
        if block is not None:
            mailbox = login if "@" in login else sender if sender_owner else login
            domain = block.name or _domain(mailbox) or mailbox or "this sender"
            log.info("postfix_policy.suspended", sender=mailbox, case_id=block.case_id)
            return Cause.SUSPENDED_SENDER, {"domain": domain}
        if not login:
            block = blocks.client(attrs.get("client_address", ""))
            if block is not None:  # a suspended server sending as anyone, or with the null sender
                log.info("postfix_policy.suspended_client", client=block.name, case_id=block.case_id)
                return Cause.SUSPENDED_CLIENT, {"domain": block.name}
        if attrs.get("protocol_state", "RCPT").upper() != "RCPT":
            return Cause.NOT_ASKED, {}
        mailbox = sender if "@" in sender and (sender_owner is not None or login) else ""
        if not login and not mailbox:
            return Cause.NOT_OURS, {}  # not one of our senders: inbound mail, nothing to count
        now = self.clock()
        verdict = await self.counter.admit(limits_for(login, mailbox, owners, self.config), now)
        if verdict.accepted or verdict.over is None:
            return Cause.ACCEPTED, {}
        await self._report(login if "@" in login else mailbox or login, verdict.over, now, attrs)
        over = verdict.over
        return Cause.RECIPIENT_LIMIT, {"who": over.who, "limit": over.limit, "minutes": self.config.window_minutes}

    async def _report(self, mailbox: str, over: Limit, now: datetime, attrs: dict[str, Any]) -> None:
        minute = now.replace(second=0, microsecond=0)  # the report's id is the counter and the window's minute
        if self._reported.get(over.key) == minute:
            return  # this replica knows it is reported: no report built, no database round trip per deferral
        report = limit_report(
            mailbox,
            limit=over.limit,
            window_minutes=self.config.window_minutes,
            now=now,
            attrs=attrs,
            key=over.key,
            who=over.who,
        )
        if not await self.counter.claim_report(over.key, report.report_id, now):
            self._reported[over.key] = minute  # another replica (or an earlier run) reported it
            return
        try:
            await self.publish(ReportParsed(report_id=report.report_id, report=report))
        except Exception as exc:  # the recipient is deferred anyway; the next one tries the report again
            await self.counter.release_report(over.key, report.report_id)
            log.error("postfix_policy.report_failed", sender=mailbox, error=repr(exc))
            return
        if len(self._reported) > 100_000:
            self._reported.clear()
        self._reported[over.key] = minute
        log.warning("postfix_policy.limit_reported", sender=mailbox, limit=over.limit, report_id=report.report_id)
