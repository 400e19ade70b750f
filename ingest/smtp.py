"""The abuse@ SMTP listener (the only importer of aiosmtpd): 250 only once the broker confirmed the raw report."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.messages import ReportReceived, utcnow
from core.report import Envelope as ReportEnvelope
from core.settings import Settings, split_host_port
from ingest import replies

log = structlog.get_logger("ingest.smtp")

Publish = Callable[[ReportReceived], Awaitable[None]]


def report_id_for(raw: bytes) -> str:
    """Stable report id: the same bytes retransmitted get the same id (SHA-256, 32 hex digits)."""
    return hashlib.sha256(raw).hexdigest()[:32]


class AbuseHandler:
    """aiosmtpd handler: recipient filter, size cap, confirmed publish before 250, 451 on any failure."""

    def __init__(self, settings: Settings, publish: Publish, *, on_result: Callable[[str], None] | None = None):
        self.addresses = {a.lower() for a in settings.abuse_addresses}
        self.max_recipients = settings.smtp.max_recipients
        self.max_size = settings.smtp.max_message_size
        self.publish_timeout = settings.smtp.publish_timeout
        self.publish = publish
        self.on_result = on_result or (lambda _outcome: None)
        self.closing = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.closing:
            return replies.SHUTTING_DOWN
        if address.lower() not in self.addresses:
            self.on_result("rejected-recipient")
            return replies.RCPT_NOT_ABUSE.format(address=address[:200])
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        return replies.RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.closing:
            return replies.SHUTTING_DOWN
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which we never set
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > self.max_size:
            self.on_result("too-big")
            return replies.TOO_BIG.format(limit=self.max_size)
        report_id = report_id_for(raw)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        message = ReportReceived(
            report_id=report_id,
            raw=raw,
            envelope=ReportEnvelope(
                mail_from=str(envelope.mail_from or ""),
                rcpt_tos=tuple(envelope.rcpt_tos),
                peer=str(peer),
                helo=str(session.host_name or "")[:255],
                received_at=utcnow(),
            ),
        )
        with structlog.contextvars.bound_contextvars(report_id=report_id):
            try:
                await asyncio.wait_for(self.publish(message), timeout=self.publish_timeout)
            except Exception as exc:  # not owned by the broker: the sender keeps it
                log.warning("smtp.tempfail", error=repr(exc), peer=peer)
                self.on_result("tempfail")
                return replies.TEMPORARY_FAILURE
            log.info("smtp.accepted", size=len(raw), peer=peer, mail_from=str(envelope.mail_from)[:200])
        self.on_result("accepted")
        return replies.OK_QUEUED.format(report_id=report_id)

    async def handle_exception(self, error: Exception) -> str:
        """Any bug in a hook: 451 (the sender retries), never aiosmtpd's default 500 (a bounce)."""
        log.error("smtp.handler_exception", error=repr(error))
        self.on_result("tempfail")
        return replies.TEMPORARY_FAILURE


class AbuseSMTP(SMTP):
    """aiosmtpd's protocol with RFC 3463 enhanced codes on its own size replies."""

    size_reply: str = replies.TOO_BIG

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("552 Error"):
            status = self.size_reply.format(limit=self.data_size_limit)
        await super().push(status)


class SmtpListener:
    """aiosmtpd on the caller's event loop (the aio-pika connection lives in the same loop)."""

    def __init__(self, settings: Settings, publish: Publish, **handler_kw: Any) -> None:
        self.settings = settings
        self.handler = AbuseHandler(settings, publish, **handler_kw)
        self._server: asyncio.base_events.Server | None = None

    def _factory(self) -> SMTP:
        return AbuseSMTP(
            self.handler,
            hostname=self.settings.smtp.hostname,
            data_size_limit=self.settings.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            command_call_limit={"*": 50, "RCPT": self.settings.smtp.max_recipients + 10, "NOOP": 20},
            timeout=120,
        )

    async def start(self) -> tuple[str, int]:
        """Start listening; returns the bound (host, port) — port 0 in settings picks a free one."""
        host, port = split_host_port(self.settings.smtp_listen)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, host=host, port=port)
        sock = self._server.sockets[0].getsockname()
        log.info("smtp.listening", host=sock[0], port=sock[1])
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        """Refuse new work (421), stop accepting connections."""
        self.handler.closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
