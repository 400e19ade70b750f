"""Inventory import: the JSON file checked record by record (orphans, duplicates, typos), then written at once."""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import upsert
from core.errors import AbuseDeskError
from policy.tables import customers, resources, services

RESOURCE_TYPES = ("ip", "cidr", "domain", "mailbox")
TOP_LEVEL = ("customers", "services", "resources")
CUSTOMER_FIELDS = ("id", "name", "email", "phone", "address", "country", "language", "timezone", "created_at")
CUSTOMER_KEYS = (*CUSTOMER_FIELDS, "identity_verified")
SERVICE_KEYS = ("id", "customer_id", "kind", "name")
RESOURCE_KEYS = ("service_id", "type", "value", "valid_from", "valid_to")
MAX_LISTED = 20  # errors named in the message; the count says how many more
CHUNK = 1000  # ids per IN (...) when checking references against the database

Rows = list[dict[str, Any]]


class InventoryError(AbuseDeskError):
    """The inventory file is not valid; the message names the entry."""


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


def to_bytes(number: int) -> bytes:
    """An address as the 16 big-endian bytes stored in range_start/range_end (IPv4 left-padded with zeros)."""
    return number.to_bytes(16, "big")


def address_range(rtype: str, value: str) -> dict[str, Any]:
    """The range columns of a normalized resource: family, prefix length, first and last address (None for names)."""
    if rtype not in ("ip", "cidr"):
        return {"addr_family": None, "prefix_len": None, "range_start": None, "range_end": None}
    net = ipaddress.ip_network(value, strict=False)
    return {
        "addr_family": net.version,
        "prefix_len": net.prefixlen,
        "range_start": to_bytes(int(net.network_address)),
        "range_end": to_bytes(int(net.broadcast_address)),
    }


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 date") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _misspelled(record: dict[str, Any], known: Sequence[str]) -> list[str]:
    """Keys that are not ours but look like one of ours (a typo there silently loses the field)."""
    found = []
    for key in record:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.8)
        if close:
            found.append(f"unknown field {key!r} (did you mean {close[0]!r}?)")
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class _Checker:
    """Collects the errors of one file, each naming its record."""

    def __init__(self, errors: list[str] | None = None) -> None:
        self.errors: list[str] = errors or []

    def add(self, label: str, problem: str) -> None:
        self.errors.append(f"{label}: {problem}")

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        listed = self.errors[:MAX_LISTED]
        more = len(self.errors) - len(listed)
        tail = f"\n  … and {more} more" if more else ""
        lines = "\n  ".join(listed)
        raise InventoryError(f"inventory not imported, {len(self.errors)} error(s):\n  {lines}{tail}")


def _sections(data: Any, check: _Checker) -> dict[str, list[Any]]:
    if not isinstance(data, dict):
        check.add("inventory", "must be a JSON object with customers, services, resources")
        return {}
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"expected {', '.join(TOP_LEVEL)}"
            check.add("inventory", f"unknown top-level key {key!r} ({hint})")
    if not any(k in data for k in TOP_LEVEL):
        check.add("inventory", f"none of {', '.join(TOP_LEVEL)} is present")
    out: dict[str, list[Any]] = {}
    for key in TOP_LEVEL:
        section = data.get(key, [])
        if not isinstance(section, list):
            check.add(key, f"must be a list, not {type(section).__name__}")
            section = []
        out[key] = section
    return out


def _customer(i: int, c: Any, seen: dict[str, int], check: _Checker) -> dict[str, Any] | None:
    label = f"customers[{i}]"
    if not isinstance(c, dict):
        check.add(label, "must be an object")
        return None
    cid = _text(c.get("id")).strip()
    if cid:
        label += f" (customer {cid})"
    ok = True
    for problem in _misspelled(c, CUSTOMER_KEYS):
        check.add(label, problem)
        ok = False
    if not cid:
        check.add(label, "id is required")
        return None
    if cid in seen:
        check.add(label, f"duplicate customer id {cid} (first at customers[{seen[cid]}])")
        ok = False
    else:
        seen[cid] = i
    verified = c.get("identity_verified", False)
    if verified is None:
        verified = False
    if not isinstance(verified, bool):
        check.add(label, f"identity_verified must be true or false, not {json.dumps(verified)}")
        ok = False
    try:
        created = _when(c.get("created_at"))
    except ValueError as exc:
        check.add(label, f"created_at: {exc}")
        ok = False
    if not ok:
        return None
    return {k: _text(c.get(k)) for k in ("name", "email", "phone", "address", "country")} | {
        "id": cid,
        "language": c.get("language") or None,
        "timezone": c.get("timezone") or None,
        "created_at": created,
        "identity_verified": verified,
        "extra": {k: v for k, v in c.items() if k not in CUSTOMER_KEYS},
    }


def _service(i: int, s: Any, seen: dict[str, int], check: _Checker) -> dict[str, Any] | None:
    label = f"services[{i}]"
    if not isinstance(s, dict):
        check.add(label, "must be an object")
        return None
    sid, cid = _text(s.get("id")).strip(), _text(s.get("customer_id")).strip()
    if sid:
        label += f" (service {sid})"
    problems = _misspelled(s, SERVICE_KEYS)
    if not sid or not cid:
        problems.append("id and customer_id are required")
    elif sid in seen:
        problems.append(f"duplicate service id {sid} (first at services[{seen[sid]}])")
    else:
        seen[sid] = i
    for problem in problems:
        check.add(label, problem)
    if problems:
        return None
    return {"id": sid, "customer_id": cid, "kind": _text(s.get("kind")), "name": _text(s.get("name"))}


def _resource(i: int, r: Any, seen: dict[tuple[Any, ...], int], check: _Checker) -> dict[str, Any] | None:
    label = f"resources[{i}]"
    if not isinstance(r, dict):
        check.add(label, "must be an object")
        return None
    sid = _text(r.get("service_id")).strip()
    if sid:
        label += f" (service {sid})"
    problems = _misspelled(r, RESOURCE_KEYS)
    if not sid:
        problems.append("service_id is required")
    rtype = _text(r.get("type"))
    try:
        value = normalize_resource(rtype, _text(r.get("value")))
    except ValueError as exc:
        problems.append(str(exc))
        value = ""
    dates: dict[str, datetime | None] = {}
    for field in ("valid_from", "valid_to"):
        try:
            dates[field] = _when(r.get(field))
        except ValueError as exc:
            problems.append(f"{field}: {exc}")
    start, end = dates.get("valid_from"), dates.get("valid_to")
    if start is not None and end is not None and end <= start:
        problems.append(f"valid_to {end.isoformat()} is not after valid_from {start.isoformat()}")
    key = (sid, rtype, value, start)
    if not problems and key in seen:
        problems.append(f"duplicate of resources[{seen[key]}] ({rtype} {value})")
    for problem in problems:
        check.add(label, problem)
    if problems:
        return None
    seen[key] = i
    return {"service_id": sid, "type": rtype, "value": value, "valid_from": start, "valid_to": end} | address_range(
        rtype, value
    )


def check_records(data: Any) -> tuple[tuple[Rows, Rows, Rows], list[str]]:
    """Table rows of the valid records and the problems of the others (pure: references to the database apart)."""
    check = _Checker()
    sections = _sections(data, check)
    seen_c: dict[str, int] = {}
    seen_s: dict[str, int] = {}
    seen_r: dict[tuple[Any, ...], int] = {}
    cust = [row for i, c in enumerate(sections.get("customers", [])) if (row := _customer(i, c, seen_c, check))]
    svc = [row for i, s in enumerate(sections.get("services", [])) if (row := _service(i, s, seen_s, check))]
    res = [row for i, r in enumerate(sections.get("resources", [])) if (row := _resource(i, r, seen_r, check))]
    return (cust, svc, res), check.errors


def parse_inventory(data: Any) -> tuple[Rows, Rows, Rows]:
    """Validate the inventory JSON of design §5 into table rows; InventoryError names every bad entry."""
    rows, errors = check_records(data)
    _Checker(errors).raise_if_any()
    return rows


async def _existing(conn: AsyncConnection, column: Any, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        rows = await conn.execute(select(column).where(column.in_(wanted[start : start + CHUNK])))
        found |= {r[0] for r in rows}
    return found


def _ids(section: Any, field: str) -> set[str]:
    if not isinstance(section, list):
        return set()
    return {_text(x.get(field)).strip() for x in section if isinstance(x, dict)} - {""}


async def _orphans(conn: AsyncConnection, data: Any) -> list[str]:
    """Services whose customer and resources whose service exist neither in the file nor in the database."""
    sections = data if isinstance(data, dict) else {}
    svc, res = sections.get("services"), sections.get("resources")
    in_file_c, in_file_s = _ids(sections.get("customers"), "id"), _ids(svc, "id")
    known_c = in_file_c | await _existing(conn, customers.c.id, _ids(svc, "customer_id") - in_file_c)
    known_s = in_file_s | await _existing(conn, services.c.id, _ids(res, "service_id") - in_file_s)
    errors = []
    for i, s in enumerate(svc if isinstance(svc, list) else []):
        if isinstance(s, dict) and (cid := _text(s.get("customer_id")).strip()) and cid not in known_c:
            errors.append(f"services[{i}] (service {_text(s.get('id')).strip()}): customer {cid} does not exist")
    for i, r in enumerate(res if isinstance(res, list) else []):
        if isinstance(r, dict) and (sid := _text(r.get("service_id")).strip()) and sid not in known_s:
            errors.append(f"resources[{i}] (service {sid}): service {sid} does not exist")
    return errors


async def import_inventory(
    conn: AsyncConnection,
    data: Any,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Check the whole file, then upsert customers, services and resources (importing twice changes nothing).

    Any error raises InventoryError before anything is written; the caller's transaction makes the writes one.
    `progress`, when given, is called with the number of resources written after each batch.
    """
    (cust_rows, svc_rows, res_rows), errors = check_records(data)
    _Checker(errors + await _orphans(conn, data)).raise_if_any()
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
    for start in range(0, len(res_rows), batch):
        chunk = res_rows[start : start + batch]
        undated = {(r["service_id"], r["type"], r["value"]): r for r in chunk if r["valid_from"] is None}
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


def load_inventory_file(path: str) -> Any:
    """Read an inventory JSON file."""
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as exc:
            raise InventoryError(f"{path} is not valid JSON: {exc}") from exc
