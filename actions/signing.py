"""DKIM signing of outgoing notifications (dkimpy): the signature is prepended to the exact bytes stored and sent."""

from __future__ import annotations

from pathlib import Path

import dkim

from core.action_settings import DkimConfig
from core.errors import ConfigError

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"In-Reply-To",
    b"References",
    b"Auto-Submitted",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
)


class DkimSigner:
    """Signs with relaxed/simple canonicalization, rsa-sha256 (RFC 8301: use a 2048-bit key)."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector.encode()
        self.domain = domain.encode()
        self.private_key = private_key

    @classmethod
    def from_config(cls, config: DkimConfig) -> DkimSigner:
        """Read the PEM key named by notify.dkim.key_path; ConfigError when it is missing or not a key."""
        try:
            key = Path(config.key_path).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(f"notify.dkim.key_path {config.key_path!r} cannot be read: {exc}") from exc
        signer = cls(config.selector, config.domain, key)
        try:
            signer.sign(b"From: a@example.net\r\nSubject: t\r\n\r\nt\r\n")
        except dkim.DKIMException as exc:
            raise ConfigError(f"notify.dkim.key_path {config.key_path!r} is not a usable private key: {exc}") from exc
        return signer

    def sign(self, raw: bytes) -> bytes:
        """The message with its DKIM-Signature header first (raw must be CRLF, as sent)."""
        present = {line.split(b":", 1)[0].strip().lower() for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
        headers = [h for h in SIGNED_HEADERS if h.lower() in present]
        signature = dkim.sign(
            raw,
            self.selector,
            self.domain,
            self.private_key,
            include_headers=headers,
            canonicalize=(b"relaxed", b"simple"),
        )
        return bytes(signature) + raw
