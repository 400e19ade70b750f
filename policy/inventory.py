"""The inventory: customers, services and the resources (IP, CIDR, domain, mailbox) they held, and when."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import upsert
from core.errors import AbuseDeskError
from policy.tables import customers, resources, services

RESOURCE_TYPES = ("ip", "cidr", "domain", "mailbox")


class InventoryError(AbuseDeskError):
    """The inventory file is not valid; the message names the entry."""


@dataclass(frozen=True)
class Match:
    """An indicator of a report that points at one of our services at the incident time."""

    indicator: str
    service_id: str
    customer_id: str
    resource_type: str
    resource_value: str


def normalize_resource(rtype: str, value: str) -> str:
    """Canonical form used for storage and lookup; ValueError on nonsense."""
    value = value.strip()
    if rtype == "ip":
        return ipaddress.ip_address(value).compressed
    if rtype == "cidr":
        return ipaddress.ip_network(value, strict=False).with_prefixlen
    if rtype == "domain":
        name = value.lower().rstrip(".")
        if not name or " " in name or ("." not in name and name != "localhost"):
            raise ValueError(f"not a domain name: {value!r}")
        return name
    if rtype == "mailbox":
        if "@" not in value:
            raise ValueError(f"not a mailbox: {value!r}")
        return value.lower()
    raise ValueError(f"unknown resource type {rtype!r} (expected one of {', '.join(RESOURCE_TYPES)})")


def _when(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InventoryError(f"{field}: {value!r} is not an ISO 8601 date") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_inventory(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate the inventory JSON of design §5 into table rows; InventoryError names the bad entry."""
    if not isinstance(data, dict):
        raise InventoryError("inventory must be a JSON object with customers, services, resources")
    cust_rows, svc_rows, res_rows = [], [], []
    for i, c in enumerate(data.get("customers", [])):
        if not c.get("id"):
            raise InventoryError(f"customers[{i}]: id is required")
        known = {"id", "name", "email", "phone", "address", "country", "language", "timezone"}
        cust_rows.append(
            {k: str(c.get(k) or "") for k in ("id", "name", "email", "phone", "address", "country")}
            | {
                "language": c.get("language") or None,
                "timezone": c.get("timezone") or None,
                "created_at": _when(c.get("created_at"), f"customers[{i}].created_at"),
                "identity_verified": bool(c.get("identity_verified", False)),
                "extra": {k: v for k, v in c.items() if k not in known | {"created_at", "identity_verified"}},
            }
        )
    for i, s in enumerate(data.get("services", [])):
        if not s.get("id") or not s.get("customer_id"):
            raise InventoryError(f"services[{i}]: id and customer_id are required")
        svc_rows.append(
            {
                "id": str(s["id"]),
                "customer_id": str(s["customer_id"]),
                "kind": str(s.get("kind") or ""),
                "name": str(s.get("name") or ""),
            }
        )
    for i, r in enumerate(data.get("resources", [])):
        try:
            value = normalize_resource(str(r.get("type", "")), str(r.get("value", "")))
        except ValueError as exc:
            raise InventoryError(f"resources[{i}]: {exc}") from exc
        if not r.get("service_id"):
            raise InventoryError(f"resources[{i}]: service_id is required")
        res_rows.append(
            {
                "service_id": str(r["service_id"]),
                "type": r["type"],
                "value": value,
                "valid_from": _when(r.get("valid_from"), f"resources[{i}].valid_from"),
                "valid_to": _when(r.get("valid_to"), f"resources[{i}].valid_to"),
            }
        )
    return cust_rows, svc_rows, res_rows


async def import_inventory(
    conn: AsyncConnection,
    data: dict[str, Any],
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Upsert customers, services and resources (idempotent: importing twice changes nothing).

    `progress`, when given, is called with the number of resources written after each batch.
    """
    cust_rows, svc_rows, res_rows = parse_inventory(data)
    await upsert(conn, customers, cust_rows, ["id"])
    await upsert(conn, services, svc_rows, ["id"])
    # NULL valid_from never conflicts in a unique index: match those by hand, against one read of the table.
    existing: dict[tuple[str, str, str], int] = {}
    if any(r["valid_from"] is None for r in res_rows):
        found = await conn.execute(
            select(resources.c.id, resources.c.service_id, resources.c.type, resources.c.value).where(
                resources.c.valid_from.is_(None)
            )
        )
        existing = {(f.service_id, f.type, f.value): f.id for f in found}
    last = {(r["service_id"], r["type"], r["value"]): i for i, r in enumerate(res_rows) if r["valid_from"] is None}
    for start in range(0, len(res_rows), batch):
        chunk = res_rows[start : start + batch]
        undated = {
            k: r
            for i, r in enumerate(chunk, start)
            if r["valid_from"] is None and last[k := (r["service_id"], r["type"], r["value"])] == i  # last one wins
        }
        updates = [{"rid": existing[k], "vto": r["valid_to"]} for k, r in undated.items() if k in existing]
        if updates:
            await conn.execute(
                resources.update().where(resources.c.id == bindparam("rid")).values(valid_to=bindparam("vto")),
                updates,
            )
        new = [r for k, r in undated.items() if k not in existing]
        if new:
            await conn.execute(resources.insert(), new)
        dated = [r for r in chunk if r["valid_from"] is not None]
        await upsert(conn, resources, dated, ["service_id", "type", "value", "valid_from"])
        if progress is not None:
            progress(min(start + batch, len(res_rows)))
    return {"customers": len(cust_rows), "services": len(svc_rows), "resources": len(res_rows)}


def load_inventory_file(path: str) -> dict[str, Any]:
    """Read an inventory JSON file."""
    with open(path, encoding="utf-8") as fh:
        try:
            data: dict[str, Any] = json.load(fh)
        except json.JSONDecodeError as exc:
            raise InventoryError(f"{path} is not valid JSON: {exc}") from exc
    return data


def _domain_suffixes(name: str) -> list[str]:
    labels = name.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] or [name.lower()]


async def lookup(
    conn: AsyncConnection,
    *,
    ips: Iterable[str] = (),
    domains: Iterable[str] = (),
    mailboxes: Iterable[str] = (),
    at: datetime,
) -> list[Match]:
    """Resources matching the indicators at instant `at` (assignment validity periods respected)."""
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
                Match(text, r.service_id, r.customer_id, r.type, r.value)
                for text, addr in addresses.items()
                if addr.version == net.version and addr in net
            ]
    wanted: dict[str, str] = {}
    for d in domains:
        for suffix in _domain_suffixes(d):
            wanted.setdefault(suffix, d.lower())
    mailbox_list = [m.lower() for m in mailboxes if "@" in m]
    for m in mailbox_list:
        for suffix in _domain_suffixes(m.rsplit("@", 1)[1]):
            wanted.setdefault(suffix, m)
    if wanted:
        rows = await conn.execute(base.where(resources.c.type == "domain", resources.c.value.in_(list(wanted))))
        found += [Match(wanted[r.value], r.service_id, r.customer_id, r.type, r.value) for r in rows]
    if mailbox_list:
        rows = await conn.execute(base.where(resources.c.type == "mailbox", resources.c.value.in_(mailbox_list)))
        found += [Match(r.value, r.service_id, r.customer_id, r.type, r.value) for r in rows]
    return found


async def customer_row(conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
    """The customer file, or None."""
    row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).mappings().first()
    return dict(row) if row else None


async def account_services(conn: AsyncConnection, customer_id: str) -> list[str]:
    """Every service of the customer's account (the policy stops them all)."""
    rows = await conn.execute(select(services.c.id).where(services.c.customer_id == customer_id))
    return sorted(r.id for r in rows)
