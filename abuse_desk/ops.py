"""What the ops subcommands do: open the database (and the broker when commands must go out), act, close."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk import deadletters
from abuse_desk.database import upgrade
from abuse_desk.home import home_dir, sqlite_file
from actions.ledger import suspension_progress
from core.broker import Broker
from core.db import create_engine
from core.errors import AbuseDeskError, TransientError
from core.messages import utcnow
from core.settings import Settings
from policy import inventory, link_store, outbox, queries
from policy.scheduler import fire_due


class NoDatabase(AbuseDeskError):
    """A read-only command found no database where the settings point (it would have created an empty one)."""


@asynccontextmanager
async def database(settings: Settings, *, read_only: bool = False) -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database, migrated to the latest schema.

    A read-only command (`cases list`, `dead list`, ...) refuses to create a SQLite file that does not exist."""
    file = sqlite_file(settings.database_url)
    if read_only and file is not None and not file.exists():
        raise NoDatabase(
            f"no database at {file}: the desk's data lives under its home ({home_dir()}: ABUSE_DESK_HOME, else the"
            " folder of ABUSE_DESK_CONFIG, else the current folder). Run the command from the desk's folder, set"
            " ABUSE_DESK_HOME, or create it with `abuse-desk db upgrade`."
        )
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        settings.dsa.link_secret = await link_store.link_secret(engine, settings)  # links mailed from ops commands
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def broker(settings: Settings, attempts: int = 3) -> AsyncIterator[Broker]:
    """A broker connection for one command."""
    b = Broker(settings.amqp_url, settings.prefix)
    await b.connect(attempts=attempts, delay=1.0)
    try:
        yield b
    finally:
        await b.close()


async def publish_outbox(settings: Settings, engine: AsyncEngine) -> int:
    """Publish commands an ops action queued; if the broker is away the running policy worker will."""
    try:
        async with broker(settings) as b:
            return await outbox.drain(engine, b.publish)
    except TransientError:
        return -1


async def import_inventory(
    settings: Settings, path: str, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    data = inventory.load_inventory_file(path)
    listed = data.get("resources") if isinstance(data, dict) else None
    total = len(listed) if isinstance(listed, list) else 0
    step = (lambda done: progress(done, total)) if progress else None
    async with database(settings) as engine, engine.begin() as conn:
        return await inventory.import_inventory(conn, data, progress=step)


async def list_cases(
    settings: Settings,
    status: str | None,
    sla: str | None = None,
    *,
    search: str | None = None,
    sort: str = queries.DEFAULT_SORT,
    limit: int = 1000,
    offset: int = 0,
    attention: str | None = None,
) -> list[dict[str, Any]]:
    """Cases for `cases list` (design §5 keys, plus customer_name, indicators, attention)."""
    async with database(settings, read_only=True) as engine, engine.connect() as conn:
        rows, _total = await queries.find_cases(
            conn, status=status, sla=sla, search=search, sort=sort, limit=limit, offset=offset, attention=attention
        )
        return rows


async def show_case(settings: Settings, case_id: str) -> dict[str, Any]:
    async with database(settings, read_only=True) as engine, engine.connect() as conn:
        case = await queries.show_case(conn, case_id)
        if case is not None:  # a suspension under way shows its attempts and last error until the platform confirms
            case["suspensions"] = await suspension_progress(conn, case_id)
    if case is None:
        raise AbuseDeskError(f"no case {case_id}")
    return case


async def case_action(
    settings: Settings, case_id: str, action: str, reason: str, *, actor: str, customer_text: str = ""
) -> dict[str, Any]:
    from abuse_desk.web.casework import apply

    async with database(settings) as engine:
        async with engine.begin() as conn:
            case = await apply(conn, case_id, action, reason, customer_text, settings, utcnow(), actor=actor)
        await publish_outbox(settings, engine)
        return case


async def transparency(settings: Settings, year: int) -> dict[str, Any]:
    from policy import transparency as figures

    async with database(settings) as engine, engine.connect() as conn:
        return await figures.report(conn, year)


async def tick(settings: Settings, now: datetime) -> list[str]:
    async with database(settings) as engine:
        fired = await fire_due(engine, settings, now)
        await publish_outbox(settings, engine)
        return fired


async def queue_stats(settings: Settings) -> list[dict[str, Any]]:
    """Depth and consumers per queue; `dead` counts the letters still in the broker and those kept for ops."""
    async with broker(settings) as b:
        stats = [asdict(s) for s in await b.stats()]
    async with database(settings) as engine, engine.connect() as conn:
        kept = await deadletters.waiting(conn)
    return [s | {"dead": s["dead"] + kept.get(s["queue"], 0), "dead_kept": kept.get(s["queue"], 0)} for s in stats]


async def dead_list(settings: Settings, queue: str | None, *, every: bool = False) -> list[dict[str, Any]]:
    """Dead letters kept in the database (reading them redelivers nothing)."""
    if queue:
        _known_queue(queue)
    states = deadletters.STATES if every else ("dead", "died-again", "replayed")
    async with database(settings, read_only=True) as engine, engine.connect() as conn:
        letters = await deadletters.list_letters(conn, queue=queue, states=states, limit=10_000)
    return [d | {"body": d["body"][:2000], "delivery_count": d["attempts"]} for d in letters]


async def dead_replay(
    settings: Settings,
    queue: str | None,
    progress: Callable[[int, int], None] | None = None,
    *,
    ids: list[int] | None = None,
    actor: str,
) -> list[int]:
    """Replay dead letters (one or several ids, a queue's, or all) onto their work queues."""
    if queue:
        _known_queue(queue)
    async with database(settings) as engine, broker(settings) as b:
        return await deadletters.replay(engine, b, actor=actor, queue=queue, ids=ids, progress=progress)


async def dead_discard(settings: Settings, queue: str | None, *, ids: list[int] | None, actor: str) -> int:
    if queue:
        _known_queue(queue)
    async with database(settings) as engine:
        return await deadletters.discard(engine, actor=actor, queue=queue, ids=ids)


async def operator_add(settings: Settings, name: str, role: str, secret: str, kind: str) -> None:
    from abuse_desk import operators

    async with database(settings) as engine, engine.begin() as conn:
        await operators.add(conn, name, role, secret, kind, utcnow(), by="cli")


async def operator_list(settings: Settings) -> list[dict[str, Any]]:
    from abuse_desk import operators

    async with database(settings, read_only=True) as engine, engine.connect() as conn:
        return await operators.list_all(conn)


async def operator_disable(settings: Settings, name: str) -> None:
    from abuse_desk import operators

    async with database(settings) as engine, engine.begin() as conn:
        await operators.disable(conn, name, utcnow())


async def has_admin(settings: Settings) -> bool:
    """True when an enabled admin can sign in on the web page (no bootstrap token needed then)."""
    from abuse_desk import operators

    async with database(settings) as engine, engine.connect() as conn:
        return any(o["role"] == "admin" and not o["disabled"] for o in await operators.list_all(conn))


async def db_upgrade(settings: Settings) -> None:
    async with database(settings):
        return None


def _known_queue(queue: str) -> None:
    from core.topology import QUEUES_BY_NAME

    if queue not in QUEUES_BY_NAME:
        raise AbuseDeskError(f"unknown queue {queue!r}: one of {', '.join(QUEUES_BY_NAME)}")
