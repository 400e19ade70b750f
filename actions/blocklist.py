"""The suspended set read from the ledger for the policy service's cache, with the version that says it changed."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actions.guard_cache import Block, BlockSet, Network
from actions.tables import suspensions

# (connection, service ids) -> (service id, resource type "ip"/"cidr", value) of those services, valid now
ServiceAddresses = Callable[[AsyncConnection, list[str]], Awaitable[list[tuple[str, str, str]]]]


async def ledger_version(engine: AsyncEngine) -> Hashable:
    """Changes whenever a row is written (count) or closed (lifted count, latest lift): one indexed scan."""
    query = select(func.count(), func.count(suspensions.c.lifted_at), func.max(suspensions.c.lifted_at))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return tuple(row)


def _name(row: Any) -> str:
    target = str(row.target or "")
    return target.rpartition("@")[2] if "@" in target else target


async def load_blocks(engine: AsyncEngine, addresses: ServiceAddresses | None = None) -> BlockSet:
    """Every open (pending or active) row; with `addresses`, the client IPs of the suspended services too."""
    query = select(suspensions.c.service_id, suspensions.c.target, suspensions.c.case_id).where(
        suspensions.c.lifted_at.is_(None)
    )
    targets: dict[str, Block] = {}
    services: dict[str, Block] = {}
    ips: dict[str, Block] = {}
    networks: list[tuple[Network, Block]] = []
    async with engine.connect() as conn:
        for row in await conn.execute(query):
            if row.target:
                targets.setdefault(str(row.target).lower(), Block(row.case_id, _name(row)))
            elif row.service_id:
                services.setdefault(str(row.service_id), Block(row.case_id, ""))
        if addresses is not None and services:
            for service_id, kind, value in await addresses(conn, sorted(services)):
                block = Block(services[service_id].case_id, value)
                try:
                    if kind == "cidr":
                        networks.append((ipaddress.ip_network(value, strict=False), block))
                    else:
                        ips.setdefault(ipaddress.ip_address(value).compressed, block)
                except ValueError:
                    continue
    return BlockSet(targets=targets, services=services, ips=ips, networks=tuple(networks))
