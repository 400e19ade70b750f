"""The component table: each `abuse-desk serve NAME`, what it starts, the queues it consumes, whether it keeps gauges.

Like Postfix's master.cf: one row per program. `run` starts every row; the topology's consumers are checked
against it (tests/unit/test_components.py), and `serve --help`, the README and the deploy files list its names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import structlog

from abuse_desk import instrument

# Each start function imports its stage itself: a command that starts nothing (`cases list`) loads none of them.

if TYPE_CHECKING:
    from abuse_desk.runtime import Runtime

log = structlog.get_logger("abuse_desk.components")
Start = Callable[["Runtime"], Awaitable[None]]


@dataclass(frozen=True)
class Component:
    """One program of the desk."""

    name: str
    summary: str
    start: Start
    queues: tuple[str, ...] = ()  # the work queues it consumes (core/topology.py QueueSpec.consumer)
    gauges: bool = False  # refreshes the case and mail gauges from the database


async def _smtp(rt: Runtime) -> None:
    from ingest.smtp import SmtpListener

    listener = SmtpListener(rt.settings, rt.publish, on_result=instrument.smtp_result)
    rt.smtp_address = await listener.start()
    rt.stoppers.append(listener.stop)


async def _normalize(rt: Runtime) -> None:
    from ingest.authenticate import network_lookup, pinned_lookup
    from ingest.normalize import NormalizeWorker

    s = rt.settings
    dns_txt = pinned_lookup(s.trust.dns_txt, network_lookup(), s.trust.dns_timeout)
    bounces = s.outbound.bounce_notice_address, s.outbound.bounce_peers  # DSN copies: counted, not parsed
    normalize = NormalizeWorker(instrument.counting_parsed(rt.publish), dns_txt, *bounces)
    await rt.consume("ingest.normalize", normalize.handle)


async def _policy(rt: Runtime) -> None:
    from policy.consumer import PolicyWorker

    upstream = partial(rt.broker.ready, ("ingest.normalize", "policy.reports"))  # a bulk step waits while any wait
    worker = PolicyWorker(rt.engine, rt.settings, rt.publish, upstream=upstream)
    reports = instrument.counting_decisions(rt.engine, worker.on_report)
    await rt.consume("policy.reports", reports, timeout=rt.settings.broker.report_timeout)
    await rt.consume("policy.events", worker.on_event)
    rt.background(worker.drain_forever(), "policy-outbox")


async def _scheduler(rt: Runtime) -> None:
    from abuse_desk.runtime import scheduler_loop

    rt.background(scheduler_loop(rt), "scheduler")


async def _suspend(rt: Runtime) -> None:
    from actions.suspend import SuspendWorker, make_backend

    backend = instrument.CountingBackend(make_backend(rt.settings.suspend, rt.engine))
    await rt.consume("actions.suspend", SuspendWorker(backend, rt.publish).handle)


async def _notify(rt: Runtime) -> None:
    from actions.mailer import make_mailer
    from actions.notify import NotifyWorker
    from actions.signing import DkimSigner

    s = rt.settings
    mailer = instrument.CountingMailer(make_mailer(s.mail_out))
    signer = DkimSigner.from_config(s.notify.dkim).sign if s.notify.dkim else None
    notify = NotifyWorker(rt.engine, mailer, s.notify, rt.publish, signer=signer)
    await rt.consume("actions.notify", notify.handle)
    rt.background(notify.send_forever(), "notify-retries")


async def _postfix_policy(rt: Runtime) -> None:
    from abuse_desk.postfix_policy import bounce_counter, start_policy_service

    policy_service, rt.policy_address = await start_policy_service(rt.settings, rt.engine, rt.publish)
    rt.stoppers.insert(0, policy_service.stop)
    await rt.consume("actions.bounces", bounce_counter(rt.settings, rt.engine, rt.publish).handle)


async def _web(rt: Runtime) -> None:
    from abuse_desk.deadletters import start_keeper
    from abuse_desk.http import start_server
    from abuse_desk.web.app import web_app

    await start_keeper(rt.broker, rt.engine)  # the dead-letter keeper runs with the ops pages
    if not rt.settings.web_token:
        log.info("web.no_bootstrap", reason="ABUSE_DESK_WEB_TOKEN is not set: operators sign in by name only")
    stop, rt.web_port = await start_server(
        web_app(rt), rt.settings.web_listen, name="the ops web page", env_var="ABUSE_DESK_WEB_LISTEN"
    )
    rt.stoppers.insert(0, stop)


TABLE: tuple[Component, ...] = (
    Component("smtp", "the SMTP listener for abuse@ (250 only after the broker's confirm)", _smtp),
    Component("normalize", "parse raw mail into reports and incidents", _normalize, ("ingest.normalize",)),
    Component(
        "policy", "investigate, decide, keep cases; publish the outbox", _policy, ("policy.reports", "policy.events")
    ),
    Component("scheduler", "fire deadlines and ops alerts", _scheduler, gauges=True),
    Component("suspend", "suspend and lift services (ledger, webhook, WHMCS)", _suspend, ("actions.suspend",)),
    Component("notify", "render and send the desk's mails", _notify, ("actions.notify",)),
    Component(
        "postfix-policy",
        "Postfix policy delegation: suspended senders, recipient limits, unknown-recipient bounces",
        _postfix_policy,
        ("actions.bounces",),
    ),
    Component("web", "the ops web page, the customers' statement links, the dead-letter keeper", _web, gauges=True),
)
BY_NAME: dict[str, Component] = {c.name: c for c in TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def summary() -> str:
    """One line per component, for `serve --help`."""
    return "; ".join(f"{c.name}: {c.summary}" for c in TABLE)
