"""A real SMTP sink for the tests (aiosmtpd): keeps what it receives, or answers 4xx, 5xx, or drops the line."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port


@dataclass
class Received:
    """One accepted mail."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SinkHandler:
    """mode: "ok", "4xx", "5xx" (at RCPT), "4xx-data", "5xx-data", "drop" (closes the connection at DATA)."""

    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    attempts: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.attempts += 1
        if self.mode == "4xx":
            return "451 4.3.0 Temporary local problem, try again later"
        if self.mode == "5xx":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "drop":
            server.transport.abort()
            return "421 4.3.0 bye"
        if self.mode == "4xx-data":
            return "452 4.3.1 Insufficient system storage"
        if self.mode == "5xx-data":
            return "554 5.7.1 Message refused"
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 2.0.0 OK queued"


class Sink:
    """The sink on 127.0.0.1 (own thread); optional AUTH (user/password) and STARTTLS (cert, key files)."""

    def __init__(
        self,
        handler: SinkHandler | None = None,
        *,
        login: tuple[str, str] | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.handler = handler or SinkHandler()
        self.port = free_port()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port, "ready_timeout": 10}
        if login is not None:

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
                if ok:
                    self.logins.append(data.login.decode())
                return AuthResult(success=ok)

            kwargs |= {"authenticator": authenticator, "auth_require_tls": tls is not None}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            kwargs |= {"tls_context": context, "require_starttls": True}
        self.controller = Controller(self.handler, **kwargs)

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
