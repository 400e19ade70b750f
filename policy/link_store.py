"""What the customers' links keep in the database: the signing secret every replica shares, and used answers.

The link secret is `[dsa] link_secret` / ABUSE_DESK_LINK_SECRET when configured (validated strong at start);
otherwise it is generated at first start and kept in `secrets`, so every replica and every restart signs
and checks links alike. Two replicas starting at once both insert-if-absent and then read the one row kept.
"""

from __future__ import annotations

import secrets as random_source
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import upsert
from core.errors import ConfigError
from core.messages import utcnow
from core.settings import Settings, weak_secret
from policy.tables import link_uses, secrets

LINK_SECRET = "link_secret"


async def link_secret(conn_or_engine: AsyncConnection | AsyncEngine, settings: Settings) -> str:
    """The secret that signs customer links: the configured one, else the database's (created once)."""
    if settings.dsa.link_secret:
        return settings.dsa.link_secret
    if isinstance(conn_or_engine, AsyncEngine):
        async with conn_or_engine.begin() as conn:
            return await _stored_secret(conn)
    return await _stored_secret(conn_or_engine)


async def _stored_secret(conn: AsyncConnection) -> str:
    row = {"name": LINK_SECRET, "value": random_source.token_urlsafe(48), "created_at": utcnow()}
    await upsert(conn, secrets, [row], ["name"], update=False)
    value = (await conn.execute(select(secrets.c.value).where(secrets.c.name == LINK_SECRET))).scalar_one()
    if problem := weak_secret(str(value)):
        raise ConfigError(f"the link secret kept in the database (table secrets) is unusable: {problem}")
    return str(value)


async def stored_link_secret(conn: AsyncConnection) -> str | None:
    """The database's link secret if one was generated (doctor reads it; never creates one)."""
    found = await conn.execute(select(secrets.c.value).where(secrets.c.name == LINK_SECRET))
    value = found.scalar_one_or_none()
    return None if value is None else str(value)


async def claim_use(conn: AsyncConnection, key: str, case_id: str, kind: str, now: datetime) -> bool:
    """Record one use of a link (a form nonce, or an answer kind): True the first time, False for a replay.

    Call it in the transaction that records the answer, so a refused or failed answer leaves no use behind.
    """
    stmt: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(link_uses).values(key=key, case_id=case_id, kind=kind, at=now).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(link_uses).values(key=key, case_id=case_id, kind=kind, at=now).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount == 1)
