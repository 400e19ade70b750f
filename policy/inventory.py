"""The inventory: who held an address, domain or mailbox at a given time, looked up per batch on indexed columns."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import UTCDateTime
from policy.inventory_import import (
    RESOURCE_TYPES,
    InventoryError,
    import_inventory,
    load_inventory_file,
    normalize_resource,
    parse_inventory,
    to_bytes,
)
from policy.tables import customers, resources, services

__all__ = [
    "RESOURCE_TYPES",
    "InventoryError",
    "Match",
    "Query",
    "account_services",
    "account_services_many",
    "customer_row",
    "customers_rows",
    "import_inventory",
    "load_inventory_file",
    "lookup",
    "lookup_batch",
    "normalize_resource",
    "parse_inventory",
]

CHUNK = 1000  # queries per round trip; the probes go through a temporary table or arrays, never one parameter each
TYPE_ORDER = {"mailbox": 0, "ip": 1, "cidr": 2, "domain": 3}


@dataclass(frozen=True)
class Match:
    """An indicator of a report that points at one of our services at the incident time."""

    indicator: str
    service_id: str
    customer_id: str
    resource_type: str
    resource_value: str


@dataclass(frozen=True)
class Query:
    """One thing to look up at its own time: an ip (also inside cidr resources), a domain (or a parent), a mailbox."""

    kind: Literal["ip", "domain", "mailbox"]
    value: str
    at: datetime


# Probe tables: SQLite gets temporary tables (per connection, outside the main database's locks); PostgreSQL
# gets the same rows as arrays through unnest(), five parameters whatever the batch size.
_probes = MetaData()
_addr_probe = Table(
    "inventory_addr_probe",
    _probes,
    Column("qidx", Integer),
    Column("fam", SmallInteger),
    Column("plen", SmallInteger),
    Column("pkey", LargeBinary(16)),
    Column("qat", UTCDateTime),
    prefixes=["TEMPORARY"],
)
_name_probe = Table(
    "inventory_name_probe",
    _probes,
    Column("qidx", Integer),
    Column("rtype", String(16)),
    Column("name", String(320)),
    Column("qat", UTCDateTime),
    prefixes=["TEMPORARY"],
)
_PG_TYPES = {
    "qidx": "INTEGER[]",
    "fam": "SMALLINT[]",
    "plen": "SMALLINT[]",
    "pkey": "BYTEA[]",
    "qat": "TIMESTAMPTZ[]",
    "rtype": "TEXT[]",
    "name": "TEXT[]",
}


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _domain_suffixes(name: str) -> list[str]:
    labels = name.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] or [name.lower().rstrip(".")]


def _indicator(q: Query) -> str:
    if q.kind == "ip":
        addr = _address(q.value)
        return addr.compressed if addr is not None else q.value
    if q.kind == "domain":
        return q.value.strip().lower().rstrip(".")
    return q.value.strip().lower()


async def _prefix_lengths(conn: AsyncConnection) -> dict[int, list[int]]:
    """The prefix lengths held per family: a few index seeks (the next length up), never a scan."""
    found: dict[int, list[int]] = {}
    for family in (4, 6):
        lengths: list[int] = []
        last = -1
        while True:
            nxt = await conn.scalar(
                select(resources.c.prefix_len)
                .where(resources.c.addr_family == family, resources.c.prefix_len > last)
                .order_by(resources.c.prefix_len)
                .limit(1)
            )
            if nxt is None:
                break
            last = int(nxt)
            lengths.append(last)
        if lengths:
            found[family] = lengths
    return found


_VALID = "(r.valid_from IS NULL OR r.valid_from <= p.qat) AND (r.valid_to IS NULL OR r.valid_to > p.qat)"
_SQLITE_SQL = f"""SELECT p.qidx, r.service_id, s.customer_id, r.type, r.value, r.prefix_len
FROM {{probes}} p CROSS JOIN resources r ON {{on}} JOIN services s ON s.id = r.service_id WHERE {_VALID}"""
_PG_SQL = f"""SELECT p.qidx, m.* FROM unnest({{casts}}) AS p({{names}}) CROSS JOIN LATERAL (
SELECT r.service_id, s.customer_id, r.type, r.value, r.prefix_len
FROM resources r JOIN services s ON s.id = r.service_id WHERE {{on}} AND {_VALID} OFFSET 0) m"""
_ADDR_ON = "r.addr_family = p.fam AND r.prefix_len = p.plen AND r.range_start = p.pkey"  # ix_resources_range
_NAME_ON = "r.type = p.rtype AND r.value = p.name"  # ix_resources_type_value


async def _matches(conn: AsyncConnection, table: Table, on: str, rows: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """Join the probe rows with the resources valid at each probe's time, one index seek per probe, never a scan.

    PostgreSQL: the probes are arrays unnest()ed in the FROM clause (one parameter per column, whatever the batch),
    and a LATERAL subquery with OFFSET 0 (not flattened) makes each probe a parametrised index scan; a hash join
    would read every network. SQLite: a temporary table (per connection, outside the main database's locks) and
    CROSS JOIN, which in SQLite keeps the probes as the outer loop (without statistics it would scan resources).
    """
    if not rows:
        return []
    names = [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        casts = ", ".join(f"CAST(:{n} AS {_PG_TYPES[n]})" for n in names)
        stmt = text(_PG_SQL.format(casts=casts, names=", ".join(names), on=on))
        result = await conn.execute(stmt, {n: [r[n] for r in rows] for n in names})
        return [(r.qidx, r) for r in result]
    cols = ", ".join(f"{c.name} {c.type.compile(dialect=conn.dialect)}" for c in table.columns)
    await conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {table.name} ({cols})"))
    await conn.execute(table.delete())
    await conn.execute(table.insert(), rows)
    result = await conn.execute(text(_SQLITE_SQL.format(probes=table.name, on=on)))
    found = [(r.qidx, r) for r in result]
    await conn.execute(table.delete())
    return found


async def _address_matches(
    conn: AsyncConnection, chunk: list[tuple[int, Query]], lengths: dict[int, list[int]]
) -> list[tuple[int, Any]]:
    rows: list[dict[str, Any]] = []
    for idx, q in chunk:
        addr = _address(q.value)
        if addr is None:
            continue
        bits = addr.max_prefixlen
        for plen in lengths.get(addr.version, []):
            net = (int(addr) >> (bits - plen)) << (bits - plen)
            rows.append({"qidx": idx, "fam": addr.version, "plen": plen, "pkey": to_bytes(net), "qat": q.at})
    return await _matches(conn, _addr_probe, _ADDR_ON, rows)


async def _name_matches(conn: AsyncConnection, chunk: list[tuple[int, Query]]) -> list[tuple[int, Any]]:
    rows: list[dict[str, Any]] = []
    for idx, q in chunk:
        name = _indicator(q)
        if q.kind == "mailbox":
            if "@" not in name:
                continue
            rows.append({"qidx": idx, "rtype": "mailbox", "name": name, "qat": q.at})
            name = name.rsplit("@", 1)[1]
        if name:
            rows += [{"qidx": idx, "rtype": "domain", "name": s, "qat": q.at} for s in _domain_suffixes(name)]
    return await _matches(conn, _name_probe, _NAME_ON, rows)


def _specificity(row: Any) -> tuple[int, int, str, str]:
    """Most specific first: a mailbox, then the longest prefix or the longest domain, then ip before cidr."""
    if row.type in ("ip", "cidr"):
        rank = int(row.prefix_len)
    elif row.type == "mailbox":
        rank = 1000
    else:
        rank = row.value.count(".") + 1
    return (-rank, TYPE_ORDER.get(row.type, 9), row.service_id, row.value)


async def lookup_batch(conn: AsyncConnection, queries: Sequence[Query]) -> list[list[Match]]:
    """For each query (same order), every resource that matched it at the query's own time, most specific first.

    Addresses: one equality probe of (family, prefix length, network) per prefix length the inventory holds, on
    ix_resources_range; names: one probe per domain suffix on ix_resources_type_value. Probes go in chunks.
    """
    for q in queries:
        if q.at.tzinfo is None:
            raise ValueError("Query.at must be timezone-aware")
    found: list[list[Any]] = [[] for _ in queries]
    addr_q = [(i, q) for i, q in enumerate(queries) if q.kind == "ip"]
    name_q = [(i, q) for i, q in enumerate(queries) if q.kind in ("domain", "mailbox")]
    lengths = await _prefix_lengths(conn) if addr_q else {}
    for start in range(0, len(addr_q), CHUNK):
        for idx, row in await _address_matches(conn, addr_q[start : start + CHUNK], lengths):
            found[idx].append(row)
    for start in range(0, len(name_q), CHUNK):
        for idx, row in await _name_matches(conn, name_q[start : start + CHUNK]):
            found[idx].append(row)
    out: list[list[Match]] = []
    for q, rows in zip(queries, found, strict=True):
        indicator = _indicator(q)
        ordered = sorted(rows, key=_specificity)
        out.append(list(dict.fromkeys(Match(indicator, r.service_id, r.customer_id, r.type, r.value) for r in ordered)))
    return out


async def lookup(
    conn: AsyncConnection,
    *,
    ips: Iterable[str] = (),
    domains: Iterable[str] = (),
    mailboxes: Iterable[str] = (),
    at: datetime,
) -> list[Match]:
    """Resources matching the indicators at instant `at` (assignment validity periods respected).

    A domain resource is reported once, for the first indicator under it (as the customer count in facts expects).
    """
    queries = list(
        dict.fromkeys(
            [Query("ip", i, at) for i in ips if _address(i) is not None]
            + [Query("domain", d, at) for d in domains if d.strip()]
            + [Query("mailbox", m, at) for m in mailboxes if "@" in m]
        )
    )
    seen_domains: set[tuple[str, str]] = set()
    out: dict[Match, None] = {}
    for matches in await lookup_batch(conn, queries):
        for m in matches:
            if m.resource_type == "domain":
                if (m.service_id, m.resource_value) in seen_domains:
                    continue
                seen_domains.add((m.service_id, m.resource_value))
            out[m] = None
    return list(out)


async def customers_rows(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The customer files of the ids that exist, by id (chunked: any number of ids)."""
    wanted = sorted(set(ids))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = await conn.execute(select(customers).where(customers.c.id.in_(wanted[start : start + CHUNK])))
        out |= {r["id"]: dict(r) for r in rows.mappings()}
    return out


async def customer_row(conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
    """The customer file, or None."""
    return (await customers_rows(conn, [customer_id])).get(customer_id)


async def account_services_many(conn: AsyncConnection, customer_ids: Sequence[str]) -> dict[str, list[str]]:
    """Every service of each customer's account, sorted (an id without services maps to [])."""
    wanted = sorted(set(customer_ids))
    out: dict[str, list[str]] = {c: [] for c in wanted}
    for start in range(0, len(wanted), CHUNK):
        rows = await conn.execute(
            select(services.c.customer_id, services.c.id)
            .where(services.c.customer_id.in_(wanted[start : start + CHUNK]))
            .order_by(services.c.id)
        )
        for r in rows:
            out[r.customer_id].append(r.id)
    return out


async def account_services(conn: AsyncConnection, customer_id: str) -> list[str]:
    """Every service of the customer's account (the policy stops them all)."""
    return (await account_services_many(conn, [customer_id]))[customer_id]
