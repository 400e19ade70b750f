"""The ops web page (Starlette): cases, one case with its buttons, queues and dead letters; token-protected."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from abuse_desk.watch import STATUSES, countdown
from abuse_desk.web.statements import statement_routes
from abuse_desk.web.views import case_list, case_page
from core.errors import AbuseDeskError
from core.messages import utcnow
from core.topology import QUEUES_BY_NAME
from policy import ops as policy_ops
from policy import outbox

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.web")

COOKIE = "abuse_desk_session"
ACTIONS = ("confirm", "reject", "resolve", "lift")

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("abuse_desk.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


templates.filters["when"] = _when
templates.globals["countdown"] = countdown


def _digest(token: str, purpose: str) -> str:
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class Auth:
    """One shared ops token: a login form sets a session cookie (a keyed digest, never the token itself)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.session = _digest(token, "session")
        self.csrf = _digest(token, "csrf")

    def allows(self, request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        if bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), self.token.encode()):
            return True
        return hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self.session.encode())

    def form_ok(self, form: Any) -> bool:
        return hmac.compare_digest(str(form.get("csrf", "")).encode(), self.csrf.encode())


def web_app(rt: Runtime) -> Starlette:
    """The ASGI application over the runtime's database engine and broker connection."""
    token = rt.settings.web_token
    if not token:
        raise AbuseDeskError("the ops web page needs ABUSE_DESK_WEB_TOKEN")
    auth = Auth(token)

    def page(name: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(csrf=auth.csrf, prefix=rt.settings.prefix, **context)
        return HTMLResponse(html, status_code=code)

    def guard(request: Request) -> Response | None:
        if auth.allows(request):
            return None
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return page("login.html.j2", code=403, next="/", error="Your session has expired: sign in again.")

    async def login(request: Request) -> Response:
        target = request.query_params.get("next", "/cases")
        if request.method == "GET":
            return page("login.html.j2", next=target, error="")
        form = await request.form()
        target = str(form.get("next") or "/cases")
        if not target.startswith("/") or target.startswith("//"):
            target = "/cases"
        if not hmac.compare_digest(str(form.get("token", "")).encode(), token.encode()):
            log.warning("web.login_failed", client=request.client.host if request.client else "")
            return page("login.html.j2", code=403, next=target, error="That is not the ops token.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, auth.session, httponly=True, samesite="strict", path="/")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def home(request: Request) -> Response:
        return guard(request) or RedirectResponse("/cases", status_code=303)

    async def cases_index(request: Request) -> Response:
        if denied := guard(request):
            return denied
        status = request.query_params.get("status", "")
        now = utcnow()
        async with rt.engine.connect() as conn:
            rows = await case_list(conn, status if status in STATUSES else None, now)
        return page("cases.html.j2", cases=rows, status=status, statuses=STATUSES, now=now)

    async def case_detail(request: Request, *, error: str = "", status_code: int = 200) -> Response:
        if denied := guard(request):
            return denied
        case_id = request.path_params["case_id"]
        async with rt.engine.connect() as conn:
            case = await case_page(conn, case_id, utcnow())
        if case is None:
            return page("missing.html.j2", code=404, what=f"case {case_id}")
        done = request.query_params.get("done", "")
        return page("case.html.j2", code=status_code, case=case, error=error, done=done, actions=ACTIONS)

    async def case_action(request: Request) -> Response:
        if denied := guard(request):
            return denied
        case_id = request.path_params["case_id"]
        form = await request.form()
        if not auth.form_ok(form):
            return await case_detail(request, error="The form is stale: reload the page.", status_code=403)
        action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()
        if action not in ACTIONS:
            return await case_detail(request, error=f"Unknown action {action!r}.", status_code=400)
        try:
            async with rt.engine.begin() as conn:
                await policy_ops.apply(conn, case_id, action, reason, rt.settings, utcnow(), actor="web")
        except policy_ops.CaseActionError as exc:
            return await case_detail(request, error=str(exc), status_code=409)
        log.info("web.case_action", case_id=case_id, action=action)
        try:
            await outbox.drain(rt.engine, rt.publish)
        except Exception as exc:  # committed: the policy worker's outbox loop publishes it later
            log.warning("web.publish_deferred", error=repr(exc))
        return RedirectResponse(f"/cases/{quote(case_id)}?done={action}", status_code=303)

    async def queues(request: Request) -> Response:
        if denied := guard(request):
            return denied
        stats = await rt.broker.stats()
        replayed = request.query_params.get("replayed", "")
        return page("queues.html.j2", stats=stats, replayed=replayed, queue=request.query_params.get("queue", ""))

    async def dead(request: Request) -> Response:
        if denied := guard(request):
            return denied
        queue = request.path_params["queue"]
        if queue not in QUEUES_BY_NAME:
            return page("missing.html.j2", code=404, what=f"queue {queue}")
        letters = await rt.broker.dead_letters(queue, limit=200)
        shown = [
            {
                "message_id": d.message_id,
                "type": d.type,
                "reason": d.reason,
                "deliveries": d.delivery_count,
                "body": d.body[:600].decode("utf-8", "replace"),
            }
            for d in letters
        ]
        return page("dead.html.j2", queue=queue, letters=shown)

    async def replay(request: Request) -> Response:
        if denied := guard(request):
            return denied
        queue = request.path_params["queue"]
        form = await request.form()
        if queue not in QUEUES_BY_NAME or not auth.form_ok(form):
            return page("missing.html.j2", code=400, what=f"queue {queue} (or a stale form)")
        moved = await rt.broker.replay(queue)
        log.info("web.replay", queue=queue, moved=moved)
        return RedirectResponse(f"/queues?replayed={moved}&queue={quote(queue)}", status_code=303)

    async def healthz(request: Request) -> Response:
        report = rt.health()
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST", "GET"]),
            Route("/cases", cases_index),
            Route("/cases/{case_id}", case_detail),
            Route("/cases/{case_id}/action", case_action, methods=["POST"]),
            Route("/queues", queues),
            Route("/queues/{queue}/dead", dead),
            Route("/queues/{queue}/replay", replay, methods=["POST"]),
            Route("/healthz", healthz),
            *statement_routes(rt, templates),
        ]
    )
