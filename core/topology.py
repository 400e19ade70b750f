"""The broker topology as one table: exchanges, quorum queues, their bindings and dead-letter queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXCHANGE = "abuse-desk"  # topic exchange; routing key = message type
DEAD_EXCHANGE = "abuse-desk.dead"  # direct exchange; routing key = source queue name
DEFAULT_DELIVERY_LIMIT = 5  # deliveries (crash loops) and handler attempts (failures, timeouts) per message
DEFAULT_HANDLER_TIMEOUT = 300.0  # seconds a handler may run; a timeout counts as a failure
SEPARATORS = ".-_:"  # a prefix ending in one of these is used as is; otherwise "." joins it


def prefixed(prefix: str, name: str) -> str:
    """`newcomer` + `actions.notify` -> `newcomer.actions.notify`; an empty prefix, or `t1.`, is used as is."""
    if not prefix or prefix[-1] in SEPARATORS:
        return prefix + name
    return f"{prefix}.{name}"


@dataclass(frozen=True)
class QueueSpec:
    """One work queue: who consumes it and which message types it receives."""

    name: str
    bindings: tuple[str, ...]
    consumer: str  # the component (`abuse-desk serve X`) that consumes it
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT

    @property
    def dead(self) -> str:
        """Name of the dead-letter queue of this queue."""
        return f"{self.name}.dead"

    @property
    def retry(self) -> str:
        """Name of the retry queue: a failed message waits there (per-message TTL), then goes back to work."""
        return f"{self.name}.retry"


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("ingest.normalize", ("report.received.v1",), consumer="normalize"),
    QueueSpec("policy.reports", ("report.parsed.v1",), consumer="policy"),
    QueueSpec(
        "policy.events",
        ("service.suspended.v1", "service.lifted.v1", "notification.sent.v1", "action.failed.v1"),
        consumer="policy",
    ),
    QueueSpec("actions.suspend", ("service.suspend.v1", "service.lift.v1"), consumer="suspend"),
    QueueSpec("actions.notify", ("notification.send.v1",), consumer="notify"),
    QueueSpec("actions.bounces", ("bounce.received.v1",), consumer="postfix-policy"),
)

QUEUES_BY_NAME: dict[str, QueueSpec] = {q.name: q for q in QUEUES}


def queue_arguments(spec: QueueSpec, prefix: str) -> dict[str, Any]:
    """Declaration arguments of a work queue: quorum, bounded redelivery, dead-letter target."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": spec.delivery_limit,
        "x-dead-letter-exchange": prefixed(prefix, DEAD_EXCHANGE),
        "x-dead-letter-routing-key": prefixed(prefix, spec.name),
    }


def retry_arguments(spec: QueueSpec, prefix: str) -> dict[str, Any]:
    """Declaration arguments of a retry queue: expired messages dead-letter (at least once) to the work queue."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",  # the default exchange: routing key = the work queue's name
        "x-dead-letter-routing-key": prefixed(prefix, spec.name),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


DEAD_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def routes_for(message_type: str) -> list[str]:
    """Queues a message type is routed to (unprefixed names)."""
    return [q.name for q in QUEUES if message_type in q.bindings]
