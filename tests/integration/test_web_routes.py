"""The ops web page in process (no browser): sign-in, the guard, the case pages, the operator and dead-letter pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import upgrade
from abuse_desk.web.app import web_app
from core.db import create_engine
from core.messages import Message
from core.settings import Settings

TOKEN = "bootstrap-token-for-the-web-routes-test-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LINK_SECRET = "Kq3v9-web-routes-test-Zt7pW2xLm4Rb8Nc1Hd6Jf0Gy5"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await upgrade(eng)
    yield eng
    await eng.dispose()


async def published(message: Message) -> None:
    return None


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.model_validate({"web_token": TOKEN, "dsa": {"link_secret": LINK_SECRET}})
    health = {"ok": True, "components": ["web"], "problems": []}
    rt = SimpleNamespace(settings=settings, engine=engine, publish=published, health=lambda: health)
    transport = httpx.ASGITransport(app=web_app(rt))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://desk.test") as c:
        yield c


async def test_health_and_the_guard_send_a_stranger_to_the_sign_in(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    away = await client.get("/cases")
    assert away.status_code == 303 and away.headers["location"] == "/login?next=/cases"
    stale = await client.post("/cases/K1/action", data={"action": "lift", "note": "n"})
    assert stale.status_code == 403 and "sign in again" in stale.text


async def test_sign_in_with_the_bootstrap_token_opens_a_session(client: httpx.AsyncClient) -> None:
    assert (await client.get("/login?next=/queues")).status_code == 200
    wrong = await client.post("/login", data={"name": "", "secret": "not-it", "next": "/cases"})
    assert wrong.status_code == 403 and "Unknown operator" in wrong.text
    right = await client.post("/login", data={"name": "", "secret": TOKEN, "next": "//elsewhere.test/"})
    assert right.status_code == 303 and right.headers["location"] == "/cases"  # no open redirect
    assert "abuse_desk_session" in right.cookies
    listed = await client.get("/cases")
    assert listed.status_code == 200 and "bootstrap" in listed.text
    out = await client.get("/logout")
    assert out.status_code == 303 and (await client.get("/cases")).status_code == 303


async def test_case_pages_refuse_what_does_not_exist(client: httpx.AsyncClient) -> None:
    assert (await client.get("/", headers=ADMIN)).headers["location"] == "/cases"
    assert (await client.get("/cases?status=no-such-status", headers=ADMIN)).status_code == 400
    assert (await client.get("/cases/NO-SUCH-CASE", headers=ADMIN)).status_code == 404
    unknown = await client.post("/cases/NO-SUCH-CASE/action", headers=ADMIN, data={"action": "x", "note": "n"})
    assert unknown.status_code in (400, 404)


async def test_operator_and_dead_letter_pages(client: httpx.AsyncClient) -> None:
    added = await client.post("/operators/add", headers=ADMIN, data={"name": "Alice", "role": "ops"})
    assert added.status_code == 200 and "alice" in added.text  # the token is shown once, on this page
    assert (await client.post("/operators/add", headers=ADMIN, data={"name": "alice"})).status_code == 400
    assert "alice" in (await client.get("/operators", headers=ADMIN)).text
    assert (await client.post("/operators/nobody/disable", headers=ADMIN)).status_code == 404
    assert (await client.get("/dead", headers=ADMIN)).status_code == 200
    assert (await client.get("/queues/no-such-queue/dead", headers=ADMIN)).status_code == 404
    assert (await client.post("/dead/discard", headers=ADMIN)).status_code == 400
