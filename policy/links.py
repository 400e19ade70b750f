"""Signed, expiring links for customers (no login): HMAC-SHA256 over case, customer, purpose and expiry. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

PURPOSES = ("statement",)


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token vouches for."""

    case_id: str
    customer_id: str
    purpose: str
    expires_at: datetime


class LinkError(ValueError):
    """The token is malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, case_id: str, customer_id: str, expires_at: datetime, purpose: str = "statement") -> str:
    """A URL-safe token: payload.signature."""
    payload = "|".join((case_id, customer_id, purpose, str(int(expires_at.timestamp())))).encode()
    signature = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(secret: str, token: str, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token; LinkError otherwise (constant-time signature check)."""
    try:
        payload_part, signature_part = token.split(".", 1)
        payload, signature = _unb64(payload_part), _unb64(signature_part)
    except (ValueError, TypeError) as exc:
        raise LinkError("malformed link") from exc
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise LinkError("this link is not valid")
    try:
        case_id, customer_id, purpose, expiry = payload.decode().split("|")
        expires_at = datetime.fromtimestamp(int(expiry), UTC)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LinkError("malformed link") from exc
    if now >= expires_at:
        raise LinkError("this link has expired: ask the abuse desk for a new one")
    return LinkClaims(case_id, customer_id, purpose, expires_at)
