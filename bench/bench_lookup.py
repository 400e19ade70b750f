"""Benchmark inventory lookups by address: lookup_batch (indexed range probes) against the previous implementation.

Usage: .venv/bin/python bench/bench_lookup.py [--resources 100000] [--customers 2500] [--addresses 100000]
       [--batch 1000] [--baseline-addresses 1000] [--databases sqlite,postgresql]

The inventory: half single `ip`, half `cidr` resources (IPv4 /26 … /29 in 198.18.0.0/16 and the three documentation
/24s, some nested; IPv6 blocks of the same sizes, /122 … /125, and a few /64s in 2001:db8::/32; some assignments
expired), over 2 services per customer. Addresses to look up: inside held networks, held ips, and random ones (misses).
The baseline (the code before indexed lookups, kept below) loads every cidr resource per batch and tests each address
against each network in Python; it is slow enough that only its first --baseline-addresses are timed, and its answers
on those are checked against lookup_batch's. Wall-clock figures on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, event, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from abuse_desk.database import upgrade
from core.db import create_engine
from policy.inventory import Match, Query, import_inventory, lookup_batch
from policy.tables import resources, services

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("ABUSE_DESK_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- the previous implementation (baseline), as it was before lookup_batch ------------------------------------------


async def old_lookup(conn: AsyncConnection, *, ips: Iterable[str] = (), at: datetime) -> list[Match]:
    """The address part of the former `lookup`: exact ips by IN (...), then every cidr resource tested in Python."""
    valid = and_(
        or_(resources.c.valid_from.is_(None), resources.c.valid_from <= at),
        or_(resources.c.valid_to.is_(None), resources.c.valid_to > at),
    )
    base = (
        select(resources.c.service_id, services.c.customer_id, resources.c.type, resources.c.value)
        .join(services, services.c.id == resources.c.service_id)
        .where(valid)
    )
    found: list[Match] = []
    addresses: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for ip in ips:
        try:
            addresses[ipaddress.ip_address(ip.strip()).compressed] = ipaddress.ip_address(ip.strip())
        except ValueError:
            continue
    if addresses:
        rows = await conn.execute(base.where(resources.c.type == "ip", resources.c.value.in_(list(addresses))))
        found += [Match(r.value, r.service_id, r.customer_id, r.type, r.value) for r in rows]
        rows = await conn.execute(base.where(resources.c.type == "cidr"))
        for r in rows:
            net = ipaddress.ip_network(r.value)
            found += [
                Match(text_, r.service_id, r.customer_id, r.type, r.value)
                for text_, addr in addresses.items()
                if addr.version == net.version and addr in net
            ]
    return found


# --- the data ---------------------------------------------------------------------------------------------------


def _blocks(
    rng: random.Random, base: ipaddress.IPv4Network | ipaddress.IPv6Network, sizes: list[int], n: int
) -> list[str]:
    """Up to n non-overlapping networks of the given prefix lengths, in order through base, with random gaps."""
    out: list[str] = []
    cursor = int(base.network_address)
    end = int(base.broadcast_address)
    bits = base.max_prefixlen
    while len(out) < n:
        plen = rng.choice(sizes)
        size = 1 << (bits - plen)
        cursor = (cursor + size - 1) // size * size  # align
        cursor += size * rng.choice((0, 0, 0, 1))  # a free block now and then: addresses we do not hold
        if cursor + size - 1 > end:
            break
        out.append(
            f"{ipaddress.ip_address(cursor)}/{plen}" if bits == 32 else f"{ipaddress.IPv6Address(cursor)}/{plen}"
        )
        cursor += size
    return out


def build_inventory(n_resources: int, n_customers: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    cust = [
        {"id": f"C{i:05}", "name": f"Customer {i}", "email": f"c{i}@customers.example", "identity_verified": True}
        for i in range(n_customers)
    ]
    svc = [{"id": f"S{i:05}", "customer_id": f"C{i // 2:05}", "kind": "vps"} for i in range(2 * n_customers)]
    half = n_resources // 2
    nets: list[str] = []
    for doc in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"):  # nested: /26s with /29s of others inside
        for q in ipaddress.ip_network(doc).subnets(new_prefix=26):
            nets.append(str(q))
            nets += [str(s) for s in list(q.subnets(new_prefix=29))[1:3]]
    nets += _blocks(rng, ipaddress.ip_network("198.18.0.0/16"), [26, 27, 28, 29], half)
    nets += [str(ipaddress.IPv6Network(f"2001:db8:ff:{i:x}::/64")) for i in range(500)]
    nets += _blocks(rng, ipaddress.ip_network("2001:db8::/48"), [122, 123, 124, 125], half - len(nets))
    ips4 = rng.sample(
        range(int(ipaddress.IPv4Address("198.19.0.0")), int(ipaddress.IPv4Address("198.19.255.255"))), half // 3
    )
    base6 = int(ipaddress.IPv6Address("2001:db8:1::"))
    ips6 = rng.sample(range(base6, base6 + (1 << 40)), half - len(ips4))
    ips = [str(ipaddress.IPv4Address(i)) for i in ips4] + [str(ipaddress.IPv6Address(i)) for i in ips6]
    res: list[dict[str, Any]] = []
    for rtype, values in (("cidr", nets[:half]), ("ip", ips)):
        for value in values:
            row: dict[str, Any] = {"service_id": rng.choice(svc)["id"], "type": rtype, "value": value}
            if rng.random() < 0.05:  # an assignment that ended: found by nobody today
                row |= {"valid_from": "2020-01-01T00:00:00Z", "valid_to": "2023-01-01T00:00:00Z"}
            res.append(row)
    return {"customers": cust, "services": svc, "resources": res}


def build_addresses(inv: dict[str, Any], n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    nets = [ipaddress.ip_network(r["value"]) for r in inv["resources"] if r["type"] == "cidr"]
    ips = [r["value"] for r in inv["resources"] if r["type"] == "ip"]
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.4:
            net = rng.choice(nets)
            out.append(str(net.network_address + rng.randrange(net.num_addresses)))
        elif roll < 0.7:
            out.append(rng.choice(ips))
        elif roll < 0.85:
            out.append(str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.18.0.0")) + rng.randrange(1 << 17))))
        else:
            out.append(str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + rng.randrange(1 << 80))))
    return out


# --- the runs ---------------------------------------------------------------------------------------------------


async def _admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def run_one(backend: str, engine: AsyncEngine, inv: dict[str, Any], addresses: list[str], args: Any) -> None:
    await upgrade(engine)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await import_inventory(conn, inv)
    imported = time.perf_counter() - t0
    if backend == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE resources"))
    print(f"[{backend}] imported {len(inv['resources'])} resources in {imported:.1f} s")
    held = 0
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        for start in range(0, len(addresses), args.batch):
            found = await lookup_batch(conn, [Query("ip", a, NOW) for a in addresses[start : start + args.batch]])
            held += sum(1 for m in found if m)
    new = time.perf_counter() - t0
    sample = addresses[: args.baseline_addresses]
    t0 = time.perf_counter()
    old_found: set[tuple[str, str, str]] = set()
    async with engine.connect() as conn:
        for start in range(0, len(sample), args.batch):
            for m in await old_lookup(conn, ips=sample[start : start + args.batch], at=NOW):
                old_found.add((m.indicator, m.service_id, m.resource_value))
    old = time.perf_counter() - t0
    async with engine.connect() as conn:
        new_found = {
            (m.indicator, m.service_id, m.resource_value)
            for ms in await lookup_batch(conn, [Query("ip", a, NOW) for a in sample])
            for m in ms
        }
    agree = "agree" if new_found == old_found else f"DISAGREE ({len(new_found ^ old_found)} differences)"
    rate_new, rate_old = len(addresses) / new, len(sample) / old
    print(
        f"[{backend}] lookup_batch: {len(addresses)} addresses in batches of {args.batch}: {new:.2f} s,"
        f" {rate_new:,.0f} lookups/s ({held} held by a customer)"
    )
    print(
        f"[{backend}] previous implementation: {len(sample)} addresses: {old:.2f} s, {rate_old:,.0f} lookups/s"
        f" -> lookup_batch {rate_new / rate_old:,.0f}x faster; answers on the sample {agree}"
    )
    print(f"[{backend}] plan: {await probe_plan(engine)}")


async def probe_plan(engine: AsyncEngine) -> str:
    """How the database runs the address probe join (captured from a real lookup_batch, then EXPLAINed)."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if "r.addr_family = p.fam" in statement:
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn:
        await lookup_batch(conn, [Query("ip", f"198.18.0.{i}", NOW) for i in range(200)])
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        raw: Any = (await conn.get_raw_connection()).driver_connection
        statement, parameters = seen[0]
        if engine.dialect.name == "postgresql":
            rows = await raw.fetch("EXPLAIN " + statement, *parameters)
            return " | ".join(r[0].strip() for r in rows if "Scan" in r[0] or "Loop" in r[0] or "Join" in r[0])
        await raw.execute("CREATE TEMP TABLE IF NOT EXISTS inventory_addr_probe (qidx, fam, plen, pkey, qat)")
        cursor = await raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return " | ".join(str(r[-1]) for r in await cursor.fetchall())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=2_500)
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--baseline-addresses", type=int, default=1_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    inv = build_inventory(args.resources, args.customers)
    addresses = build_addresses(inv, args.addresses)
    kinds = {t: sum(1 for r in inv["resources"] if r["type"] == t) for t in ("ip", "cidr")}
    print(f"inventory: {len(inv['customers'])} customers, {len(inv['services'])} services, {kinds}")
    for backend in [b.strip() for b in args.databases.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                engine = create_engine(f"sqlite:///{tmp}/bench.db")
                try:
                    await run_one(backend, engine, inv, addresses, args)
                finally:
                    await engine.dispose()
            continue
        name = f"bench_lookup_{uuid.uuid4().hex[:8]}"
        await _admin(f'CREATE DATABASE "{name}"')
        engine = create_engine(make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False))
        try:
            await run_one(backend, engine, inv, addresses, args)
        finally:
            await engine.dispose()
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
