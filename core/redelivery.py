"""What a failed message carries: retry delays, the headers of a retry or a dead letter (the handler's real error)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

ERROR_HEADER: Final = "x-abuse-desk-error"  # the handler's error text (cut to ERROR_LIMIT)
ATTEMPTS_HEADER: Final = "x-abuse-desk-attempts"  # handler runs so far, this one included
QUEUE_HEADER: Final = "x-abuse-desk-queue"  # the work queue (unprefixed) the message failed in
REASON_HEADER: Final = "x-abuse-desk-reason"  # why it is dead: REJECTED or RETRIES_EXHAUSTED
FAILED_AT_HEADER: Final = "x-abuse-desk-failed-at"  # ISO 8601 UTC of the last failure

REJECTED: Final = "rejected"  # not one of our contracts (or the handler said ContractError): dead at once
RETRIES_EXHAUSTED: Final = "retries-exhausted"  # the handler failed or timed out on every attempt
ERROR_LIMIT: Final = 2000

# Set by RabbitMQ when it dead-letters or redelivers; not carried over when we republish a message ourselves.
_BROKER_HEADERS: Final = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")
_BROKER_HEADERS_ALSO: Final = ("x-delivery-count", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")


@dataclass(frozen=True)
class DeadLetter:
    """A message sitting in a dead-letter queue, with why it got there."""

    queue: str
    message_id: str
    type: str
    reason: str
    delivery_count: int
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)  # AMQP headers as received (x-death, x-abuse-desk-*)
    error: str = ""  # the handler's own error text (x-abuse-desk-error), when it failed
    attempts: int = 0  # handler runs (x-abuse-desk-attempts), else the broker's delivery count


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds a message waits in the retry queue after its `attempt`-th failure: base, 2×base, 4×base … ≤ cap."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


def as_int(value: Any) -> int:
    """A header value as an int (0 when missing or not a number)."""
    try:
        return int(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, AttributeError):
        return 0


def attempts_so_far(headers: dict[str, Any] | None) -> int:
    """Handler runs before this delivery: our own count plus the broker's redeliveries (crashes, lost channels)."""
    headers = headers or {}
    return as_int(headers.get(ATTEMPTS_HEADER)) + as_int(headers.get("x-delivery-count"))


def carried_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """The message's own headers (report_id, case_id, replayed, ours), without what the broker added."""
    dropped = (*_BROKER_HEADERS, *_BROKER_HEADERS_ALSO)
    return {k: v for k, v in (headers or {}).items() if k not in dropped}


def failure_headers(
    headers: dict[str, Any] | None,
    *,
    queue: str,
    attempts: int,
    error: str,
    reason: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Headers of a message going to the retry queue (reason empty) or to `<queue>.dead` (reason set)."""
    out = carried_headers(headers)
    out.update(
        {
            ERROR_HEADER: error[:ERROR_LIMIT],
            ATTEMPTS_HEADER: attempts,
            QUEUE_HEADER: queue,
            FAILED_AT_HEADER: (now or datetime.now(UTC)).isoformat(),
        }
    )
    if reason:
        out[REASON_HEADER] = reason
    else:
        out.pop(REASON_HEADER, None)
    return out


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """The error text a dead letter shows: the exception's type and message (a timeout says how long)."""
    if isinstance(exc, TimeoutError) and timeout is not None:
        return f"handler timed out after {timeout:g}s"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def dead_letter(
    queue: str, *, headers: dict[str, Any], body: bytes, message_id: str | None, type: str | None
) -> DeadLetter:
    """A dead letter as read from `<queue>.dead`: our reason and error headers, else what the broker recorded."""
    deaths: Any = headers.get("x-death") or []
    reason = _text(headers.get(REASON_HEADER))
    if not reason and deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        reason = _text(deaths[0].get("reason", ""))
    delivery_count = as_int(headers.get("x-delivery-count"))
    return DeadLetter(
        queue=queue,
        message_id=message_id or "",
        type=type or _body_type(body),
        reason=reason or REJECTED,
        delivery_count=delivery_count,
        body=body,
        headers=headers,
        error=_text(headers.get(ERROR_HEADER)),
        attempts=as_int(headers.get(ATTEMPTS_HEADER)) or delivery_count,
    )


def _body_type(body: bytes) -> str:
    try:
        return str(json.loads(body).get("type", ""))
    except (ValueError, AttributeError):
        return ""
