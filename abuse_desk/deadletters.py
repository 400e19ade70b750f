"""Dead letters kept in the database: the keeper consumes every `<queue>.dead`, ops list, replay or discard them."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from abuse_desk.tables import dead_letters
from actions.suspend import given_up_event
from core.broker import Broker
from core.errors import ContractError
from core.messages import ActionFailed, decode_message, head_of, utcnow
from core.redelivery import DeadLetter

log = structlog.get_logger("abuse_desk.deadletters")

ERROR_HEADER = "x-abuse-desk-error"  # the handler's error text, set when a message is dead-lettered
ATTEMPTS_HEADERS = ("x-abuse-desk-attempts", "x-abuse-desk-attempt", "x-delivery-count")
STATES = ("dead", "replayed", "died-again", "discarded")
LIST_FIELDS = (
    "id",
    "queue",
    "message_id",
    "type",
    "died_at",
    "reason",
    "error",
    "attempts",
    "case_id",
    "report_id",
    "state",
    "replayed_at",
    "handled_by",
    "next_id",
)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _json_safe(value: Any) -> Any:
    """AMQP header values (bytes, datetimes, nested tables) as JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _deaths(headers: dict[str, Any]) -> list[dict[str, Any]]:
    deaths = headers.get("x-death") or []
    return [d for d in deaths if isinstance(d, dict)] if isinstance(deaths, list) else []


def describe(letter: DeadLetter) -> dict[str, Any]:
    """The row of one dead letter: its real error when the handler said, attempts, the case and report ids."""
    headers = letter.headers
    deaths = _deaths(headers)
    attempts = 0
    for name in ATTEMPTS_HEADERS:
        if headers.get(name) is not None:
            try:
                attempts = int(_text(headers[name]))
                break
            except ValueError:
                continue
    if not attempts and deaths:
        attempts = sum(int(d.get("count", 0) or 0) for d in deaths)
    reason = _text(headers.get("x-abuse-desk-reason")) or (_text(deaths[0].get("reason")) if deaths else "")
    body = head_of(letter.body)
    error = _text(headers.get(ERROR_HEADER)) or None
    if error is None and not body:
        error = "not a message of ours (not JSON): rejected at once"
    return {
        "queue": letter.queue,
        "message_id": (letter.message_id or _text(body.get("message_id")))[:64] or None,
        "type": (letter.type or _text(body.get("type")))[:64] or None,
        "reason": (reason or "rejected")[:32],
        "error": error,
        "attempts": attempts,
        "case_id": (_text(headers.get("case_id")) or _text(body.get("case_id")))[:32] or None,
        "report_id": (_text(headers.get("report_id")) or _text(body.get("report_id")))[:64] or None,
        "headers": _json_safe(headers),
        "body": letter.body,
    }


async def keep(engine: AsyncEngine, letter: DeadLetter, now: datetime | None = None) -> int:
    """Store one dead letter (the keeper acks it afterwards); a replayed message that died again is marked so."""
    now = now or utcnow()
    row = describe(letter) | {"queue": letter.queue, "died_at": now, "state": "dead"}
    async with engine.begin() as conn:
        key = (await conn.execute(insert(dead_letters).values(**row))).inserted_primary_key
        assert key is not None
        new_id = int(key[0])
        if row["message_id"]:
            await conn.execute(
                update(dead_letters)
                .where(
                    dead_letters.c.message_id == row["message_id"],
                    dead_letters.c.state == "replayed",
                    dead_letters.c.id != new_id,
                )
                .values(state="died-again", next_id=new_id)
            )
    log.info("dead_letter.kept", queue=letter.queue, id=new_id, error=row["error"], case_id=row["case_id"])
    return new_id


def given_up(letter: DeadLetter) -> ActionFailed | None:
    """The action.failed.v1 a command's case must hear when the broker gave the command up (suspend, lift)."""
    try:
        message = decode_message(letter.body)
    except ContractError:
        return None
    error = describe(letter)["error"] or letter.reason or "given up"
    return given_up_event(message, error)


async def start_keeper(broker: Broker, engine: AsyncEngine) -> None:
    """Consume every dead-letter queue into the `dead_letters` table (started with the web component).

    A suspend or lift command given up after its retries also tells its case (action.failed.v1): published
    before the letter is stored, so a crash in between repeats the event — the policy alerts once per case."""

    async def handler(letter: DeadLetter) -> None:
        event = given_up(letter)
        if event is not None and event.case_id:
            await broker.publish(event)
        await keep(engine, letter)

    await broker.consume_dead(handler)


def _shown(row: Any, *, body: bool) -> dict[str, Any]:
    out = {k: row[k] for k in LIST_FIELDS}
    if body:
        raw: bytes = row["body"]
        try:
            out["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out["body"] = "base64:" + base64.b64encode(raw).decode()
    return out


async def list_letters(
    conn: AsyncConnection,
    *,
    queue: str | None = None,
    states: Sequence[str] = ("dead", "died-again", "replayed"),
    ids: Sequence[int] | None = None,
    limit: int = 200,
    body: bool = True,
) -> list[dict[str, Any]]:
    """Stored dead letters, newest first (reading them moves nothing: no delivery is counted)."""
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if queue:
        query = query.where(dead_letters.c.queue == queue)
    if ids is not None:
        query = query.where(dead_letters.c.id.in_(list(ids)))
    else:
        query = query.where(dead_letters.c.state.in_(list(states)))
    return [_shown(r, body=body) for r in (await conn.execute(query)).mappings()]


async def waiting(conn: AsyncConnection) -> dict[str, int]:
    """Dead letters waiting for ops, per work queue."""
    query = (
        select(dead_letters.c.queue, func.count()).where(dead_letters.c.state == "dead").group_by(dead_letters.c.queue)
    )
    return {q: int(n) for q, n in await conn.execute(query)}


def _chosen(queue: str | None, ids: Sequence[int] | None) -> Any:
    condition = dead_letters.c.state == "dead"
    if queue:
        condition = condition & (dead_letters.c.queue == queue)
    if ids is not None:
        condition = condition & dead_letters.c.id.in_(list(ids))
    return condition


async def replay(
    engine: AsyncEngine,
    broker: Broker,
    *,
    actor: str,
    queue: str | None = None,
    ids: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 100,
) -> list[int]:
    """Put dead letters back on their work queue (one, a queue's, or all); returns the ids replayed."""
    async with engine.connect() as conn:
        chosen = [r[0] for r in await conn.execute(select(dead_letters.c.id).where(_chosen(queue, ids)))]
    done: list[int] = []
    for start in range(0, len(chosen), batch):
        async with engine.begin() as conn:  # marked first: a copy that dies again at once finds its row "replayed"
            step = chosen[start : start + batch]
            rows = (
                await conn.execute(select(dead_letters).where(dead_letters.c.id.in_(step), _chosen(None, None)))
            ).mappings().all()
            await conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id.in_([r["id"] for r in rows]))
                .values(state="replayed", replayed_at=utcnow(), handled_by=actor)
            )
        for n, row in enumerate(rows):
            headers = {k: v for k, v in (row["headers"] or {}).items() if not str(k).startswith("x-")}
            headers["replayed"] = int(headers.get("replayed", 0) or 0) + 1
            try:
                await broker.publish_to_queue(
                    row["queue"], row["body"], message_id=row["message_id"] or "", type=row["type"] or "",
                    headers=headers,
                )
            except Exception:
                async with engine.begin() as conn:  # not on the queue: they wait as before
                    back = [r["id"] for r in rows[n:]]
                    await conn.execute(
                        update(dead_letters).where(dead_letters.c.id.in_(back)).values(state="dead", replayed_at=None)
                    )
                raise
            done.append(row["id"])
        if progress:
            progress(len(done), len(chosen))
    log.info("dead_letter.replayed", count=len(done), queue=queue, actor=actor)
    return done


async def discard(
    engine: AsyncEngine, *, actor: str, queue: str | None = None, ids: Sequence[int] | None = None
) -> int:
    """Give up on dead letters (kept as discarded, with who did it); returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(dead_letters).where(_chosen(queue, ids)).values(state="discarded", handled_by=actor)
        )
    return int(result.rowcount or 0)


async def outcome(conn: AsyncConnection, ids: Sequence[int]) -> dict[str, Any]:
    """What became of replayed letters: still out (no new death so far) or dead again (with the new error)."""
    rows = await list_letters(conn, ids=ids, body=False, limit=len(ids) or 1)
    again = [r for r in rows if r["state"] == "died-again"]
    errors = []
    if again:
        nexts = await list_letters(conn, ids=[r["next_id"] for r in again if r["next_id"]], body=False)
        errors = [n["error"] or n["reason"] for n in nexts]
    return {"replayed": len(rows), "died_again": len(again), "errors": errors}
