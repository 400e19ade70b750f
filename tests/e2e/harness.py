"""Runs `abuse-desk` as a user would: the real console script in a scratch directory, with its own prefix."""

from __future__ import annotations

import json
import mailbox
import os
import re
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from email.utils import getaddresses
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from core.messages import Message as CoreMessage
from tests.conftest import AMQP_URL, free_port, require_service
from tests.panels import Fake, _handler
from tests.redaction_check import assert_no_identity

SCRIPT = str(Path(sys.executable).with_name("abuse-desk"))


class Desk:
    """A whole pipeline (`abuse-desk run`) in a scratch directory, plus helpers to drive and inspect it."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        require_service("RabbitMQ", "127.0.0.1", 5672)
        self.workdir = workdir
        self.planted: set[str] = set()  # complainants' identities: checked against every customer mail at stop
        self.smtp_port = free_port()
        self.prefix = f"e{uuid.uuid4().hex[:8]}."
        self.env = (
            os.environ.copy()
            | {
                "ABUSE_DESK_AMQP_URL": AMQP_URL,
                "ABUSE_DESK_SMTP_LISTEN": f"127.0.0.1:{self.smtp_port}",
                "ABUSE_DESK_PREFIX": self.prefix,
                "ABUSE_DESK_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
                "ABUSE_DESK_POLICY_LISTEN": f"127.0.0.1:{free_port()}",
                "ABUSE_DESK_WEB_LISTEN": f"127.0.0.1:{free_port()}",
            }
            | (env or {})
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [SCRIPT, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"abuse-desk {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        log = open(self.workdir / "run.log", "wb")  # kept open for the process's life
        self.proc = subprocess.Popen([SCRIPT, "run"], cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("abuse-desk run exited:\n" + self.log())
            try:
                with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=2) as s:
                    s.noop()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("listener did not come up:\n" + self.log())

    def plant(self, raw: bytes, mail_from: str) -> None:
        """Remember who complained (envelope, From, Reply-To, their display names): no customer may read them."""
        head = message_from_bytes(raw, policy=policy.default)
        found = {mail_from}
        for field in ("From", "Reply-To", "Sender"):
            for name, address in getaddresses([str(v) for v in head.get_all(field, [])]):
                found |= {address, name if " " in name.strip() else ""}
        self.planted |= {f for f in found if f and "@localhost" not in f}

    def customer_mails(self) -> list[Message]:
        """Every mail of the outbox that went to a customer (the desk's customer-* mails)."""
        return [m for m in self.outbox() if str(m.get("X-Abuse-Desk-Kind", "")).startswith("customer-")]

    def check_customer_mails(self) -> None:
        """No customer mail (body, attachments) names a complainant planted in this desk's reports."""
        for mail in self.customer_mails():
            text = mail.as_string() + "".join(
                str(p.get_content()) for p in mail.walk() if p.get_content_maintype() == "text"
            )
            if str(mail["To"]).lower() in {p.lower() for p in self.planted}:
                continue  # a complainant who is also a customer reads their own mail
            assert_no_identity(text, self.planted)

    def stop(self) -> None:
        try:
            if self.proc is not None:
                self.check_customer_mails()
        finally:
            self._stop()

    def _stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._delete_topology()

    def _delete_topology(self) -> None:
        import asyncio

        from core.broker import Broker

        async def delete() -> None:
            b = Broker(AMQP_URL, self.prefix)
            await b.connect(attempts=2)
            await b.delete_topology()
            await b.close()

        asyncio.run(delete())

    def log(self) -> str:
        path = self.workdir / "run.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def mail(self, raw: bytes, *, mail_from: str = "victim@example.org", to: str = "abuse@localhost") -> str:
        self.plant(raw, mail_from)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.ehlo("reporter.example.org")
            code, text = s.docmd("MAIL FROM:", f"<{mail_from}>")
            assert code == 250, text
            code, text = s.docmd("RCPT TO:", f"<{to}>")
            assert code == 250, text
            code, text = s.data(raw)
            assert code == 250, text
        return text.decode().rsplit(" ", 1)[1]

    def cases(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("cases", "list", "--json").stdout)  # type: ignore[no-any-return]

    def case(self, case_id: str) -> dict[str, Any]:
        return json.loads(self.cli("cases", "show", case_id, "--json").stdout)  # type: ignore[no-any-return]

    def wait_case(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for case in self.cases():
                if predicate(case):
                    return case
            time.sleep(0.3)
        raise AssertionError(f"no matching case; cases={self.cases()}\n{self.log()}")

    def handled(self, queue: str) -> int:
        """How many messages of a queue this desk's consumers have finished (its /metrics)."""
        url = f"http://{self.env['ABUSE_DESK_METRICS_LISTEN']}/metrics"
        text = httpx.get(url, timeout=10).text
        pattern = rf'^abuse_desk_handler_seconds_count{{[^}}]*queue="{re.escape(queue)}"[^}}]*}} ([0-9.e+]+)$'
        return int(sum(float(v) for v in re.findall(pattern, text, re.M)))

    def wait_handled(self, queue: str, count: int, timeout: float = 30.0) -> None:
        """Wait until the queue's consumers have finished `count` messages (no fixed sleep: the desk says so)."""
        deadline = time.monotonic() + timeout
        while self.handled(queue) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{queue}: {self.handled(queue)} handled, expected {count}\n{self.log()}")
            time.sleep(0.1)

    def outbox(self) -> list[Message]:
        box = self.workdir / "var" / "outbox"
        if not box.exists():
            return []
        return [message_from_bytes(bytes(m), policy=policy.default) for m in mailbox.Maildir(box, create=False)]  # type: ignore[arg-type]

    def wait_mails(self, predicate: Any, count: int = 1, timeout: float = 30.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.outbox() if predicate(m)]
            if len(found) >= count:
                return found
            time.sleep(0.3)
        raise AssertionError(f"expected {count} mail(s); outbox has {[m['Subject'] for m in self.outbox()]}")

    def ledger(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM suspensions WHERE lifted_at IS NULL")

    def rows(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query on the desk's database: its SQLite file, or PostgreSQL when the desk runs on it."""
        url = self.env.get("ABUSE_DESK_DATABASE_URL") or ""
        if not url.startswith("postgresql"):
            with sqlite3.connect(self.workdir / "var" / "abuse-desk.db") as db:
                db.row_factory = sqlite3.Row
                return [dict(r) for r in db.execute(query)]
        import asyncio

        from sqlalchemy import text

        from core.db import create_engine

        async def fetch() -> list[dict[str, Any]]:
            engine = create_engine(url)
            try:
                async with engine.connect() as conn:
                    return [dict(r) for r in (await conn.execute(text(query))).mappings()]
            finally:
                await engine.dispose()

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:  # its own loop: the caller may be inside one (Playwright's sync API)
            return pool.submit(asyncio.run, fetch()).result()

    def publish(self, message: CoreMessage) -> None:
        """Publish a message on the desk's broker prefix (e.g. a redelivered command)."""
        import asyncio

        from core.broker import Broker

        async def send() -> None:
            b = Broker(AMQP_URL, self.prefix)
            await b.connect(attempts=2)
            await b.publish(message)
            await b.close()

        asyncio.run(send())

    def policy_service(self, requests: list[dict[str, str]], timeout: float = 30.0) -> list[str]:
        """Ask the Postfix policy service (one connection, requests in turn); returns the `action=` values."""
        host, port = self.env["ABUSE_DESK_POLICY_LISTEN"].rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((host, int(port)), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        answers = []
        with sock, sock.makefile("rwb") as stream:
            for attrs in requests:
                base = {"request": "smtpd_access_policy", "protocol_state": "RCPT"}
                stream.write("".join(f"{k}={v}\n" for k, v in (base | attrs).items()).encode() + b"\n")
                stream.flush()
                reply = b""
                while not reply.endswith(b"\n\n"):
                    line = stream.readline()
                    assert line, "the policy service closed the connection"
                    reply += line
                assert reply.startswith(b"action="), reply
                answers.append(reply.decode().removeprefix("action=").rstrip("\n"))
        return answers

    def suspensions(self) -> list[dict[str, Any]]:
        """Every ledger row, lifted or not."""
        return self.rows("SELECT * FROM suspensions ORDER BY id")


def customer(cid: str, *, verified: bool = True, created: str = "2020-01-01") -> dict[str, object]:
    """An inventory customer with complete details (`verified=False`: identity not verified)."""
    return {
        "id": cid,
        "name": f"Customer {cid}",
        "email": f"{cid.lower()}@customers.example",
        "phone": "+33 1 23 45 67 89",
        "address": "10 rue du Test, Paris",
        "country": "FR",
        "language": "en",
        "created_at": created,
        "identity_verified": verified,
    }


def body(message: Message) -> str:
    part = message.get_payload(decode=True)
    return part.decode("utf-8") if isinstance(part, bytes) else str(part)


@contextmanager
def serve_on(fake: Fake, port: int, path: str = "/hook") -> Iterator[Fake]:
    """Run a tests.panels fake on 127.0.0.1:`port`, a port the desk was pointed at while nothing listened there."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{port}{path}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def case_mails(desk: Desk, case_id: str) -> list[Message]:
    """The mails of one case in the desk's outbox (X-Abuse-Desk-Case)."""
    return [m for m in desk.outbox() if m["X-Abuse-Desk-Case"] == case_id]


def queued_kinds(desk: Desk, case_id: str) -> list[str]:
    """The template kinds of every mail command the policy queued for a case (held or not), oldest first."""
    rows = desk.rows(f"SELECT type, body FROM policy_outbox WHERE case_id = '{case_id}' ORDER BY id")
    return [str(json.loads(r["body"]).get("kind")) for r in rows if r["type"] == "notification.send.v1"]
