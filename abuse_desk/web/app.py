"""The ops web page (Starlette): sign-in per operator, the case list and one case, dead letters, operators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from abuse_desk.watch import countdown
from abuse_desk.web import auth
from abuse_desk.web.admin import admin_routes
from abuse_desk.web.auth import Signed
from abuse_desk.web.casework import PREVIEWED, apply, preview
from abuse_desk.web.statements import statement_routes
from abuse_desk.web.views import case_list, case_page
from core.messages import utcnow
from policy import ops as policy_ops
from policy import outbox
from policy.queries import QueryError

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.web")
PAGE_SIZE = 50
templates = jinja2.Environment(
    loader=jinja2.PackageLoader("abuse_desk.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


templates.filters["when"] = _when
templates.globals["countdown"] = countdown
Guarded = Callable[[Request, Signed], Awaitable[Response]]


class _OpsPages:
    """The handlers of the sign-in, case list, one case and health pages over one runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.token = rt.settings.web_token  # the bootstrap sign-in (name "bootstrap"), for the first admin

    def page(self, name: str, signed: Signed | None = None, code: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(
            csrf=signed.session.csrf if signed else "",
            me=signed.name if signed else "",
            admin=bool(signed and signed.session.admin),
            prefix=self.rt.settings.prefix,
            **context,
        )
        return HTMLResponse(html, status_code=code)

    def guarded(self, handler: Guarded, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            signed = await auth.who(request, self.rt.engine, self.token)
            if signed is None:
                if request.method == "GET":
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
                return self.page("login.html.j2", code=403, next="/", error="Your session has expired: sign in again.")
            if admin and not signed.session.admin:
                return self.page("missing.html.j2", signed, code=403, what="page for you here (admins only)")
            if request.method == "POST" and not signed.form_ok(await request.form()):
                return self.page("missing.html.j2", signed, code=403, what="such form any more (it is stale: reload)")
            return await handler(request, signed)

        return endpoint

    async def login(self, request: Request) -> Response:
        target = request.query_params.get("next", "/cases")
        if request.method == "GET":
            return self.page("login.html.j2", next=target, error="")
        form = await request.form()
        target = str(form.get("next") or "/cases")
        if not target.startswith("/") or target.startswith("//"):
            target = "/cases"
        name, secret = str(form.get("name", "")), str(form.get("secret", ""))
        session_id, why = await auth.sign_in(self.rt.engine, request, name, secret, self.token)
        if session_id is None:
            log.warning("web.sign_in_failed", name=str(form.get("name", ""))[:64], client=auth.client_address(request))
            code = 429 if why.startswith("Too many") else 403
            return self.page("login.html.j2", code=code, next=target, error=why)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(auth.COOKIE, session_id, httponly=True, samesite="strict", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        from abuse_desk import operators

        async with self.rt.engine.begin() as conn:
            await operators.close_session(conn, request.cookies.get(auth.COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    async def home(self, request: Request, signed: Signed) -> Response:
        return RedirectResponse("/cases", status_code=303)

    async def cases_index(self, request: Request, signed: Signed) -> Response:
        q = request.query_params
        needs_me = q.get("view") == "needs-me"
        filters = {
            "status": q.get("status") or None,
            "sla": q.get("sla") or None,
            "search": q.get("q") or None,
            "attention": "any" if needs_me else (q.get("attention") or None),
            "customer_id": q.get("customer") or None,
            "sort": q.get("sort") or ("sla_due_at" if needs_me else "-opened_at"),
        }
        try:
            number = max(1, int(q.get("page", "1")))
        except ValueError:
            number = 1
        now = utcnow()
        try:
            async with self.rt.engine.connect() as conn:
                offset = (number - 1) * PAGE_SIZE
                rows, total, counts = await case_list(conn, now, limit=PAGE_SIZE, offset=offset, **filters)
        except QueryError as exc:
            return self.page("missing.html.j2", signed, code=400, what=f"such filter: {exc}")
        pages = max(1, -(-total // PAGE_SIZE))
        return self.page(
            "cases.html.j2", signed, cases=rows, total=total, counts=counts, filters=filters, needs_me=needs_me,
            page=number, pages=pages, query=dict(q), now=now,
        )

    async def case_detail(self, request: Request, signed: Signed, *, error: str = "", code: int = 200) -> Response:
        case_id = request.path_params["case_id"]
        async with self.rt.engine.connect() as conn:
            case = await case_page(conn, case_id, utcnow())
        if case is None:
            return self.page("missing.html.j2", signed, code=404, what=f"case {case_id}")
        done = request.query_params.get("done", "")
        return self.page("case.html.j2", signed, code=code, case=case, error=error, done=done)

    async def case_action(self, request: Request, signed: Signed) -> Response:
        case_id = request.path_params["case_id"]
        form = await request.form()
        action = str(form.get("action", ""))
        note, customer_text = str(form.get("note", "")).strip(), str(form.get("customer_text", "")).strip()
        if action not in policy_ops.ALLOWED:
            return await self.case_detail(request, signed, error=f"Unknown action {action!r}.", code=400)
        if not note:
            return await self.case_detail(request, signed, error="A note for the audit trail is required.", code=400)
        now = utcnow()
        try:
            if action in PREVIEWED and form.get("confirmed") != "yes":
                shown = await preview(
                    self.rt.engine, case_id, action, note, customer_text, self.rt.settings, now, actor=signed.name
                )
                return self.page(
                    "preview.html.j2", signed, case_id=case_id, action=action, note=note,
                    customer_text=customer_text, preview=shown,
                )
            async with self.rt.engine.begin() as conn:
                await apply(conn, case_id, action, note, customer_text, self.rt.settings, now, actor=signed.name)
        except policy_ops.CaseActionError as exc:
            return await self.case_detail(request, signed, error=str(exc), code=409)
        log.info("web.case_action", case_id=case_id, action=action, actor=signed.name)
        try:
            await outbox.drain(self.rt.engine, self.rt.publish)
        except Exception as exc:  # committed: the policy worker's outbox loop publishes it later
            log.warning("web.publish_deferred", error=repr(exc))
        return RedirectResponse(f"/cases/{quote(case_id)}?done={quote(action)}", status_code=303)

    async def healthz(self, request: Request) -> Response:
        report = self.rt.health()
        return JSONResponse(report, status_code=200 if report["ok"] else 503)


def web_app(rt: Runtime) -> Starlette:
    """The ASGI application over the runtime's database engine and broker connection."""
    p = _OpsPages(rt)
    guarded = p.guarded
    return Starlette(
        routes=[
            Route("/", guarded(p.home)),
            Route("/login", p.login, methods=["GET", "POST"]),
            Route("/logout", p.logout, methods=["POST", "GET"]),
            Route("/cases", guarded(p.cases_index)),
            Route("/cases/{case_id}", guarded(p.case_detail)),
            Route("/cases/{case_id}/action", guarded(p.case_action), methods=["POST"]),
            *admin_routes(rt, p.page, guarded),
            Route("/healthz", p.healthz),
            *statement_routes(rt, templates),
        ]
    )
