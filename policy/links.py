"""Signed, expiring links for customers (no login): HMAC-SHA256 over case, customer, purpose and expiry. Pure.

Each answer form carries a fresh nonce signed for its link (`new_form_key`/`read_form_key`); the web
records the nonce (and, for answers that mail ops, `answer_key`) so a captured answer cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

PURPOSES = ("statement",)
MIN_SECRET_LENGTH = 32  # as core.settings.weak_secret: shorter is guessable offline from one link


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token vouches for."""

    case_id: str
    customer_id: str
    purpose: str
    expires_at: datetime


class LinkError(ValueError):
    """The token is malformed (400), forged (403) or expired (410); `code` is the HTTP status to answer."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: str) -> bytes:
    if len(secret) < MIN_SECRET_LENGTH:
        raise LinkError("no usable link secret: links are disabled (see `abuse-desk doctor`)", 503)
    return secret.encode()


def make_token(secret: str, case_id: str, customer_id: str, expires_at: datetime, purpose: str = "statement") -> str:
    """A URL-safe token: payload.signature. LinkError if the secret is missing or too short."""
    key = _key(secret)
    payload = "|".join((case_id, customer_id, purpose, str(int(expires_at.timestamp())))).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(secret: str, token: str, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token; LinkError otherwise (constant-time signature check)."""
    key = _key(secret)
    try:
        payload_part, signature_part = token.split(".", 1)
        payload, signature = _unb64(payload_part), _unb64(signature_part)
    except (ValueError, TypeError) as exc:
        raise LinkError("malformed link") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise LinkError("this link is not valid", 403)
    try:
        case_id, customer_id, purpose, expiry = payload.decode().split("|")
        expires_at = datetime.fromtimestamp(int(expiry), UTC)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:  # OverflowError: a year past 9999
        raise LinkError("malformed link") from exc
    if now >= expires_at:
        raise LinkError("this link has expired: ask the abuse desk for a new one", 410)
    return LinkClaims(case_id, customer_id, purpose, expires_at)


def new_form_key(secret: str, token: str) -> str:
    """A fresh form key for one answer to this link: 'nonce.mac' (the nonce is what the web records as used)."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_form_mac(secret, token, nonce)}"


def read_form_key(secret: str, token: str, value: str) -> str:
    """The nonce of a form key issued for this link; LinkError for a stale, forged or foreign one."""
    nonce, _, mac = value.partition(".")
    if not nonce or len(nonce) > 64 or not hmac.compare_digest(mac.encode(), _form_mac(secret, token, nonce).encode()):
        raise LinkError("the form is stale: reload the page", 403)
    return nonce


def answer_key(token: str, kind: str) -> str:
    """The key of 'one answer of this kind through this link' (a digest: the token itself is never stored)."""
    return hashlib.sha256(f"answer|{kind}|{token}".encode()).hexdigest()


def nonce_key(token: str, nonce: str) -> str:
    """The key of one submitted form (its nonce, bound to the link)."""
    return hashlib.sha256(f"nonce|{nonce}|{token}".encode()).hexdigest()


def _form_mac(secret: str, token: str, nonce: str) -> str:
    return hmac.new(_key(secret), f"form|{token}|{nonce}".encode(), hashlib.sha256).hexdigest()
