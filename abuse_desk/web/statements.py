"""The customers' statement pages (no login): a signed, expiring link to answer about a case."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from abuse_desk.web import statement_text
from actions.wording import category_name
from core.messages import utcnow
from policy import answers, inventory, link_store, links, outbox
from policy.cases import case_row, first_report
from policy.commands import customer_keep, for_customer
from policy.links import LinkClaims, LinkError, read_token
from policy.recheck import HttpFetcher
from policy.resolve import SystemResolver

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.web.statements")


ONCE = ("contest", "help")  # each reaches a person: once per link


class _StatementPages:
    """The handlers of the statement pages over one runtime and the web page's templates."""

    def __init__(self, rt: Runtime, templates: jinja2.Environment) -> None:
        self.rt = rt
        self.templates = templates
        self.secret = rt.settings.dsa.link_secret
        self.trust = rt.settings.trust
        self.default_language = rt.settings.notify.default_language

    def render(self, name: str, code: int = 200, lang: str | None = None, **context: Any) -> HTMLResponse:
        lang = self.default_language if lang is None else lang
        lang = lang if lang in statement_text.LANGUAGES else "fr"
        page = self.templates.get_template(name).render(lang=lang, t=statement_text.TEXT[lang], **context)
        return HTMLResponse(page, status_code=code, headers={"Content-Language": lang})

    def refusal(self, code: int, reason: str, lang: str | None = None) -> HTMLResponse:
        # The reason is for English readers only (it names a technical cause); other languages get the advice.
        lang = self.default_language if lang is None else lang
        return self.render("statement-invalid.html.j2", code=code, lang=lang, reason=reason if lang == "en" else "")

    def claims_or_refusal(self, token: str, now: datetime) -> LinkClaims | Response:
        try:
            return read_token(self.secret, token, now)
        except LinkError as exc:
            return self.refusal(exc.code, str(exc))

    async def language(self, claims: LinkClaims) -> str:
        async with self.rt.engine.connect() as conn:
            customer = await inventory.customer_row(conn, claims.customer_id)
        return statement_text.language_of(customer, self.default_language)

    async def show(
        self, request: Request, *, result: dict[str, Any] | None = None, error: str = "", code: int = 200
    ) -> Response:
        token, now = request.path_params["token"], utcnow()
        claims = self.claims_or_refusal(token, now)
        if isinstance(claims, Response):
            return claims
        async with self.rt.engine.connect() as conn:
            case = await case_row(conn, claims.case_id)
            report = await first_report(conn, claims.case_id)
            customer = await inventory.customer_row(conn, claims.customer_id)
        lang = statement_text.language_of(customer, self.default_language)
        if case is None or case["customer_id"] != claims.customer_id:
            return self.refusal(404, "this case does not exist", lang)
        evidence = for_customer(report.evidence, report, customer_keep(case, customer))[:3000] if report else ""
        zone = _zone((customer or {}).get("timezone") or self.rt.settings.policy.sla.timezone)
        return self.render(
            "statement.html.j2",
            code=code,
            lang=lang,
            case=case,
            evidence=evidence,
            now=now,
            result=result,
            error=error,
            form_key=links.new_form_key(self.secret, token),  # one form, one answer: a replay is refused
            causes=answers.CAUSES,
            cause_labels=statement_text.CAUSES[lang],
            offers=statement_text.OFFERS.get(str(case["status"]), ()),
            status_label=statement_text.STATUSES[lang].get(case["status"], case["status"]),
            category_label=category_name(str(case["category"]), lang),
            when=lambda value: _when(value, zone),
            organisation=self.rt.settings.notify.organisation,
        )

    async def answer(self, request: Request) -> Response:
        token, now = request.path_params["token"], utcnow()
        claims = self.claims_or_refusal(token, now)
        if isinstance(claims, Response):
            return claims
        text = statement_text.TEXT[await self.language(claims)]
        form = await request.form()
        try:
            nonce = links.read_form_key(self.secret, token, str(form.get("key", "")))
        except LinkError:
            return await self.show(request, error=text["err_stale"], code=403)
        kind = str(form.get("kind", ""))
        data = {
            "cause": str(form.get("cause", ""))[:40],
            "commitment": bool(form.get("commitment")),
        }
        if kind == "fixed" and not data["commitment"]:
            return await self.show(request, error=text["err_commitment"], code=400)
        try:
            async with self.rt.engine.begin() as conn:
                keys = [links.nonce_key(token, nonce)] + ([links.answer_key(token, kind)] if kind in ONCE else [])
                for key in keys:  # a replayed form, or a second contest or call for help through one link
                    if not await link_store.claim_use(conn, key, claims.case_id, kind, now):
                        raise answers.AnswerError("this answer was already sent")
                result = await answers.apply(
                    conn,
                    claims.case_id,
                    claims.customer_id,
                    kind,
                    str(form.get("text", "")),
                    data,
                    self.rt.settings,
                    now,
                    fetcher=HttpFetcher(),
                    resolver=self.resolver(),
                )
        except answers.AnswerError as exc:  # its text is English: shown as the detail to English readers only
            detail = f" {exc}." if text is statement_text.TEXT["en"] else ""
            return await self.show(request, error=text["err_answer"] + detail, code=409)
        log.info("web.customer_answer", case_id=claims.case_id, kind=kind, outcome=result.get("outcome"))
        try:
            await outbox.drain(self.rt.engine, self.rt.publish)
        except Exception as exc:  # committed: the policy worker's outbox loop publishes it later
            log.warning("web.publish_deferred", error=repr(exc))
        return await self.show(request, result=result)

    def resolver(self) -> SystemResolver:
        trust = self.trust
        return SystemResolver(trust.hosts, trust.dns_timeout, enabled=trust.resolve_urls)


def statement_routes(rt: Runtime, templates: jinja2.Environment) -> list[Route]:
    """GET shows the case as the customer may see it; POST records an answer and acts on it."""
    p = _StatementPages(rt, templates)
    return [
        Route("/s/{token}", p.show, methods=["GET"]),
        Route("/s/{token}", p.answer, methods=["POST"]),
    ]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Paris")


def _when(value: datetime | str | None, zone: ZoneInfo) -> str:
    """An instant in the customer's time zone ('2026-12-02 10:00 CET')."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")
