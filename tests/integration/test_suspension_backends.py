"""Suspension backends against local HTTP fakes: signed webhook, WHMCS api.php, ledger states, broker retries."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.suspend import LedgerBackend, SuspendWorker, make_backend
from actions.tables import suspensions
from actions.webhook import WebhookPanel
from actions.whmcs import WhmcsPanel
from core.action_settings import SuspendConfig
from core.broker import Broker
from core.errors import PermanentError, TransientError
from core.messages import ActionFailed, LiftSuspension, Message, ServiceLifted, ServiceSuspended, SuspendService
from tests.panels import WebhookFake, WhmcsFake, serve


async def rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(suspensions).order_by(suspensions.c.id))).mappings()]


def suspend(*services: str, case: str = "K1", **kw: object) -> SuspendService:
    return SuspendService(case_id=case, customer_id="C1", service_ids=list(services), reason="phishing kit", **kw)


def webhook_config(url: str, **kw: object) -> SuspendConfig:
    values: dict[str, object] = {"backend": "webhook", "url": url, "secret": "s3cret", "timeout": 1.0}
    return SuspendConfig.model_validate(values | {"attempts": 3, "backoff": 0.05} | kw)


async def test_webhook_signed_suspend_once_then_lift_restores(engine: AsyncEngine) -> None:
    with serve(WebhookFake()) as fake:
        backend = LedgerBackend(engine, panel=WebhookPanel(webhook_config(fake.url)))
        command = suspend("S1", "S1b")
        assert await backend.suspend(command) == ["S1", "S1b"]
        assert await backend.suspend(command) == ["S1", "S1b"]  # redelivered: the ledger says done
        assert fake.suspend_calls == 1 and fake.bad_signatures == 0
        assert fake.suspended == {"S1", "S1b"}
        sent = fake.received[0]
        doc = json.loads(sent.body)
        assert doc["event"] == "service.suspend" and doc["id"] == command.message_id and doc["case_id"] == "K1"
        assert sent.headers["x-abuse-desk-signature"].startswith("sha256=")
        assert sent.headers["idempotency-key"] == command.message_id
        assert [(r["service_id"], r["state"], r["backend"]) for r in await rows(engine)] == [
            ("S1", "active", "webhook"),
            ("S1b", "active", "webhook"),
        ]
        lift = LiftSuspension(case_id="K1", customer_id="C1", service_ids=[], reason="cleaned")
        assert await backend.lift(lift) == ["S1", "S1b"]
        assert await backend.lift(lift) == []  # nothing left open: no second call
        assert fake.lift_calls == 1 and fake.suspended == set()
        assert {r["state"] for r in await rows(engine)} == {"lifted"}


async def test_webhook_retries_5xx_with_backoff_then_succeeds(engine: AsyncEngine) -> None:
    with serve(WebhookFake(script=[503, 502])) as fake:
        backend = LedgerBackend(engine, panel=WebhookPanel(webhook_config(fake.url)))
        await backend.suspend(suspend("S1"))
        assert [r.status for r in fake.received] == [503, 502, 200]
        timestamps = {r.headers["x-abuse-desk-timestamp"] for r in fake.received}
        assert len(timestamps) >= 1 and fake.bad_signatures == 0
        row = (await rows(engine))[0]
        assert row["state"] == "active" and row["attempts"] == 1


async def test_webhook_timeouts_exhaust_attempts_then_transient_and_redelivery_completes(engine: AsyncEngine) -> None:
    with serve(WebhookFake(script=["hang", 500, 500])) as fake:
        backend = LedgerBackend(engine, panel=WebhookPanel(webhook_config(fake.url, timeout=0.3)))
        command = suspend("S1")
        with pytest.raises(TransientError):
            await backend.suspend(command)
        row = (await rows(engine))[0]
        assert row["state"] == "pending" and row["lifted_at"] is None  # Postfix already refuses its mail
        assert "HTTP 500" in str(row["last_error"]) and row["attempts"] == 1
        await backend.suspend(command)  # the broker redelivers: the pending row is tried again
        assert fake.suspend_calls == 1
        row = (await rows(engine))[0]
        assert row["state"] == "active" and row["attempts"] == 2 and row["last_error"] is None


async def test_webhook_4xx_is_permanent_action_failed_and_ack(engine: AsyncEngine) -> None:
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    with serve(WebhookFake(secret="not-the-one-we-sign-with")) as fake:
        worker = SuspendWorker(make_backend(webhook_config(fake.url), engine), publish)
        command = suspend("S1")
        await worker.handle(command)  # returns: the message is acked
        assert len(fake.received) == 1 and fake.received[0].status == 401  # no retry on 4xx
    [failed] = published
    assert isinstance(failed, ActionFailed)
    assert failed.action == "suspend" and failed.case_id == "K1" and failed.command_id == command.message_id
    assert "HTTP 401" in failed.reason
    [row] = await rows(engine)
    assert row["state"] == "failed" and row["lifted_at"] is not None  # nothing is in force


async def test_mailbox_scope_records_targets_and_lift_restores_exactly(engine: AsyncEngine) -> None:
    backend = LedgerBackend(engine)
    await backend.suspend(suspend("S9", case="OTHER"))  # another case's suspension stays
    await backend.suspend(suspend("S1b", scope="mailbox", targets=["Bob@Customer1.example"]))
    [_other, mine] = await rows(engine)
    assert (mine["service_id"], mine["target"], mine["scope"]) == ("S1b", "bob@customer1.example", "mailbox")
    assert await backend.ledger.blocking(targets=["bob@customer1.example"], service_ids=[]) is not None
    assert await backend.ledger.blocking(targets=["alice@customer1.example"], service_ids=[]) is None
    await backend.lift(LiftSuspension(case_id="K1", customer_id="C1", service_ids=[], reason="ok"))
    after = {r["case_id"]: r["lifted_at"] for r in await rows(engine)}
    assert after["OTHER"] is None and after["K1"] is not None
    with pytest.raises(PermanentError):
        await backend.suspend(suspend("S1b", scope="mailbox"))  # names no target


def whmcs_config(url: str, **kw: object) -> SuspendConfig:
    values: dict[str, object] = {
        "backend": "whmcs",
        "url": url,
        "identifier": "api-id",
        "secret": "api-secret",
        "service_id_prefix": "S",
        "timeout": 1.0,
        "attempts": 2,
        "backoff": 0.05,
    } | kw
    return SuspendConfig.model_validate(values)


async def test_whmcs_module_suspend_and_unsuspend_as_documented(engine: AsyncEngine) -> None:
    with serve(WhmcsFake(), path="/includes/api.php") as fake:
        backend = LedgerBackend(engine, panel=WhmcsPanel(whmcs_config(fake.url)))
        command = suspend("S101", "S102")
        await backend.suspend(command)
        await backend.suspend(command)  # redelivered: no second call
        assert fake.services == {"101": "Suspended", "102": "Suspended"}
        assert [c["action"] for c in fake.calls] == ["ModuleSuspend", "ModuleSuspend"]
        first = fake.calls[0]
        assert first["serviceid"] == "101" and first["responsetype"] == "json"
        assert first["suspendreason"].startswith("Abuse case K1")
        assert fake.received[0].path == "/includes/api.php"
        await backend.lift(LiftSuspension(case_id="K1", customer_id="C1", service_ids=[], reason="fixed"))
        assert fake.services == {"101": "Active", "102": "Active"}
        assert [c["action"] for c in fake.calls][2:] == ["ModuleUnsuspend", "ModuleUnsuspend"]


async def test_whmcs_already_suspended_is_success_unknown_service_and_bad_credentials_fail(engine: AsyncEngine) -> None:
    with serve(WhmcsFake(services={"101": "Suspended", "102": "Active"}), path="/includes/api.php") as fake:
        ok = LedgerBackend(engine, panel=WhmcsPanel(whmcs_config(fake.url)))
        await ok.suspend(suspend("S101"))  # the panel says "already suspended": idempotent success
        assert (await rows(engine))[0]["state"] == "active"
        with pytest.raises(PermanentError, match="Service ID Not Found"):
            await ok.suspend(suspend("S999", case="K2"))
        with pytest.raises(PermanentError, match="no WHMCS service id"):
            await ok.suspend(suspend("web-1", case="K3"))
        bad = LedgerBackend(engine, panel=WhmcsPanel(whmcs_config(fake.url, secret="wrong")))
        with pytest.raises(PermanentError, match="HTTP 403"):
            await bad.suspend(suspend("S102", case="K4"))
        fake.script = [500, 500]
        await ok.suspend(suspend("S101", case="K5", scope="service"))  # 101 is open already: nothing to call
        assert fake.script == [500, 500]
        with pytest.raises(TransientError, match="HTTP 500"):
            await ok.suspend(suspend("S102", case="K6"))
        assert fake.services["102"] == "Active"
        assert [r["state"] for r in await rows(engine) if r["case_id"] == "K6"] == ["pending"]


async def test_whmcs_leaves_mailbox_scope_to_the_ledger(engine: AsyncEngine) -> None:
    with serve(WhmcsFake(), path="/includes/api.php") as fake:
        backend = LedgerBackend(engine, panel=WhmcsPanel(whmcs_config(fake.url)))
        await backend.suspend(suspend("S101", scope="mailbox", targets=["bob@customer1.example"]))
        assert fake.calls == []
        assert [(r["target"], r["state"]) for r in await rows(engine)] == [("bob@customer1.example", "active")]


async def test_transient_failure_is_redelivered_with_delay_then_dead_lettered(
    engine: AsyncEngine, broker: Broker
) -> None:
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    with serve(WebhookFake(script=[503] * 100)) as fake:
        worker = SuspendWorker(make_backend(webhook_config(fake.url, attempts=1), engine), publish)
        await broker.consume("actions.suspend", worker.handle, retry_delay=0.05)
        await broker.publish(suspend("S1"))
        for _ in range(200):
            if {s.queue: s.dead for s in await broker.stats()}["actions.suspend"] == 1:
                break
            await asyncio.sleep(0.1)
        stats = {s.queue: s for s in await broker.stats()}
        assert stats["actions.suspend"].dead == 1
        deliveries = len(fake.received)
    assert 5 <= deliveries <= 7  # bounded by the quorum queue's delivery limit
    assert not [m for m in published if isinstance(m, ServiceSuspended | ServiceLifted)]
    [row] = await rows(engine)
    assert row["state"] == "pending" and "HTTP 503" in str(row["last_error"]) and row["attempts"] == deliveries
    [dead] = await broker.dead_letters("actions.suspend")
    assert dead.type == "service.suspend.v1"
