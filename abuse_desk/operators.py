"""Named operators (ops, admin): argon2 hashes of passwords or personal tokens, web sessions, sign-in limits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from abuse_desk.tables import operators, sign_in_attempts, web_sessions
from core.errors import AbuseDeskError

ROLES = ("ops", "admin")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
BOOTSTRAP = "bootstrap"  # the actor of a sign-in with ABUSE_DESK_WEB_TOKEN (admin, to create the first operators)
SESSION_HOURS = 12
MIN_PASSWORD = 12
# Sign-in limits: failures counted per operator name and per client address over a sliding window.
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("a password that no one has")  # verified against for unknown names: same time either way


class OperatorError(AbuseDeskError):
    """An operator command cannot be carried out (bad name, role, duplicate, unknown)."""


@dataclass(frozen=True)
class Session:
    """A signed-in operator: name, role and the session's CSRF token."""

    operator: str
    role: str
    csrf: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def new_token() -> str:
    """A personal token (printed once; only its hash is kept)."""
    return "adt_" + secrets.token_urlsafe(32)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def add(
    conn: AsyncConnection, name: str, role: str, secret: str, kind: str, now: datetime, *, by: str | None = None
) -> None:
    """Create an operator with a password or a personal token (hashed with argon2id)."""
    if not NAME.match(name):
        raise OperatorError(f"operator name {name!r}: lower-case letters, digits, '.', '_' or '-' (at most 64)")
    if name == BOOTSTRAP:
        raise OperatorError(f"{BOOTSTRAP!r} is reserved for the ABUSE_DESK_WEB_TOKEN sign-in")
    if role not in ROLES:
        raise OperatorError(f"unknown role {role!r}: choose from {', '.join(ROLES)}")
    if kind == "password" and len(secret) < MIN_PASSWORD:
        raise OperatorError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if await get(conn, name) is not None:
        raise OperatorError(f"operator {name!r} exists already")
    await conn.execute(
        insert(operators).values(
            name=name,
            role=role,
            secret_hash=_hasher.hash(secret),
            secret_kind=kind,
            disabled=False,
            created_at=now,
            created_by=by,
        )
    )


async def get(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(operators).where(operators.c.name == name))).mappings().first()
    return dict(row) if row else None


async def list_all(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every operator (never the hash)."""
    rows = (await conn.execute(select(operators).order_by(operators.c.name))).mappings()
    return [{k: v for k, v in r.items() if k != "secret_hash"} for r in rows]


async def disable(conn: AsyncConnection, name: str, now: datetime) -> None:
    """Disable an operator and end their sessions."""
    result = await conn.execute(
        update(operators).where(operators.c.name == name).values(disabled=True, disabled_at=now)
    )
    if not result.rowcount:
        raise OperatorError(f"no operator {name!r}")
    await conn.execute(delete(web_sessions).where(web_sessions.c.operator == name))


async def check(conn: AsyncConnection, name: str, secret: str) -> dict[str, Any] | None:
    """The operator if the password or token is right and the operator enabled; None otherwise."""
    row = await get(conn, name)
    try:
        _hasher.verify(row["secret_hash"] if row else _DUMMY, secret)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled"]:
        return None
    return row


async def token_operator(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    """The enabled operator whose personal token this is (API calls with `Authorization: Bearer`)."""
    rows = (
        await conn.execute(
            select(operators).where(operators.c.secret_kind == "token", operators.c.disabled.is_(False))
        )
    ).mappings()
    for row in rows:
        try:
            if _hasher.verify(row["secret_hash"], token):
                return dict(row)
        except (VerificationError, InvalidHashError):
            continue
    return None


def bootstrap_ok(configured: str | None, given: str) -> bool:
    """The bootstrap token (ABUSE_DESK_WEB_TOKEN), compared in constant time."""
    return bool(configured) and hmac.compare_digest(given.encode(), str(configured).encode())


async def throttled(conn: AsyncConnection, name: str, address: str, now: datetime) -> bool:
    """True when too many sign-ins failed lately for this name or from this address."""
    since = now - WINDOW
    await conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.at < since))
    counts = []
    for key in _keys(name, address):
        query = select(func.count()).where(sign_in_attempts.c.key == key, sign_in_attempts.c.at >= since)
        counts.append(int((await conn.execute(query)).scalar_one()))
    return counts[0] >= MAX_FAILURES_PER_NAME or counts[1] >= MAX_FAILURES_PER_ADDRESS


def _keys(name: str, address: str) -> tuple[str, str]:
    return f"name:{name}"[:200], f"addr:{address}"[:200]


async def record_failure(conn: AsyncConnection, name: str, address: str, now: datetime) -> None:
    await conn.execute(
        insert(sign_in_attempts),
        [{"key": key, "at": now} for key in _keys(name, address)],
    )


async def open_session(conn: AsyncConnection, name: str, now: datetime, *, replaces: str = "") -> tuple[str, str]:
    """A fresh session id and CSRF token for a signed-in operator (the old session, if any, is ended)."""
    if replaces:
        await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _digest(replaces)))
    await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await conn.execute(
        insert(web_sessions).values(
            id_hash=_digest(session_id),
            operator=name,
            csrf=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    if name != BOOTSTRAP:
        await conn.execute(update(operators).where(operators.c.name == name).values(last_sign_in_at=now))
    return session_id, csrf


async def session(conn: AsyncConnection, session_id: str, now: datetime) -> Session | None:
    """The live session of this cookie value, with the operator's current role (None if disabled or expired)."""
    if not session_id:
        return None
    row = (
        await conn.execute(select(web_sessions).where(web_sessions.c.id_hash == _digest(session_id)))
    ).mappings().first()
    if row is None or row["expires_at"] <= now:
        return None
    if row["operator"] == BOOTSTRAP:
        return Session(BOOTSTRAP, "admin", row["csrf"])
    op = await get(conn, row["operator"])
    if op is None or op["disabled"]:
        return None
    return Session(op["name"], op["role"], row["csrf"])


async def close_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _digest(session_id)))
