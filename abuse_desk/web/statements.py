"""The customers' statement pages (no login): a signed, expiring link to answer about a case."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from core.messages import utcnow
from policy import answers, outbox
from policy.cases import case_row, first_report
from policy.commands import redact
from policy.links import LinkClaims, LinkError, read_token
from policy.recheck import HttpFetcher
from policy.resolve import SystemResolver

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.web.statements")


def statement_routes(rt: Runtime, templates: jinja2.Environment) -> list[Route]:
    """GET shows the case as the customer may see it; POST records an answer and acts on it."""
    secret = rt.settings.dsa.link_secret
    trust = rt.settings.trust

    def form_key(token: str) -> str:
        return hmac.new(secret.encode(), f"form:{token}".encode(), hashlib.sha256).hexdigest()

    def render(name: str, code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=code)

    def claims_or_refusal(token: str, now: datetime) -> LinkClaims | Response:
        try:
            return read_token(secret, token, now)
        except LinkError as exc:
            return render("statement-invalid.html.j2", code=403, reason=str(exc))

    async def show(
        request: Request, *, result: dict[str, Any] | None = None, error: str = "", code: int = 200
    ) -> Response:
        token, now = request.path_params["token"], utcnow()
        claims = claims_or_refusal(token, now)
        if isinstance(claims, Response):
            return claims
        async with rt.engine.connect() as conn:
            case = await case_row(conn, claims.case_id)
            report = await first_report(conn, claims.case_id)
        if case is None or case["customer_id"] != claims.customer_id:
            return render("statement-invalid.html.j2", code=404, reason="this case does not exist")
        evidence = redact(report.evidence, report)[:3000] if report else ""
        return render(
            "statement.html.j2",
            code=code,
            case=case,
            evidence=evidence,
            now=now,
            result=result,
            error=error,
            form_key=form_key(token),
            causes=answers.CAUSES,
            organisation=rt.settings.notify.organisation,
        )

    async def answer(request: Request) -> Response:
        token, now = request.path_params["token"], utcnow()
        claims = claims_or_refusal(token, now)
        if isinstance(claims, Response):
            return claims
        form = await request.form()
        if not hmac.compare_digest(str(form.get("key", "")).encode(), form_key(token).encode()):
            return await show(request, error="The form is stale: reload the page.", code=403)
        kind = str(form.get("kind", ""))
        data = {
            "cause": str(form.get("cause", ""))[:40],
            "commitment": bool(form.get("commitment")),
        }
        if kind == "fixed" and not data["commitment"]:
            return await show(request, error="Please confirm that the measures described are in place.", code=400)
        try:
            async with rt.engine.begin() as conn:
                result = await answers.apply(
                    conn,
                    claims.case_id,
                    claims.customer_id,
                    kind,
                    str(form.get("text", "")),
                    data,
                    rt.settings,
                    now,
                    fetcher=HttpFetcher(),
                    resolver=SystemResolver(trust.hosts, trust.dns_timeout, enabled=trust.resolve_urls),
                )
        except answers.AnswerError as exc:
            return await show(request, error=str(exc), code=409)
        log.info("web.customer_answer", case_id=claims.case_id, kind=kind, outcome=result.get("outcome"))
        try:
            await outbox.drain(rt.engine, rt.publish)
        except Exception as exc:  # committed: the policy worker's outbox loop publishes it later
            log.warning("web.publish_deferred", error=repr(exc))
        return await show(request, result=result)

    return [
        Route("/s/{token}", show, methods=["GET"]),
        Route("/s/{token}", answer, methods=["POST"]),
    ]
