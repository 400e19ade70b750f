"""The signed-webhook suspension backend: a JSON POST per command, HMAC-SHA256 over timestamp and body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from actions.remote import LedgerItem, send_with_retries
from core.action_settings import SuspendConfig
from core.messages import LiftSuspension, Message, SuspendService

SIGNATURE_HEADER = "X-Abuse-Desk-Signature"
TIMESTAMP_HEADER = "X-Abuse-Desk-Timestamp"
EVENT_HEADER = "X-Abuse-Desk-Event"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): what the receiver recomputes."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, given: str, *, now: float, tolerance: float = 300.0) -> bool:
    """The receiver's check (documented for integrators, used by the tests): fresh timestamp, equal MAC."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


def payload(event: str, command: Message, items: list[LedgerItem], customer_id: str, reason: str) -> dict[str, Any]:
    """The JSON document POSTed: what to stop (or restore), for which case, and why."""
    return {
        "event": event,
        "id": command.message_id,  # idempotency key: a retried delivery carries the same id
        "case_id": command.case_id,
        "customer_id": customer_id,
        "scope": items[0].scope if items else "account",
        "services": sorted({i.service_id for i in items if i.target is None and i.service_id}),
        "mailboxes": sorted({i.target for i in items if i.target and "@" in i.target}),
        "domains": sorted({i.target for i in items if i.target and "@" not in i.target}),
        "reason": reason,
        "occurred_at": command.occurred_at.isoformat(),
    }


class WebhookPanel:
    """POSTs service.suspend / service.lift to the platform's endpoint. 2xx (or 409: already so) is success."""

    name = "webhook"
    batch = True

    def __init__(
        self, config: SuspendConfig, client: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.secret = config.secret or ""
        self.client = client or httpx.AsyncClient(timeout=config.timeout)
        self.clock = clock

    def handles(self, item: LedgerItem) -> bool:
        return True

    async def suspend(self, command: SuspendService, items: list[LedgerItem]) -> None:
        await self._post(payload("service.suspend", command, items, command.customer_id, command.reason), command)

    async def lift(self, command: LiftSuspension, items: list[LedgerItem]) -> None:
        await self._post(payload("service.lift", command, items, command.customer_id, command.reason), command)

    async def _post(self, document: dict[str, Any], command: Message) -> None:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()

        def build() -> httpx.Request:
            timestamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(self.secret, timestamp, body),
                EVENT_HEADER: str(document["event"]),
                "Idempotency-Key": command.message_id,
            }
            return self.client.build_request("POST", self.config.url, content=body, headers=headers)

        await send_with_retries(
            self.client,
            build,
            attempts=self.config.attempts,
            backoff=self.config.backoff,
            what="webhook",
            accept=frozenset({409}),  # the platform says it is already in that state
        )

    async def close(self) -> None:
        await self.client.aclose()
