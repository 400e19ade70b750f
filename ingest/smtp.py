"""The abuse@ SMTP listener (the only importer of aiosmtpd): 250 only once the broker confirmed the raw report."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.messages import ReportReceived, utcnow
from core.report import Envelope as ReportEnvelope
from core.settings import Settings, split_host_port
from ingest.replies import AIOSMTPD_OWN, REPLIES, Cause, printable, reply

log = structlog.get_logger("ingest.smtp")

Publish = Callable[[ReportReceived], Awaitable[None]]
OnResult = Callable[[str], None]

# Lines of any length are kept byte for byte (Postfix accepts them too); the size cap bounds them.
# aiosmtpd's own per-session budget is a guard against command loops, far above what real MTAs and
# feedback loops send over one connection (hundreds of messages).
COMMANDS_PER_SESSION = 10_000


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ANGLE_ADDR = re.compile(rf"\s*<(({_ATOM}(?:\.{_ATOM})*)@{_DOMAIN})>[ \t]*(.*)\Z", re.DOTALL)


def report_id_for(raw: bytes) -> str:
    """Stable report id: the same bytes retransmitted get the same id (SHA-256, 32 hex digits)."""
    return hashlib.sha256(raw).hexdigest()[:32]


def envelope_text(value: str | None, limit: int = 2000) -> tuple[str, bytes | None]:
    """An SMTP argument as JSON-safe text, plus its exact bytes when they were not UTF-8 (else None)."""
    value = value or ""
    try:
        value.encode("utf-8")
        return value[:limit], None
    except UnicodeEncodeError:  # aiosmtpd decoded it with surrogateescape: keep the bytes, show \xNN
        return printable(value, limit), value.encode("utf-8", "surrogateescape")


class AbuseHandler:
    """aiosmtpd handler: recipient filter, size cap, confirmed publish before 250, 451 on any failure."""

    def __init__(self, settings: Settings, publish: Publish, *, on_result: OnResult | None = None) -> None:
        self.addresses = {a.lower() for a in settings.abuse_addresses}
        self.max_recipients = settings.smtp.max_recipients
        self.max_size = settings.smtp.max_message_size
        self.publish_timeout = settings.smtp.publish_timeout
        self.publish = publish
        self.on_result = on_result or (lambda _label: None)
        self.closing = False

    def __dir__(self) -> list[str]:
        """Only the hooks: aiosmtpd scans dir(handler) on every connection to find them."""
        return _hook_names(type(self), ("handle_", "auth_"))

    def answer(self, cause: Cause, **fields: object) -> str:
        """The reply for a cause, counted under the cause's metric label (the table's only vocabulary)."""
        label = REPLIES[cause].metric
        if label is not None:
            self.on_result(label)
        return reply(cause, **fields)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.closing:
            return self.answer(Cause.SHUTTING_DOWN)
        if address.lower() not in self.addresses:
            return self.answer(Cause.NOT_ABUSE_ADDRESS, address=printable(address))
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return self.answer(Cause.TOO_MANY_RECIPIENTS)
        envelope.rcpt_tos.append(address)
        return self.answer(Cause.RECIPIENT_OK)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.closing:
            return self.answer(Cause.SHUTTING_DOWN)
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which we never set
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > self.max_size:
            return self.answer(Cause.TOO_BIG, limit=self.max_size)
        report_id = report_id_for(raw)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        mail_from, mail_from_bytes = envelope_text(envelope.mail_from)
        helo, helo_bytes = envelope_text(session.host_name, 255)
        message = ReportReceived(
            report_id=report_id,
            raw=raw,
            envelope=ReportEnvelope(
                mail_from=mail_from,
                rcpt_tos=tuple(envelope_text(r)[0] for r in envelope.rcpt_tos),
                peer=str(peer),
                helo=helo,
                received_at=utcnow(),
            ),
            mail_from_bytes=mail_from_bytes,
            helo_bytes=helo_bytes,
        )
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publish(message)
        except Exception as exc:  # not owned by the broker: the sender keeps it
            log.warning("smtp.tempfail", report_id=report_id, error=repr(exc), peer=peer)
            return self.answer(Cause.TEMPORARY_FAILURE)
        log.info("smtp.accepted", report_id=report_id, size=len(raw), peer=peer, mail_from=mail_from[:200])
        return self.answer(Cause.ACCEPTED, report_id=report_id)

    async def handle_exception(self, error: Exception) -> str:
        """Any bug in a hook: 451 (the sender retries), never aiosmtpd's default 500 (a bounce)."""
        log.error("smtp.handler_exception", error=repr(error))
        return self.answer(Cause.TEMPORARY_FAILURE)


class AbuseSMTP(SMTP):
    """aiosmtpd's protocol with lines of any length kept, RFC 3463 enhanced codes on its own size replies."""

    def __init__(self, handler: AbuseHandler, **kwargs: Any) -> None:
        limit = kwargs.get("data_size_limit") or 10 * 1024 * 1024
        self.line_length_limit = limit + 2  # read by SMTP.__init__ for the stream's buffer
        super().__init__(handler, **kwargs)

    def __dir__(self) -> list[str]:
        """Only the command and AUTH methods: SMTP.__init__ scans dir(self) on every connection to find them."""
        return _hook_names(type(self), ("smtp_", "auth_"))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """`<local@domain> PARAMS` of plain dot-atoms without the email package's full parser (same result)."""
        match = _PLAIN_ANGLE_ADDR.match(arg) if arg else None
        if match is None or (self.local_part_limit and len(match[2]) > self.local_part_limit):
            return super()._getaddr(arg)
        return match[1], match[3]

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            own = next((cause for start, cause in AIOSMTPD_OWN.items() if status.startswith(start)), None)
            if own is not None:
                status = reply(own, limit=self.data_size_limit)
        await super().push(status)


_HOOK_NAMES: dict[tuple[str, tuple[str, ...]], list[str]] = {}


def _hook_names(cls: type, prefixes: tuple[str, ...]) -> list[str]:
    """The names aiosmtpd looks for on a protocol or handler class (dir() of the class, never of an instance)."""
    key = (f"{cls.__module__}.{cls.__qualname__}", prefixes)
    if key not in _HOOK_NAMES:
        _HOOK_NAMES[key] = sorted(n for n in dir(cls) if n.startswith(prefixes))
    return _HOOK_NAMES[key]


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
            command_call_limit={"*": COMMANDS_PER_SESSION, "NOOP": 100, "VRFY": 20, "EXPN": 20, "HELP": 20},
            timeout=120,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> tuple[str, int]:
        """Start listening; returns the bound (host, port) — port 0 in settings picks a free one."""
        # aiosmtpd logs several INFO lines per connection; our own line per report is the record.
        mail_log = logging.getLogger("mail.log")
        mail_log.setLevel(max(logging.WARNING, mail_log.getEffectiveLevel()))
        host, port = split_host_port(self.settings.smtp_listen)
        loop = asyncio.get_running_loop()
        reuse = self.settings.smtp.reuse_port or None
        self._server = await loop.create_server(self._factory, host=host, port=port, reuse_port=reuse)
        sock = self._server.sockets[0].getsockname()
        log.info("smtp.listening", host=sock[0], port=sock[1])
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        """Refuse new work (421), stop accepting connections."""
        self.handler.closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
