"""The inventory on SQLite and PostgreSQL: indexed batch lookups at each query's time; an all-or-nothing import."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import alembic_config, upgrade
from core.db import create_engine
from core.settings import Settings
from policy.inventory import (
    InventoryError,
    Match,
    Query,
    account_services,
    account_services_many,
    customer_row,
    customers_rows,
    import_inventory,
    lookup,
    lookup_batch,
)
from policy.tables import customers, resources, services
from tests.conftest import PG_URL, _pg_admin

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)  # the module's database, emptied of inventory for each test
    await upgrade(eng)
    async with eng.begin() as conn:
        for table in (resources, services, customers):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


def inventory(
    resources_: list[dict[str, Any]], customers_: int = 3, services_: dict[str, str] | None = None
) -> dict[str, Any]:
    cust = [{"id": f"C{i}", "name": f"Customer {i}", "identity_verified": True} for i in range(1, customers_ + 1)]
    svc = services_ or {f"S{i}": f"C{i}" for i in range(1, customers_ + 1)}
    return {
        "customers": cust,
        "services": [{"id": s, "customer_id": c} for s, c in svc.items()],
        "resources": resources_,
    }


async def load(engine: AsyncEngine, data: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await import_inventory(conn, data)


async def batch(engine: AsyncEngine, queries: list[Query]) -> list[list[Match]]:
    async with engine.connect() as conn:
        return await lookup_batch(conn, queries)


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


# --- lookups --------------------------------------------------------------------------------------------------


async def test_an_address_in_nested_networks_matches_every_holder_most_specific_first(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "cidr", "value": "198.51.100.0/24"},
                {"service_id": "S2", "type": "cidr", "value": "198.51.100.64/26"},
                {"service_id": "S3", "type": "ip", "value": "198.51.100.70"},
            ]
        ),
    )
    [inside_all, inside_two, only_24, outside] = await batch(
        engine,
        [Query("ip", a, NOW) for a in ("198.51.100.70", "198.51.100.127", "198.51.100.1", "198.51.101.1")],
    )
    assert [(m.service_id, m.resource_value) for m in inside_all] == [
        ("S3", "198.51.100.70"),
        ("S2", "198.51.100.64/26"),
        ("S1", "198.51.100.0/24"),
    ]
    assert [m.service_id for m in inside_two] == ["S2", "S1"]
    assert [m.service_id for m in only_24] == ["S1"]
    assert outside == []
    assert inside_all[0] == Match("198.51.100.70", "S3", "C3", "ip", "198.51.100.70")


async def test_ipv6_addresses_match_their_networks_and_never_ipv4_ones(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "cidr", "value": "2001:db8::/48"},
                {"service_id": "S2", "type": "cidr", "value": "2001:db8:0:5::/64"},
                {"service_id": "S3", "type": "cidr", "value": "0.0.0.0/0"},
            ]
        ),
    )
    [deep, shallow, other, v4] = await batch(
        engine,
        [
            Query("ip", "2001:DB8:0:5::1", NOW),
            Query("ip", "2001:db8:0:ffff::1", NOW),
            Query("ip", "2001:db9::1", NOW),
            Query("ip", "203.0.113.5", NOW),
        ],
    )
    assert [m.service_id for m in deep] == ["S2", "S1"]
    assert deep[0].indicator == "2001:db8:0:5::1"
    assert [m.service_id for m in shallow] == ["S1"]
    assert other == []
    assert [m.service_id for m in v4] == ["S3"]


async def test_each_query_is_checked_against_its_own_time(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "ip", "value": "203.0.113.9", "valid_to": "2024-01-01T00:00:00Z"},
                {"service_id": "S2", "type": "ip", "value": "203.0.113.9", "valid_from": "2024-01-01T00:00:00Z"},
                {
                    "service_id": "S3",
                    "type": "cidr",
                    "value": "203.0.113.0/28",
                    "valid_from": "2023-01-01T00:00:00Z",
                    "valid_to": "2025-01-01T00:00:00Z",
                },
            ]
        ),
    )
    times = [datetime(2022, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC), NOW]
    found = await batch(engine, [Query("ip", "203.0.113.9", t) for t in times])
    assert [[m.customer_id for m in ms] for ms in found] == [["C1"], ["C2", "C3"], ["C2"]]


async def test_a_domain_matches_itself_and_its_subdomains_never_a_lookalike(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "domain", "value": "shop.example"},
                {"service_id": "S2", "type": "domain", "value": "blog.shop.example"},
            ]
        ),
    )
    [own, deep, lookalike, parent] = await batch(
        engine,
        [
            Query("domain", "Shop.Example.", NOW),
            Query("domain", "www.blog.shop.example", NOW),
            Query("domain", "notshop.example", NOW),
            Query("domain", "example", NOW),
        ],
    )
    assert [m.service_id for m in own] == ["S1"]
    assert [(m.service_id, m.indicator) for m in deep] == [
        ("S2", "www.blog.shop.example"),
        ("S1", "www.blog.shop.example"),
    ]
    assert lookalike == [] and parent == []


async def test_a_mailbox_matches_its_mailbox_resource_then_its_domain(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "domain", "value": "mail.example"},
                {"service_id": "S2", "type": "mailbox", "value": "Bob@Mail.Example"},
            ]
        ),
    )
    [bob, alice] = await batch(
        engine, [Query("mailbox", "bob@mail.example", NOW), Query("mailbox", "a@mail.example", NOW)]
    )
    assert [(m.service_id, m.resource_type) for m in bob] == [("S2", "mailbox"), ("S1", "domain")]
    assert [(m.service_id, m.indicator) for m in alice] == [("S1", "a@mail.example")]


async def test_a_batch_beyond_postgresqls_parameter_limit_comes_back_in_query_order(engine: AsyncEngine) -> None:
    rows = [{"service_id": f"S{i % 3 + 1}", "type": "cidr", "value": f"198.18.{i}.0/28"} for i in range(200)]
    await load(engine, inventory(rows))
    queries = [Query("ip", f"198.18.{i % 256}.{i % 20}", NOW) for i in range(40_000)]  # > 32,767 parameters
    found = await batch(engine, queries)
    assert len(found) == len(queries)
    for i, matches in enumerate(found):
        held = i % 256 < 200 and i % 20 < 16
        assert [m.service_id for m in matches] == ([f"S{i % 256 % 3 + 1}"] if held else []), i


async def test_the_old_lookup_api_answers_from_the_batch_lookup(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [
                {"service_id": "S1", "type": "ip", "value": "203.0.113.10"},
                {"service_id": "S2", "type": "cidr", "value": "203.0.113.0/24"},
                {"service_id": "S3", "type": "domain", "value": "shop.example"},
            ]
        ),
    )
    async with engine.connect() as conn:
        found = await lookup(
            conn,
            ips=["203.0.113.10", "203.0.113.10", "not-an-ip"],
            domains=["a.shop.example", "b.shop.example"],
            mailboxes=["x@shop.example"],
            at=NOW,
        )
    assert found == [
        Match("203.0.113.10", "S1", "C1", "ip", "203.0.113.10"),
        Match("203.0.113.10", "S2", "C2", "cidr", "203.0.113.0/24"),
        Match("a.shop.example", "S3", "C3", "domain", "shop.example"),  # one domain resource counts once
    ]


@pytest.mark.databases("sqlite")
async def test_address_and_name_probes_seek_the_indexes_of_resources_never_scan_it(engine: AsyncEngine) -> None:
    await load(
        engine,
        inventory(
            [{"service_id": "S1", "type": "cidr", "value": f"198.18.{i}.0/29"} for i in range(50)]
            + [{"service_id": "S2", "type": "domain", "value": "shop.example"}]
        ),
    )
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if "r.addr_family = p.fam" in statement or "r.type = p.rtype" in statement:
            seen.append((statement, parameters))

    async with engine.connect() as conn:
        await lookup_batch(conn, [Query("ip", "198.18.1.1", NOW), Query("domain", "www.shop.example", NOW)])
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        plans = []
        for statement, parameters in seen:
            await raw.execute("CREATE TEMP TABLE IF NOT EXISTS inventory_addr_probe (qidx, fam, plen, pkey, qat)")
            await raw.execute("CREATE TEMP TABLE IF NOT EXISTS inventory_name_probe (qidx, rtype, name, qat)")
            cursor = await raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append(" | ".join(str(row[-1]) for row in await cursor.fetchall()))
    assert len(plans) == 2
    assert "SEARCH r USING INDEX ix_resources_range" in plans[0], plans[0]
    assert "SEARCH r USING INDEX ix_resources_type_value" in plans[1], plans[1]
    assert not any("SCAN r" in p for p in plans), plans


async def test_customer_files_and_account_services_come_in_one_batch(engine: AsyncEngine) -> None:
    await load(engine, inventory([], customers_=3, services_={"S1": "C1", "S1b": "C1", "S2": "C2"}))
    async with engine.connect() as conn:
        rows = await customers_rows(conn, ["C2", "C1", "C9", "C1"])
        many = await account_services_many(conn, ["C1", "C2", "C3"])
        one = await customer_row(conn, "C1")
        single = await account_services(conn, "C1")
    assert sorted(rows) == ["C1", "C2"] and rows["C2"]["name"] == "Customer 2"
    assert many == {"C1": ["S1", "S1b"], "C2": ["S2"], "C3": []}
    assert one is not None and one["identity_verified"] is True
    assert single == ["S1", "S1b"]


def _upgrade_to(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@pytest.fixture
async def fresh_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the test's own (the migration test starts below this revision)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    name = f"abuse_desk_inv_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield str(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_migration_fills_ranges_of_resources_imported_before_it(fresh_url: str) -> None:
    eng = create_engine(fresh_url)
    try:
        async with eng.begin() as conn:
            await conn.run_sync(_upgrade_to, "0005")
            await conn.execute(text("INSERT INTO services (id, customer_id, kind, name) VALUES ('OS1', 'OC1', '', '')"))
            await conn.execute(
                text(
                    "INSERT INTO resources (service_id, type, value) VALUES"
                    " ('OS1', 'cidr', '192.0.2.0/26'), ('OS1', 'ip', '2001:db8::7'), ('OS1', 'domain', 'old.example')"
                )
            )
        await upgrade(eng)
        async with eng.connect() as conn:
            [net, v6] = await lookup_batch(conn, [Query("ip", "192.0.2.33", NOW), Query("ip", "2001:db8::7", NOW)])
            filled = await conn.scalar(select(func.count()).where(resources.c.range_start.is_not(None)))
        assert [m.resource_value for m in net] == ["192.0.2.0/26"]
        assert [m.resource_value for m in v6] == ["2001:db8::7"]
        assert filled == 2
    finally:
        await eng.dispose()


# --- import ---------------------------------------------------------------------------------------------------


async def rejected(engine: AsyncEngine, data: Any) -> str:
    async with engine.begin() as conn:
        with pytest.raises(InventoryError) as info:
            await import_inventory(conn, data)
    return str(info.value)


async def test_a_resource_on_a_service_that_does_not_exist_is_rejected_by_name(engine: AsyncEngine) -> None:
    data = inventory([{"service_id": "S1", "type": "ip", "value": "192.0.2.1"}] * 1)
    data["resources"] += [{"service_id": "S9", "type": "ip", "value": "192.0.2.2"}]
    message = await rejected(engine, data)
    assert "resources[1] (service S9): service S9 does not exist" in message
    assert await count(engine, customers) == 0 and await count(engine, resources) == 0


async def test_a_service_of_a_customer_that_does_not_exist_is_rejected_by_name(engine: AsyncEngine) -> None:
    data = inventory([], services_={"S1": "C1", "S2": "C7"})
    message = await rejected(engine, data)
    assert "services[1] (service S2): customer C7 does not exist" in message
    assert await count(engine, services) == 0


async def test_references_to_records_already_in_the_database_are_accepted(engine: AsyncEngine) -> None:
    await load(engine, inventory([]))
    later = {
        "services": [{"id": "S4", "customer_id": "C1"}],
        "resources": [
            {"service_id": "S2", "type": "ip", "value": "192.0.2.5"},
            {"service_id": "S4", "type": "domain", "value": "four.example"},
        ],
    }
    await load(engine, later)
    [found] = await batch(engine, [Query("ip", "192.0.2.5", NOW)])
    assert [m.customer_id for m in found] == ["C2"]


async def test_duplicates_in_the_file_are_rejected_with_both_positions(engine: AsyncEngine) -> None:
    data = inventory(
        [
            {"service_id": "S1", "type": "ip", "value": "192.0.2.1"},
            {"service_id": "S1", "type": "ip", "value": " 192.0.2.1 "},
        ]
    )
    data["customers"].append({"id": "C1", "name": "again"})
    data["services"].append({"id": "S2", "customer_id": "C1"})
    message = await rejected(engine, data)
    assert "customers[3] (customer C1): duplicate customer id C1 (first at customers[0])" in message
    assert "services[3] (service S2): duplicate service id S2 (first at services[1])" in message
    assert "resources[1] (service S1): duplicate of resources[0] (ip 192.0.2.1)" in message


async def test_a_misspelled_top_level_key_is_an_error_not_zero_customers(engine: AsyncEngine) -> None:
    message = await rejected(engine, {"customer": [{"id": "C1"}], "services": [], "resources": []})
    assert "unknown top-level key 'customer' (did you mean 'customers'?)" in message
    assert await count(engine, customers) == 0


async def test_identity_verified_as_the_string_false_is_rejected_never_stored_true(engine: AsyncEngine) -> None:
    data = inventory([])
    data["customers"][1]["identity_verified"] = "false"
    message = await rejected(engine, data)
    assert 'customers[1] (customer C2): identity_verified must be true or false, not "false"' in message
    data["customers"][1]["identity_verified"] = False
    data["customers"][2].pop("identity_verified")
    await load(engine, data)
    async with engine.connect() as conn:
        rows = await customers_rows(conn, ["C1", "C2", "C3"])
    assert [rows[c]["identity_verified"] for c in ("C1", "C2", "C3")] == [True, False, False]


async def test_a_file_with_one_error_imports_nothing_through_the_command(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    from abuse_desk import ops  # the composition root, imported where it is used; `engine` empties the inventory

    data = inventory([{"service_id": "S1", "type": "ip", "value": "192.0.2.1"}])
    data["resources"].append({"service_id": "S1", "type": "ip", "value": "192.0.2.300"})
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InventoryError, match=r"resources\[1\] \(service S1\)"):
        await ops.import_inventory(settings, str(path))
    eng = create_engine(settings.database_url)
    try:
        assert await count(eng, customers) == 0 and await count(eng, services) == 0
        assert await count(eng, resources) == 0
        data["resources"].pop()
        path.write_text(json.dumps(data), encoding="utf-8")
        assert await ops.import_inventory(settings, str(path)) == {"customers": 3, "services": 3, "resources": 1}
        assert await ops.import_inventory(settings, str(path)) == {"customers": 3, "services": 3, "resources": 1}
        assert await count(eng, resources) == 1  # importing twice changes nothing
    finally:
        async with eng.begin() as conn:
            for table in (resources, services, customers):
                await conn.execute(table.delete())
        await eng.dispose()
