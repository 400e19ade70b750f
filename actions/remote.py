"""Remote suspension panels over HTTP: the interface, and one POST with bounded retries and backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
import structlog

from core.errors import PermanentError, TransientError
from core.messages import LiftSuspension, SuspendService

log = structlog.get_logger("actions.remote")

RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class LedgerItem:
    """One thing a case suspends: a service (target None) or one mailbox / domain (target set)."""

    service_id: str
    target: str | None
    scope: str


class RemotePanel(Protocol):
    """A hosting platform that stops services. Raise TransientError (retry later) or PermanentError (give up)."""

    name: str
    batch: bool  # True: one call for all the items of a command; False: one call per item

    def handles(self, item: LedgerItem) -> bool:
        """Whether this panel acts on the item (else the ledger alone records it)."""

    async def suspend(self, command: SuspendService, items: list[LedgerItem]) -> None:
        """Stop the items; 'already suspended' is success."""

    async def lift(self, command: LiftSuspension, items: list[LedgerItem]) -> None:
        """Restore the items; 'not suspended' is success."""


Request = Callable[[], httpx.Request]


async def send_with_retries(
    client: httpx.AsyncClient,
    build: Request,
    *,
    attempts: int,
    backoff: float,
    what: str,
    accept: frozenset[int] = frozenset(),
) -> httpx.Response:
    """Send a request (rebuilt for each try, so signatures and timestamps are fresh).

    A 2xx answer (or one in `accept`) is returned; 5xx, 408/425/429, timeouts and connection errors are tried
    again after `backoff`, doubled each time, up to `attempts` tries, then TransientError (the command is
    redelivered later by the broker, then dead-lettered); other 4xx raise PermanentError at once.
    """
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            response = await client.send(build())
        except httpx.TimeoutException as exc:
            last = f"{what}: timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last = f"{what}: {type(exc).__name__} {exc}"
        else:
            status = response.status_code
            if 200 <= status < 300 or status in accept:
                return response
            text = response.text[:300].strip()
            if status >= 500 or status in RETRYABLE_STATUS:
                last = f"{what}: HTTP {status} {text}"
            else:
                raise PermanentError(f"{what}: HTTP {status} {text}")
        log.warning("remote.retry", what=what, attempt=attempt, error=last)
        if attempt < attempts:
            await asyncio.sleep(backoff * (2 ** (attempt - 1)))
    raise TransientError(last or f"{what}: failed")
