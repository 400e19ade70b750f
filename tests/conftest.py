"""Shared fixtures: per-test settings (own broker prefix, own SQLite file), and real-service checks."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.broker import Broker
from core.settings import Settings, load_settings

AMQP_URL = os.environ.get("ABUSE_DESK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_URL = os.environ.get("ABUSE_DESK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def settings(tmp_path: Path, prefix: str) -> Settings:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return load_settings(
        environ={
            "ABUSE_DESK_AMQP_URL": AMQP_URL,
            "ABUSE_DESK_DATABASE_URL": f"sqlite:///{tmp_path}/abuse-desk.db",
            "ABUSE_DESK_SMTP_LISTEN": f"127.0.0.1:{free_port()}",
            "ABUSE_DESK_MAIL_OUT": str(tmp_path / "outbox"),
            "ABUSE_DESK_PREFIX": prefix,
        }
    )


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    b = Broker(settings.amqp_url, settings.prefix)
    await b.connect(attempts=3)
    yield b
    await b.delete_topology()
    await b.close()
