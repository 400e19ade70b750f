"""The postfix-policy component: the policy service wired to the ledger, the counters and the inventory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.blocklist import ledger_version, load_blocks
from actions.bounces import BounceCounter
from actions.guard_cache import BlockSet, Refreshed
from actions.outbound import OutboundCounter, OwnerLookup, SenderOwner
from actions.postfix_policy import PolicyService
from core.action_settings import OutboundConfig
from core.messages import Publish, utcnow
from core.settings import Settings, split_host_port
from policy.inventory import lookup
from policy.tables import resources, services


async def _owner_of_login(conn: AsyncConnection, login: str) -> SenderOwner | None:
    """A SASL login without "@": a service of ours with that id or name (a hosting account's login)."""
    rows = (
        await conn.execute(
            select(services.c.id, services.c.customer_id, services.c.kind).where(
                or_(func.lower(services.c.id) == login, func.lower(services.c.name) == login)
            )
        )
    ).all()
    if not rows:
        return None
    customer = sorted(r.customer_id for r in rows)[0]
    mine = [r for r in rows if r.customer_id == customer]
    return SenderOwner(customer, tuple(sorted(r.id for r in mine)), tuple(sorted({r.kind for r in mine if r.kind})))


def owner_lookup(engine: AsyncEngine) -> OwnerLookup:
    """A lookup mailbox (or login) -> SenderOwner (customer, services, plans = service kinds), None when not ours."""

    async def owner(mailbox: str) -> SenderOwner | None:
        async with engine.connect() as conn:
            if "@" not in mailbox:
                return await _owner_of_login(conn, mailbox)
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


async def service_addresses(conn: AsyncConnection, service_ids: list[str]) -> list[tuple[str, str, str]]:
    """The ip and cidr resources of these services, valid now (a suspended server's own addresses)."""
    now = utcnow()
    rows = await conn.execute(
        select(resources.c.service_id, resources.c.type, resources.c.value).where(
            resources.c.service_id.in_(service_ids),
            resources.c.type.in_(("ip", "cidr")),
            or_(resources.c.valid_from.is_(None), resources.c.valid_from <= now),
            or_(resources.c.valid_to.is_(None), resources.c.valid_to > now),
        )
    )
    return [(str(r.service_id), str(r.type), str(r.value)) for r in rows]


def policy_service(
    engine: AsyncEngine, config: OutboundConfig, publish: Publish, clock: Callable[[], datetime] = utcnow
) -> PolicyService:
    """The policy service over this database: the suspended set cached and re-checked, counters in the database."""
    blocks: Refreshed[BlockSet] = Refreshed(
        lambda: load_blocks(engine, service_addresses), lambda: ledger_version(engine), config.suspension_cache_seconds
    )
    return PolicyService(blocks.get, OutboundCounter(engine, config), config, publish, owner_lookup(engine), clock)


async def start_policy_service(
    settings: Settings, engine: AsyncEngine, publish: Publish
) -> tuple[PolicyService, tuple[str, int]]:
    """Listen on ABUSE_DESK_POLICY_LISTEN (check_policy_service inet:HOST:PORT in Postfix)."""
    service = policy_service(engine, settings.outbound, publish)
    host, port = split_host_port(settings.policy_listen)
    return service, await service.start(host, port)


def bounce_counter(settings: Settings, engine: AsyncEngine, publish: Publish) -> BounceCounter:
    """The consumer of actions.bounces (served by the postfix-policy component)."""
    return BounceCounter(engine, settings.outbound, publish)
