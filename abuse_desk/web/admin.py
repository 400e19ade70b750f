"""The ops pages around the cases: queues, the dead letters kept in the database, and (admins) the operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from abuse_desk import deadletters, operators
from abuse_desk.web.auth import Signed
from core.messages import utcnow
from core.topology import QUEUES_BY_NAME

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.web")


def _ids(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip().isdigit()]


class _AdminPages:
    """The handlers of the queue, dead-letter and operator pages over one runtime."""

    def __init__(self, rt: Runtime, page: Callable[..., Response]) -> None:
        self.rt = rt
        self.page = page

    async def queues(self, request: Request, signed: Signed) -> Response:
        stats = await self.rt.broker.stats()
        async with self.rt.engine.connect() as conn:
            kept = await deadletters.waiting(conn)
        shown = [{"queue": s.queue, "messages": s.messages, "consumers": s.consumers,
                  "dead": s.dead + kept.get(s.queue, 0)} for s in stats]
        return self.page("queues.html.j2", signed, stats=shown)

    async def dead(self, request: Request, signed: Signed) -> Response:
        queue = request.path_params.get("queue") or request.query_params.get("queue") or None
        if queue is not None and queue not in QUEUES_BY_NAME:
            return self.page("missing.html.j2", signed, code=404, what=f"queue {queue}")
        replayed = _ids(request.query_params.get("replayed", ""))
        async with self.rt.engine.connect() as conn:
            letters = await deadletters.list_letters(conn, queue=queue, limit=200)
            outcome = await deadletters.outcome(conn, replayed) if replayed else None
        for d in letters:
            d["body"] = d["body"][:600]
        discarded = request.query_params.get("discarded", "")
        return self.page(
            "dead.html.j2", signed, queue=queue or "", letters=letters, outcome=outcome, discarded=discarded
        )

    async def replay(self, request: Request, signed: Signed) -> Response:
        form = await request.form()
        queue = request.path_params.get("queue") or str(form.get("queue", "")) or None
        if queue is not None and queue not in QUEUES_BY_NAME:
            return self.page("missing.html.j2", signed, code=404, what=f"queue {queue}")
        ids = _ids(str(form.get("ids", ""))) or None
        done = await deadletters.replay(self.rt.engine, self.rt.broker, actor=signed.name, queue=queue, ids=ids)
        log.info("web.replay", queue=queue, ids=done, actor=signed.name)
        where = f"&queue={quote(queue)}" if queue else ""
        return RedirectResponse(f"/dead?replayed={','.join(map(str, done)) or '0'}{where}", status_code=303)

    async def discard(self, request: Request, signed: Signed) -> Response:
        form = await request.form()
        queue = str(form.get("queue", "")) or None
        ids = _ids(str(form.get("ids", ""))) or None
        if queue is None and ids is None and form.get("all") != "yes":
            return self.page("missing.html.j2", signed, code=400, what="dead letter chosen")
        count = await deadletters.discard(self.rt.engine, actor=signed.name, queue=queue, ids=ids)
        where = f"&queue={quote(queue)}" if queue else ""
        return RedirectResponse(f"/dead?discarded={count}{where}", status_code=303)

    async def operator_list(self, request: Request, signed: Signed, *, error: str = "", code: int = 200) -> Response:
        async with self.rt.engine.connect() as conn:
            found = await operators.list_all(conn)
        created = request.query_params.get("created", "")
        return self.page("operators.html.j2", signed, code=code, operators=found, error=error, created=created,
                         token="", roles=operators.ROLES)

    async def operator_add(self, request: Request, signed: Signed) -> Response:
        form = await request.form()
        name, role = str(form.get("name", "")).strip().lower(), str(form.get("role", "ops"))
        password = str(form.get("password", ""))
        secret, kind = (password, "password") if password else (operators.new_token(), "token")
        try:
            async with self.rt.engine.begin() as conn:
                await operators.add(conn, name, role, secret, kind, utcnow(), by=signed.name)
        except operators.OperatorError as exc:
            return await self.operator_list(request, signed, error=str(exc), code=400)
        log.info("web.operator_added", name=name, role=role, actor=signed.name)
        if kind == "token":  # shown once, here; only its hash is kept
            async with self.rt.engine.connect() as conn:
                found = await operators.list_all(conn)
            return self.page("operators.html.j2", signed, operators=found, error="", created=name, token=secret,
                             roles=operators.ROLES)
        return RedirectResponse(f"/operators?created={quote(name)}", status_code=303)

    async def operator_disable(self, request: Request, signed: Signed) -> Response:
        name = request.path_params["name"]
        try:
            async with self.rt.engine.begin() as conn:
                await operators.disable(conn, name, utcnow())
        except operators.OperatorError as exc:
            return await self.operator_list(request, signed, error=str(exc), code=404)
        log.info("web.operator_disabled", name=name, actor=signed.name)
        return RedirectResponse("/operators", status_code=303)


def admin_routes(rt: Runtime, page: Callable[..., Response], guarded: Callable[..., Any]) -> list[Route]:
    """Routes of the queue, dead-letter and operator pages (guarded: signed in; operators: admins)."""
    p = _AdminPages(rt, page)
    return [
        Route("/queues", guarded(p.queues)),
        Route("/dead", guarded(p.dead)),
        Route("/queues/{queue}/dead", guarded(p.dead)),
        Route("/dead/replay", guarded(p.replay), methods=["POST"]),
        Route("/queues/{queue}/replay", guarded(p.replay), methods=["POST"]),
        Route("/dead/discard", guarded(p.discard), methods=["POST"]),
        Route("/operators", guarded(p.operator_list, admin=True)),
        Route("/operators/add", guarded(p.operator_add, admin=True), methods=["POST"]),
        Route("/operators/{name}/disable", guarded(p.operator_disable, admin=True), methods=["POST"]),
    ]
