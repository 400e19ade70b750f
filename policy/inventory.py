"""The inventory: who held an address, domain or mailbox at a given time, looked up per batch on indexed columns."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import TextClause, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

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


# Probe columns (name, SQLite type, PostgreSQL array type). SQLite gets temporary tables (per connection, outside the
# main database's locks); PostgreSQL gets the same columns as arrays through unnest(), whatever the batch size.
_ADDR_PROBE = (
    "inventory_addr_probe",
    (
        ("qidx", "INTEGER", "INTEGER[]"),
        ("fam", "INTEGER", "SMALLINT[]"),
        ("plen", "INTEGER", "SMALLINT[]"),
        ("pkey", "BLOB", "BYTEA[]"),
        ("qat", "TIMESTAMP", "TIMESTAMPTZ[]"),
    ),
)
_NAME_PROBE = (
    "inventory_name_probe",
    (
        ("qidx", "INTEGER", "INTEGER[]"),
        ("rtype", "VARCHAR(16)", "TEXT[]"),
        ("name", "VARCHAR(320)", "TEXT[]"),
        ("qat", "TIMESTAMP", "TIMESTAMPTZ[]"),
    ),
)
Probe = tuple[str, tuple[tuple[str, str, str], ...]]
AddrKey = tuple[int, int, datetime]  # family, address as an integer, time
NameKey = tuple[str, str, datetime]  # kind, normalized name, time


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


# A loose index scan: from each family, the next prefix length up, one index seek at a time, in one round trip.
_LENGTHS_SQL = """WITH RECURSIVE l(fam, plen) AS (
  VALUES (4, -1), (6, -1)
  UNION ALL
  SELECT l.fam, (SELECT r.prefix_len FROM resources r WHERE r.addr_family = l.fam AND r.prefix_len > l.plen
                 ORDER BY r.prefix_len LIMIT 1)
  FROM l WHERE l.plen IS NOT NULL
)
SELECT fam, plen FROM l WHERE plen >= 0 ORDER BY fam, plen"""
_LENGTHS = text(_LENGTHS_SQL)


async def _prefix_lengths(conn: AsyncConnection) -> dict[int, list[int]]:
    """The prefix lengths the inventory holds per family (a few index seeks on ix_resources_range, never a scan)."""
    found: dict[int, list[int]] = {}
    for fam, plen in await conn.execute(_LENGTHS):
        found.setdefault(int(fam), []).append(int(plen))
    return found


_VALID = "(r.valid_from IS NULL OR r.valid_from <= p.qat) AND (r.valid_to IS NULL OR r.valid_to > p.qat)"
_SQLITE_SQL = f"""SELECT p.qidx, r.service_id, s.customer_id, r.type, r.value, r.prefix_len
FROM {{probes}} p CROSS JOIN resources r ON {{on}} JOIN services s ON s.id = r.service_id WHERE {_VALID}"""
_PG_SQL = f"""SELECT p.qidx, m.* FROM unnest({{casts}}) AS p({{names}}) CROSS JOIN LATERAL (
SELECT r.service_id, s.customer_id, r.type, r.value, r.prefix_len
FROM resources r JOIN services s ON s.id = r.service_id WHERE {{on}} AND {_VALID} OFFSET 0) m"""
_INLINE_PARAMETERS = 900  # SQLite: probes bound inline up to this many parameters (its oldest limit is 999)
_ADDR_ON = "r.addr_family = p.fam AND r.prefix_len = p.plen AND r.range_start = p.pkey"  # ix_resources_range
_NAME_ON = "r.type = p.rtype AND r.value = p.name"  # ix_resources_type_value


async def _matches(conn: AsyncConnection, probe: Probe, on: str, data: dict[str, list[Any]]) -> list[Any]:
    """Join the probe rows with the resources valid at each probe's time, one index seek per probe, never a scan.

    PostgreSQL: the probes are arrays unnest()ed in the FROM clause (one parameter per column, whatever the batch),
    and a LATERAL subquery with OFFSET 0 (not flattened) makes each probe a parametrised index scan; a hash join
    would read every network. SQLite: the probes inline in a VALUES common table expression when they fit in
    `_INLINE_PARAMETERS` (one statement: the usual report), else a temporary table (per connection, outside the
    main database's locks); then CROSS JOIN, which in SQLite keeps the probes as the outer loop (without
    statistics it would scan resources).
    """
    if not data["qidx"]:
        return []
    table, columns = probe
    names = [c[0] for c in columns]
    if conn.dialect.name == "postgresql":
        return list(await conn.execute(_pg_matches(probe, on), data))
    to_db = _sqlite_time(conn)
    data = data | {"qat": [to_db(t) for t in data["qat"]]}
    rows = list(zip(*(data[n] for n in names), strict=True))
    marks = ", ".join("?" for _ in names)
    if len(rows) * len(names) <= _INLINE_PARAMETERS:  # the usual report: one statement, the probes inline
        values = ", ".join([f"({marks})"] * len(rows))
        sql = f"WITH p({', '.join(names)}) AS (VALUES {values}) " + _SQLITE_SQL.format(probes="p", on=on)
        return list(await conn.exec_driver_sql(sql, tuple(v for row in rows for v in row)))
    await conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {table} ({', '.join(f'{n} {t}' for n, t, _ in columns)})"
    )
    await conn.exec_driver_sql(f"DELETE FROM {table}")
    await conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({marks})", rows)
    found = list(await conn.execute(text(_SQLITE_SQL.format(probes=table, on=on))))
    await conn.exec_driver_sql(f"DELETE FROM {table}")
    return found


@functools.cache
def _pg_matches(probe: Probe, on: str) -> TextClause:
    """The PostgreSQL statement of one kind of probe (two kinds: built once each)."""
    _table, columns = probe
    casts = ", ".join(f"CAST(:{n} AS {pg})" for n, _lite, pg in columns)
    return text(_PG_SQL.format(casts=casts, names=", ".join(c[0] for c in columns), on=on))


def _sqlite_time(conn: AsyncConnection) -> Callable[[datetime], Any]:
    """A datetime as SQLite stores a UTCDateTime column (so that it compares with valid_from/valid_to), memoised."""
    process: Callable[[Any], Any] | None = resources.c.valid_from.type.bind_processor(conn.dialect)
    cache: dict[datetime, Any] = {}

    def convert(t: datetime) -> Any:
        if t not in cache:
            cache[t] = process(t) if process else t
        return cache[t]

    return convert


async def _address_matches(
    conn: AsyncConnection, keys: list[AddrKey], lengths: dict[int, list[int]]
) -> list[tuple[int, Any]]:
    data: dict[str, list[Any]] = {"qidx": [], "fam": [], "plen": [], "pkey": [], "qat": []}
    for idx, (fam, number, at) in enumerate(keys):
        bits = 32 if fam == 4 else 128
        for plen in lengths.get(fam, []):
            data["qidx"].append(idx)
            data["fam"].append(fam)
            data["plen"].append(plen)
            data["pkey"].append(to_bytes((number >> (bits - plen)) << (bits - plen)))
            data["qat"].append(at)
    return [(r.qidx, r) for r in await _matches(conn, _ADDR_PROBE, _ADDR_ON, data)]


async def _name_matches(conn: AsyncConnection, keys: list[NameKey]) -> list[tuple[int, Any]]:
    data: dict[str, list[Any]] = {"qidx": [], "rtype": [], "name": [], "qat": []}
    for idx, (kind, name, at) in enumerate(keys):
        probes = [("mailbox", name)] if kind == "mailbox" else []
        domain = name.rsplit("@", 1)[1] if kind == "mailbox" else name
        probes += [("domain", suffix) for suffix in _domain_suffixes(domain)] if domain else []
        for rtype, value in probes:
            data["qidx"].append(idx)
            data["rtype"].append(rtype)
            data["name"].append(value)
            data["qat"].append(at)
    return [(r.qidx, r) for r in await _matches(conn, _NAME_PROBE, _NAME_ON, data)]


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
    ix_resources_range; names: one probe per domain suffix on ix_resources_type_value. The same (value, time) asked
    twice is probed once; probes go in chunks of CHUNK distinct queries.
    """
    indicators: list[str] = []
    addr_keys: dict[AddrKey, list[int]] = {}
    name_keys: dict[NameKey, list[int]] = {}
    for i, q in enumerate(queries):
        if q.at.tzinfo is None:
            raise ValueError("Query.at must be timezone-aware")
        if q.kind == "ip":
            addr = _address(q.value)
            indicators.append(addr.compressed if addr is not None else q.value)
            if addr is not None:
                addr_keys.setdefault((addr.version, int(addr), q.at), []).append(i)
            continue
        name = q.value.strip().lower().rstrip(".") if q.kind == "domain" else q.value.strip().lower()
        indicators.append(name)
        if name and (q.kind == "domain" or "@" in name):
            name_keys.setdefault((q.kind, name, q.at), []).append(i)
    found: list[list[Any]] = [[] for _ in queries]
    lengths = await _prefix_lengths(conn) if addr_keys else {}
    addr_list, name_list = list(addr_keys), list(name_keys)
    for start in range(0, len(addr_list), CHUNK):
        chunk = addr_list[start : start + CHUNK]
        for idx, row in await _address_matches(conn, chunk, lengths):
            for i in addr_keys[chunk[idx]]:
                found[i].append(row)
    for start in range(0, len(name_list), CHUNK):
        names = name_list[start : start + CHUNK]
        for idx, row in await _name_matches(conn, names):
            for i in name_keys[names[idx]]:
                found[i].append(row)
    out: list[list[Match]] = []
    for indicator, rows in zip(indicators, found, strict=True):
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


_CUSTOMERS = select(customers).where(customers.c.id.in_(bindparam("ids", expanding=True)))  # built once
_CUSTOMERS_LOCKED = _CUSTOMERS.order_by(customers.c.id).with_for_update()  # in one order: no deadlock
_SERVICES = (
    select(services.c.customer_id, services.c.id)
    .where(services.c.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(services.c.id)
)


async def customers_rows(conn: AsyncConnection, ids: Sequence[str], *, lock: bool = False) -> dict[str, dict[str, Any]]:
    """The customer files of the ids that exist, by id (chunked: any number of ids); `lock`: FOR UPDATE, in id
    order (PostgreSQL)."""
    wanted = sorted(set(ids))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = await conn.execute(_CUSTOMERS_LOCKED if lock else _CUSTOMERS, {"ids": wanted[start : start + CHUNK]})
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
        for r in await conn.execute(_SERVICES, {"ids": wanted[start : start + CHUNK]}):
            out[r.customer_id].append(r.id)
    return out


async def account_services(conn: AsyncConnection, customer_id: str) -> list[str]:
    """Every service of the customer's account (the policy stops them all)."""
    return (await account_services_many(conn, [customer_id]))[customer_id]
