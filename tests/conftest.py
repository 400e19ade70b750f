"""Shared fixtures: per-test settings (own broker prefix, own database on SQLite and PostgreSQL), service checks."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from core.broker import Broker
from core.settings import Settings, load_settings

AMQP_URL = os.environ.get("ABUSE_DESK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_URL = os.environ.get("ABUSE_DESK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DATABASES = ("sqlite", "postgresql")


def default_databases() -> str:
    """Both backends in CI (PostgreSQL missing there is a failure); elsewhere PostgreSQL only when it answers."""
    if os.environ.get("ABUSE_DESK_TEST_DATABASES"):
        return os.environ["ABUSE_DESK_TEST_DATABASES"]
    if os.environ.get("CI") or service_up("127.0.0.1", 5432):
        return ",".join(DATABASES)
    return "sqlite"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default=None,
        help="comma-separated backends the database-backed tests run on (default: sqlite,postgresql; outside CI"
        " sqlite alone when no PostgreSQL answers on 127.0.0.1:5432)",
    )


def chosen_databases(config: pytest.Config) -> str:
    return str(config.getoption("--databases") or default_databases())


def pytest_report_header(config: pytest.Config) -> str:
    chosen = chosen_databases(config)
    note = "" if "postgresql" in chosen else " (no PostgreSQL on 127.0.0.1:5432: its runs are left out, not in CI)"
    return f"abuse-desk database backends: {chosen}{note}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test needing a database (`db_backend`, through `settings` or `database_url`) runs on each backend."""
    if "db_backend" in metafunc.fixturenames:
        chosen = [b.strip() for b in chosen_databases(metafunc.config).split(",") if b.strip()]
        unknown = set(chosen) - set(DATABASES)
        if unknown:
            raise pytest.UsageError(f"--databases: unknown backend(s) {sorted(unknown)}; choose from {DATABASES}")
        marker = metafunc.definition.get_closest_marker("databases")
        if marker is not None:  # e.g. replicas need PostgreSQL: @pytest.mark.databases("postgresql")
            chosen = [b for b in chosen if b in marker.args]
        metafunc.parametrize("db_backend", chosen, scope="module")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "databases(*names): run only on these database backends")


@pytest.fixture(scope="module")
def database_url(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the module's own: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/abuse-desk.db"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"abuse_desk_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(statement: str) -> None:
    import asyncpg

    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def service_up(host: str, port: int) -> bool:
    """True when something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail loudly (never skip) when a service the test needs is down."""
    if not service_up(host, port):
        pytest.fail(f"{name} is not reachable on {host}:{port}: start it (see README, 'Tests')", pytrace=False)


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    """The first port the kernel may give an outgoing connection (Linux's default when it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range: an outgoing connection cannot take it before the test
    binds it (a port the kernel chose with bind(0) can be, and was: 'Address already in use' in CI)."""
    low = _ephemeral_low()
    for _ in range(2000):
        port = random.randrange(10000, max(low, 10001))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port below {low} on 127.0.0.1")


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def settings(tmp_path: Path, prefix: str, db_backend: str, database_url: str) -> Settings:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    url = f"sqlite:///{tmp_path}/abuse-desk.db" if db_backend == "sqlite" else database_url  # SQLite: one per test
    return load_settings(
        environ={
            "ABUSE_DESK_AMQP_URL": AMQP_URL,
            "ABUSE_DESK_DATABASE_URL": url,
            "ABUSE_DESK_SMTP_LISTEN": f"127.0.0.1:{free_port()}",
            "ABUSE_DESK_MAIL_OUT": str(tmp_path / "outbox"),
            "ABUSE_DESK_PREFIX": prefix,
            "ABUSE_DESK_LINK_SECRET": secrets.token_urlsafe(32),  # the runtime would keep one in the DB
        }
    )


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    b = Broker(settings.amqp_url, settings.prefix)
    await b.connect(attempts=3)
    yield b
    await b.delete_topology()
    await b.close()
