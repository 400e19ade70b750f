"""Mail out: a Maildir on a laptop, an SMTP relay in production (the only importer of aiosmtplib)."""

from __future__ import annotations

import asyncio
import mailbox
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from core.errors import PermanentError, TransientError


class Mailer(Protocol):
    """Delivers the exact bytes of a rendered mail to one recipient."""

    async def send(self, raw: bytes, sender: str, recipient: str) -> None:
        """TransientError: try again later. PermanentError: give up."""


class MaildirMailer:
    """Writes each mail into a Maildir (new/), the laptop default (./var/outbox)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)  # Maildir creates only its own folder
        self._box = mailbox.Maildir(self.path, create=True)

    async def send(self, raw: bytes, sender: str, recipient: str) -> None:
        def write() -> None:
            try:
                self._box.add(mailbox.MaildirMessage(raw))
            except OSError as exc:
                raise TransientError(f"cannot write to Maildir {self.path}: {exc}") from exc

        await asyncio.to_thread(write)


class SmtpMailer:
    """Sends through a relay: smtp://[user:pass@]host:port[?starttls=true|false], smtps:// for implicit TLS.

    `cafile=PATH` trusts a private CA for the relay's certificate (the system's CAs otherwise).
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.use_tls = parts.scheme == "smtps"
        starttls = query.get("starttls", [""])[0].lower()
        self.start_tls: bool | None = {"true": True, "false": False}.get(starttls)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.cafile = query.get("cafile", [None])[0]
        self.timeout = timeout

    async def send(self, raw: bytes, sender: str, recipient: str) -> None:
        sender, recipient = ascii_domain(sender), ascii_domain(recipient)
        utf8 = not (sender.isascii() and recipient.isascii())  # an internationalized local part: RFC 6531
        try:
            errors, _ = await aiosmtplib.send(
                raw,
                sender=sender,
                recipients=[recipient],
                mail_options=["SMTPUTF8"] if utf8 else None,
                hostname=self.host,
                port=self.port,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                username=self.username,
                password=self.password,
                cert_bundle=self.cafile,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(
                f"the relay {self.host}:{self.port} does not offer SMTPUTF8, which the internationalized address"
                f" {recipient if not recipient.isascii() else sender} needs: it cannot be reached through this relay"
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _classify(exc.recipients[0].code if exc.recipients else 450, str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(f"relay {self.host}:{self.port} unreachable: {exc}") from exc
        if errors:
            code, message = next(iter(errors.values()))
            raise _classify(code, message)


def ascii_domain(address: str) -> str:
    """The address with its domain in ASCII (IDNA A-labels), so that only a non-ASCII local part needs SMTPUTF8."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address  # no ASCII form: SMTPUTF8 carries it as it is


def _classify(code: int, text: str) -> Exception:
    if 500 <= code < 600:
        return PermanentError(f"{code} {text}")
    return TransientError(f"{code} {text}")


def make_mailer(mail_out: str) -> Mailer:
    """ABUSE_DESK_MAIL_OUT: a Maildir path, or an smtp:// / smtps:// relay URL."""
    if mail_out.startswith(("smtp://", "smtps://")):
        return SmtpMailer(mail_out)
    return MaildirMailer(os.path.expanduser(mail_out))
