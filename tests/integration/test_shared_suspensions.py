"""A suspension belongs to every case that asked for it: a lift restores only what no other open case holds."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.blocklist import load_blocks
from actions.ledger import suspension_progress
from actions.suspend import LedgerBackend, SuspendWorker, active_suspensions, make_backend
from actions.tables import suspensions
from core.action_settings import SuspendConfig
from core.errors import TransientError
from core.messages import ActionFailed, LiftSuspension, Message, ServiceLifted, ServiceSuspended, SuspendService
from tests.panels import WebhookFake, serve


def suspend(*services: str, case: str, **kw: object) -> SuspendService:
    return SuspendService(case_id=case, customer_id="C1", service_ids=list(services), reason="phishing kit", **kw)


def lift(case: str, *services: str) -> LiftSuspension:
    return LiftSuspension(case_id=case, customer_id="C1", service_ids=list(services), reason="cleaned")


def webhook_config(url: str, **kw: object) -> SuspendConfig:
    values: dict[str, object] = {"backend": "webhook", "url": url, "secret": "s3cret", "timeout": 1.0}
    return SuspendConfig.model_validate(values | {"attempts": 2, "backoff": 0.02} | kw)


class Events:
    """A publish function that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.seen.append(message)

    def of(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.seen if isinstance(m, kind)]


async def states(engine: AsyncEngine) -> list[tuple[str | None, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(suspensions).order_by(suspensions.c.id))
        return [(r.case_id, r.target or r.service_id, r.state) for r in rows]


async def blocked_services(engine: AsyncEngine) -> set[str]:
    return set((await load_blocks(engine)).services)


async def test_second_case_holds_the_service_and_the_last_lift_restores_it(engine: AsyncEngine) -> None:
    events = Events()
    fake = WebhookFake()
    with serve(fake):
        worker = SuspendWorker(make_backend(webhook_config(fake.url), engine), events)
        await worker.handle(suspend("S1", case="K1"))
        await worker.handle(suspend("S1", case="K2"))  # already suspended: success, no second platform call
        await worker.handle(suspend("S1", case="K2"))  # redelivered: nothing new
        assert fake.suspend_calls == 1
        assert [(m.case_id, m.service_ids) for m in events.of(ServiceSuspended)] == [  # type: ignore[attr-defined]
            ("K1", ["S1"]),
            ("K2", ["S1"]),
            ("K2", ["S1"]),
        ]
        assert await states(engine) == [("K1", "S1", "active"), ("K2", "S1", "active")]

        await worker.handle(lift("K1"))  # K2 still holds S1: the platform is not called
        assert fake.lift_calls == 0 and fake.suspended == {"S1"}
        [first] = events.of(ServiceLifted)
        assert isinstance(first, ServiceLifted)
        assert first.case_id == "K1" and first.service_ids == [] and first.still_suspended == ["S1"]
        assert await blocked_services(engine) == {"S1"}  # the Postfix policy service still refuses S1's mail
        assert [r["case_id"] for r in await active_suspensions(engine)] == ["K2"]
        [k1] = await suspension_progress(engine, "K1")
        assert k1["state"] == "released" and "K2" in str(k1["lift_reason"]) and k1["also_held_by"] == []
        [k2] = await suspension_progress(engine, "K2")
        assert k2["state"] == "active" and k2["also_held_by"] == [] and k2["attempts"] == 0

        await worker.handle(lift("K2"))  # the last holder: restored
        await worker.handle(lift("K2"))  # redelivered: nothing left to restore
        assert fake.lift_calls == 1 and fake.suspended == set()
        last = events.of(ServiceLifted)[1]
        assert isinstance(last, ServiceLifted)
        assert last.service_ids == ["S1"] and last.still_suspended == []
        assert await blocked_services(engine) == set()
        assert await states(engine) == [("K1", "S1", "released"), ("K2", "S1", "lifted")]


async def test_a_lift_names_what_stays_and_restores_the_rest(engine: AsyncEngine) -> None:
    backend = LedgerBackend(engine)
    await backend.suspend(suspend("S1", "S2", case="K1"))
    await backend.suspend(suspend("S2", case="K2"))
    await backend.suspend(suspend("S3", case="K3", scope="mailbox", targets=["Bob@Customer1.example"]))
    await backend.suspend(suspend("S3", case="K1", scope="mailbox", targets=["bob@customer1.example"]))
    progress = {p["name"]: p for p in await suspension_progress(engine, "K1")}
    assert progress["S2"]["also_held_by"] == ["K2"] and progress["bob@customer1.example"]["also_held_by"] == ["K3"]
    done = await backend.lift(lift("K1"))
    assert list(done) == ["S1"] and done.still_suspended == ["S2", "bob@customer1.example"]
    blocks = await load_blocks(engine)
    assert set(blocks.services) == {"S2"} and set(blocks.targets) == {"bob@customer1.example"}
    assert await backend.ledger.blocking(targets=["bob@customer1.example"], service_ids=[]) is not None
    assert await backend.ledger.blocking(targets=[], service_ids=["S1"]) is None


async def test_a_pending_suspension_joined_by_a_second_case_is_confirmed_per_case(engine: AsyncEngine) -> None:
    fake = WebhookFake(script=[503, 503])
    with serve(fake):
        backend = make_backend(webhook_config(fake.url), engine)
        with pytest.raises(TransientError, match="HTTP 503"):
            await backend.suspend(suspend("S1", case="K1"))
        await backend.suspend(suspend("S1", case="K2"))  # the platform is back: K2's call confirms K2's row
        assert await states(engine) == [("K1", "S1", "pending"), ("K2", "S1", "active")]
        [k1] = await suspension_progress(engine, "K1")
        assert k1["attempts"] == 1 and "HTTP 503" in str(k1["last_error"])  # "under way: 1 attempt, HTTP 503"
        await backend.suspend(suspend("S1", case="K1"))  # K1's retry: its own row, called again (idempotent)
        assert await states(engine) == [("K1", "S1", "active"), ("K2", "S1", "active")]
        assert fake.suspend_calls == 2


async def test_a_suspension_waits_while_a_lift_is_under_way(engine: AsyncEngine) -> None:
    fake = WebhookFake()
    with serve(fake):
        backend = make_backend(webhook_config(fake.url), engine)
        await backend.suspend(suspend("S1", case="K1"))
        fake.script = [503, 503]
        with pytest.raises(TransientError):
            await backend.lift(lift("K1"))
        assert await states(engine) == [("K1", "S1", "lifting")]
        assert await blocked_services(engine) == {"S1"}  # not restored until the platform says so
        with pytest.raises(TransientError, match="lift of S1 is under way"):
            await backend.suspend(suspend("S1", case="K2"))  # retried after the lift, so it is called after it
        assert list(await backend.lift(lift("K1"))) == ["S1"]  # the lift's redelivery finishes it
        await backend.suspend(suspend("S1", case="K2"))
        assert await states(engine) == [("K1", "S1", "lifted"), ("K2", "S1", "active")]
        assert (fake.suspend_calls, fake.lift_calls, fake.suspended) == (2, 1, {"S1"})


async def test_a_refused_lift_leaves_the_suspension_in_force(engine: AsyncEngine) -> None:
    events = Events()
    fake = WebhookFake()
    with serve(fake):
        worker = SuspendWorker(make_backend(webhook_config(fake.url), engine), events)
        await worker.handle(suspend("S1", case="K1"))
        fake.script = [403]
        await worker.handle(lift("K1"))
        [failed] = events.of(ActionFailed)
        assert isinstance(failed, ActionFailed) and failed.action == "lift" and "HTTP 403" in failed.reason
        [row] = await suspension_progress(engine, "K1")
        assert row["state"] == "active" and "HTTP 403" in str(row["last_error"])
        assert await blocked_services(engine) == {"S1"}



@pytest.mark.databases("postgresql")
async def test_a_lift_racing_a_second_case_never_restores_what_the_second_holds(engine: AsyncEngine) -> None:
    """Replicas: K1's lift and K2's suspend of the same service at once, in either order, leave it suspended."""
    fake = WebhookFake()
    with serve(fake):
        backends = [make_backend(webhook_config(fake.url), engine) for _ in range(2)]
        for round_ in range(8):
            first, second = f"A{round_}", f"B{round_}"
            await backends[0].suspend(suspend("S1", case=first))

            async def second_suspends(case: str) -> None:
                for _ in range(50):  # the broker's retry: a lift under way makes the suspension wait
                    try:
                        await backends[1].suspend(suspend("S1", case=case))
                        return
                    except TransientError:
                        await asyncio.sleep(0.02)

            await asyncio.gather(backends[0].lift(lift(first)), second_suspends(second))
            assert await blocked_services(engine) == {"S1"}, await states(engine)
            assert fake.suspended == {"S1"}, (round_, await states(engine))
            [held] = [r for r in await suspension_progress(engine, second) if r["lifted_at"] is None]
            assert held["state"] == "active"
            await backends[1].lift(lift(second))
            assert await blocked_services(engine) == set() and fake.suspended == set()
