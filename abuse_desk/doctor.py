"""`abuse-desk doctor`: check configuration, broker, database and mail-out, and say what is wrong in plain words."""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from abuse_desk.database import is_current
from actions.tables import suspensions
from core.broker import Broker
from core.db import create_engine
from core.errors import AbuseDeskError
from core.messages import utcnow
from core.settings import Settings, weak_secret
from policy.link_store import stored_link_secret
from policy.sla import add_working_hours
from policy.tables import cases


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, whether it is fine (ok / warn / fail), and the plain-words detail."""

    name: str
    state: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.state == "fail"


def configuration(settings: Settings) -> list[Check]:
    """What the settings imply, checked without touching the network."""
    out = [Check("configuration", "ok", f"abuse addresses: {', '.join(settings.abuse_addresses)}")]
    if not settings.web_token:
        out.append(
            Check(
                "web token",
                "warn",
                "ABUSE_DESK_WEB_TOKEN is not set: the ops web page will not start (`run` serves it disabled)",
            )
        )
    elif len(settings.web_token) < 16:
        out.append(Check("web token", "warn", "ABUSE_DESK_WEB_TOKEN is short: use a long random one (≥ 16 chars)"))
    out += sla_calendar(settings)
    if settings.dsa.link_secret and (problem := weak_secret(settings.dsa.link_secret)):
        out.append(Check("link secret", "fail", f"ABUSE_DESK_LINK_SECRET / [dsa] link_secret: {problem}"))
    elif settings.dsa.link_secret:
        out.append(Check("link secret", "ok", "configured (ABUSE_DESK_LINK_SECRET / [dsa] link_secret)"))
    if "guest:guest@" in settings.amqp_url and urlsplit(settings.amqp_url).hostname not in ("127.0.0.1", "localhost"):
        out.append(Check("broker credentials", "warn", "RabbitMQ's guest account only works from localhost"))
    return out


def sla_calendar(settings: Settings) -> list[Check]:
    """The complainants' answer clock can be computed: a report received now gets a due time."""
    sla = settings.policy.sla
    try:
        due = add_working_hours(utcnow(), sla.hours, sla)
    except Exception as exc:  # the calendar is validated at load; this catches what only a computation shows
        return [Check("sla calendar", "fail", f"[policy.sla] cannot be computed: {_plain(exc)}")]
    days = ",".join(str(d) for d in sla.working_days)
    return [
        Check(
            "sla calendar",
            "ok",
            f"{sla.hours:g} working hours, days {days}, {sla.day_start}–{sla.day_end} {sla.timezone},"
            f" holidays {sla.holidays_country}: a report received now is due {due:%Y-%m-%d %H:%M} UTC",
        )
    ]


async def link_secret(settings: Settings, engine: AsyncEngine) -> list[Check]:
    """Without a configured link secret, the database must hold the generated one (created at first start)."""
    if settings.dsa.link_secret:
        return []
    async with engine.connect() as conn:
        stored = await stored_link_secret(conn)
    if stored is None:
        return [
            Check(
                "link secret",
                "fail",
                "no link secret: set ABUSE_DESK_LINK_SECRET (openssl rand -base64 48), or start a component once"
                " to have one generated and kept in the database",
            )
        ]
    if problem := weak_secret(stored):
        return [Check("link secret", "fail", f"the link secret kept in the database is unusable: {problem}")]
    return [Check("link secret", "ok", "generated at first start and kept in the database (table secrets)")]


async def broker(settings: Settings) -> list[Check]:
    """Reachable, and the queues exist with consumers (passive: creates nothing)."""
    b = Broker(settings.amqp_url, settings.prefix)
    try:
        await asyncio.wait_for(b.connect(attempts=1, delay=0, declare=False), timeout=15)
    except Exception as exc:
        return [Check("broker", "fail", f"cannot reach RabbitMQ at {_safe(settings.amqp_url)}: {_plain(exc)}")]
    try:
        try:
            stats = await b.stats()
        except Exception:
            return [
                Check(
                    "broker",
                    "warn",
                    f"RabbitMQ answers, but the queues{_prefixed(settings)} are not declared yet:"
                    " they appear when a component starts",
                )
            ]
        out = [Check("broker", "ok", f"RabbitMQ answers; {len(stats)} queues{_prefixed(settings)} declared")]
        idle = [s.queue for s in stats if s.consumers == 0]
        if idle:
            out.append(Check("consumers", "warn", "no consumer on " + ", ".join(idle) + ": is that component running?"))
        dead = [f"{s.queue} ({s.dead})" for s in stats if s.dead]
        if dead:
            out.append(
                Check("dead letters", "warn", "dead letters in " + ", ".join(dead) + ": `abuse-desk dead list QUEUE`")
            )
        return out
    finally:
        await b.close()


async def database(settings: Settings) -> list[Check]:
    """Reachable, and migrated to the latest revision (the doctor never migrates)."""
    try:
        engine = create_engine(settings.database_url)
    except AbuseDeskError as exc:
        return [Check("database", "fail", str(exc))]
    try:
        try:
            async with engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=10)
        except Exception as exc:
            return [Check("database", "fail", f"cannot open the database ({_db_name(settings)}): {_plain(exc)}")]
        try:
            current = await is_current(engine)
        except Exception as exc:
            return [Check("database", "fail", f"cannot read the schema version: {_plain(exc)}")]
        if not current:
            return [Check("database", "fail", "the schema is not up to date: run `abuse-desk db upgrade`")]
        try:
            secret = await link_secret(settings, engine)
        except Exception as exc:
            secret = [Check("link secret", "fail", f"cannot read the link secret from the database: {_plain(exc)}")]
        try:
            actions = await unconfirmed_actions(engine)
        except Exception as exc:
            actions = [Check("actions", "fail", f"cannot read the suspensions: {_plain(exc)}")]
        return [Check("database", "ok", f"{_db_name(settings)} reachable and migrated"), *secret, *actions]
    finally:
        await engine.dispose()


async def unconfirmed_actions(engine: AsyncEngine) -> list[Check]:
    """Suspensions the platform never confirmed after failing, and cases whose action failed: never "all good"."""
    async with engine.connect() as conn:
        failing = (
            await conn.execute(
                select(suspensions.c.case_id, suspensions.c.last_error).where(
                    suspensions.c.state == "pending", suspensions.c.last_error.is_not(None)
                )
            )
        ).all()
        flagged = (await conn.execute(select(cases.c.id, cases.c.flags).where(cases.c.needs_attention))).all()
    failed = sorted({r.id for r in flagged if "action-failed" in (r.flags or [])} | {r.case_id for r in failing})
    if not failed:
        return [Check("actions", "ok", "every suspension asked for was confirmed or is on its first try")]
    errors = sorted({r.last_error for r in failing if r.last_error})[:3]
    detail = f"{len(failed)} case(s) whose suspension or lift failed or was never confirmed: {', '.join(failed[:10])}"
    return [Check("actions", "fail", detail + (f" (last error: {'; '.join(errors)})" if errors else ""))]


async def mail_out(settings: Settings) -> list[Check]:
    """A Maildir we can write into, or an SMTP relay that greets us."""
    target = settings.mail_out
    if target.startswith(("smtp://", "smtps://")):
        parts = urlsplit(target)
        host, port = parts.hostname or "127.0.0.1", parts.port or (465 if parts.scheme == "smtps" else 25)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=parts.scheme == "smtps"), timeout=5
            )
            try:
                greeting = await asyncio.wait_for(reader.readline(), timeout=5)
            finally:
                writer.close()
        except Exception as exc:
            return [Check("mail-out", "fail", f"the relay {host}:{port} is unreachable: {_plain(exc)}")]
        if not greeting.startswith(b"220"):
            words = greeting.decode(errors="replace").strip()[:120]
            return [Check("mail-out", "fail", f"the relay {host}:{port} does not accept mail: {words}")]
        return [Check("mail-out", "ok", f"relay {host}:{port} answers")]
    return await asyncio.to_thread(_maildir, target)


def _maildir(target: str) -> list[Check]:
    """A Maildir we can write into (or whose parent lets us create it)."""
    path = Path(os.path.expanduser(target))
    for sub in ("tmp", "new", "cur"):
        if not (path / sub).is_dir():
            parent = path if path.exists() else path.parent
            while not parent.exists():
                parent = parent.parent
            if os.access(parent, os.W_OK):
                return [Check("mail-out", "ok", f"Maildir {path} will be created at the first mail")]
            return [Check("mail-out", "fail", f"Maildir {path} does not exist and {parent} is not writable")]
    try:
        with tempfile.NamedTemporaryFile(dir=path / "tmp", prefix=".doctor-"):
            pass
    except OSError as exc:
        return [Check("mail-out", "fail", f"cannot write into the Maildir {path}: {exc.strerror or exc}")]
    return [Check("mail-out", "ok", f"Maildir {path} is writable")]


async def examine(settings: Settings) -> list[Check]:
    """Every check, in the order an operator would fix them."""
    found = configuration(settings)
    for part in await asyncio.gather(broker(settings), database(settings), mail_out(settings)):
        found += part
    return found


def _plain(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ConnectionRefusedError | OSError) and "refused" in text_.lower():
        return "connection refused (is it running?)"
    if isinstance(exc, TimeoutError):
        return "no answer within the time limit"
    return text_[:200]


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path}"


def _db_name(settings: Settings) -> str:
    parts = urlsplit(settings.database_url)
    if parts.scheme.startswith("sqlite"):
        return "SQLite " + settings.database_url.split(":///", 1)[-1]
    return f"PostgreSQL {parts.hostname}:{parts.port or 5432}{parts.path}"


def _prefixed(settings: Settings) -> str:
    return f" (prefix {settings.prefix})" if settings.prefix else ""
