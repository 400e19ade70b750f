"""Deployment files generated from the code: RabbitMQ definitions and policies from the topology table."""

from __future__ import annotations

import json
from typing import Any

from core.topology import (
    DEAD_EXCHANGE,
    DEAD_QUEUE_ARGUMENTS,
    EXCHANGE,
    QUEUES,
    prefixed,
    queue_arguments,
    retry_arguments,
)

DEFINITIONS_PATH = "deploy/rabbitmq/definitions.json"


def rabbitmq_definitions(prefix: str = "", vhost: str = "/") -> dict[str, Any]:
    """Exchanges, quorum queues, bindings, dead-letter queues and policies, as `rabbitmqctl import_definitions` reads.

    Queue arguments are the ones the components declare (a mismatch would make their declare fail); the
    policies repeat the dead-letter target and delivery limit so operators can see and tune them in one place.
    Users and permissions are not here: they are secrets, set per deployment.
    """
    exchanges = [
        _exchange(prefixed(prefix, EXCHANGE), "topic", vhost),
        _exchange(prefixed(prefix, DEAD_EXCHANGE), "direct", vhost),
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    for spec in QUEUES:
        name, dead = prefixed(prefix, spec.name), prefixed(prefix, spec.dead)
        queues.append(_queue(name, queue_arguments(spec, prefix), vhost))
        queues.append(_queue(prefixed(prefix, spec.retry), retry_arguments(spec, prefix), vhost))
        queues.append(_queue(dead, dict(DEAD_QUEUE_ARGUMENTS), vhost))
        bindings += [_binding(prefixed(prefix, EXCHANGE), name, key, vhost) for key in spec.bindings]
        bindings.append(_binding(prefixed(prefix, DEAD_EXCHANGE), dead, name, vhost))
        policies.append(
            {
                "vhost": vhost,
                "name": f"{name}.dead-lettering",
                "pattern": "^" + name.replace(".", r"\.") + "$",
                "apply-to": "queues",
                "priority": 0,
                "definition": {
                    "dead-letter-exchange": prefixed(prefix, DEAD_EXCHANGE),
                    "dead-letter-routing-key": name,
                    "delivery-limit": spec.delivery_limit,
                },
            }
        )
    return {
        "rabbit_version": "3.10.8",
        "vhosts": [{"name": vhost}],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
        "policies": policies,
    }


def definitions_json(prefix: str = "", vhost: str = "/") -> str:
    """The definitions as the committed file holds them (stable key order, trailing newline)."""
    return json.dumps(rabbitmq_definitions(prefix, vhost), indent=2, sort_keys=True) + "\n"


def _exchange(name: str, kind: str, vhost: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def _queue(name: str, arguments: dict[str, Any], vhost: str) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(source: str, queue: str, key: str, vhost: str) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": {},
    }
