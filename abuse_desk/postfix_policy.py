"""The postfix-policy component: the policy service wired to the ledger, the counters and the inventory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import Ledger
from actions.outbound import OutboundCounter, OwnerLookup, SenderOwner
from actions.postfix_policy import PolicyService
from core.messages import Message, utcnow
from core.settings import Settings, split_host_port
from policy.inventory import lookup
from policy.tables import services


def owner_lookup(engine: AsyncEngine) -> OwnerLookup:
    """A lookup mailbox -> SenderOwner (customer, services, plans = service kinds), None when not ours."""

    async def owner(mailbox: str) -> SenderOwner | None:
        async with engine.connect() as conn:
            matches = await lookup(conn, mailboxes=[mailbox], at=utcnow())
            if not matches:
                return None
            exact = [m for m in matches if m.resource_type == "mailbox"] or matches
            ids = sorted({m.service_id for m in exact})
            kinds = await conn.execute(select(services.c.kind).where(services.c.id.in_(ids)))
            return SenderOwner(
                customer_id=exact[0].customer_id,
                service_ids=tuple(ids),
                plans=tuple(sorted({k for (k,) in kinds if k})),
            )

    return owner


async def start_policy_service(
    settings: Settings, engine: AsyncEngine, publish: Callable[[Message], Awaitable[None]]
) -> tuple[PolicyService, tuple[str, int]]:
    """Listen on ABUSE_DESK_POLICY_LISTEN (check_policy_service inet:HOST:PORT in Postfix)."""
    service = PolicyService(
        Ledger(engine),
        OutboundCounter(engine, settings.outbound),
        settings.outbound,
        publish,
        owner=owner_lookup(engine),
    )
    host, port = split_host_port(settings.policy_listen)
    return service, await service.start(host, port)
