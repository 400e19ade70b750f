"""Who is signed in on the ops pages: per-operator sessions (rotated at sign-in), bearer tokens, the CSRF check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from abuse_desk import operators
from abuse_desk.operators import BOOTSTRAP, Session
from core.messages import utcnow

COOKIE = "abuse_desk_session"


@dataclass(frozen=True)
class Signed:
    """The operator behind a request, and whether a CSRF token must come with its forms (cookie sessions)."""

    session: Session
    via_cookie: bool

    @property
    def name(self) -> str:
        return self.session.operator

    def form_ok(self, form: Any) -> bool:
        if not self.via_cookie:
            return True  # a bearer token is not sent by a browser on its own: no cross-site forgery
        return hmac.compare_digest(str(form.get("csrf", "")).encode(), self.session.csrf.encode())


async def who(request: Request, engine: AsyncEngine, bootstrap_token: str | None) -> Signed | None:
    """The signed-in operator of a request (cookie session or `Authorization: Bearer` personal token)."""
    bearer = request.headers.get("authorization", "")
    async with engine.begin() as conn:
        if bearer.startswith("Bearer "):
            token = bearer[7:].strip()
            if operators.bootstrap_ok(bootstrap_token, token):
                return Signed(Session(BOOTSTRAP, "admin", ""), via_cookie=False)
            found = await operators.token_operator(conn, token)
            return Signed(Session(found["name"], found["role"], ""), via_cookie=False) if found else None
        session = await operators.session(conn, request.cookies.get(COOKIE, ""), utcnow())
    return Signed(session, via_cookie=True) if session else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def sign_in(
    engine: AsyncEngine, request: Request, name: str, secret: str, bootstrap_token: str | None
) -> tuple[str | None, str]:
    """(new session id, "") on success; (None, why) otherwise. Rate-limited per name and per client address."""
    now = utcnow()
    address = client_address(request)
    name = name.strip().lower() or BOOTSTRAP
    async with engine.begin() as conn:
        if await operators.throttled(conn, name, address, now):
            return None, "Too many failed sign-ins: wait a quarter of an hour, or ask an admin."
        if name == BOOTSTRAP:
            ok = operators.bootstrap_ok(bootstrap_token, secret)
        else:
            ok = await operators.check(conn, name, secret) is not None
        if not ok:
            await operators.record_failure(conn, name, address, now)
            return None, "Unknown operator, wrong password or token, or a disabled operator."
        session_id, _csrf = await operators.open_session(conn, name, now, replaces=request.cookies.get(COOKIE, ""))
    return session_id, ""
