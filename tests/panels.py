"""Local HTTP fakes of the suspension backends: a webhook receiver that checks signatures, and WHMCS's api.php."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from actions.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Received:
    """One request as the fake saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Fake:
    """Shared state of a fake: what it received, and the statuses it is told to answer next."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[int | str] = field(default_factory=list)  # next answers: HTTP status, or "hang"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> int | str | None:
        with self.lock:
            return self.script.pop(0) if self.script else None


@dataclass
class WebhookFake(Fake):
    """A platform endpoint: 401 when the HMAC signature or timestamp is wrong, else 200 and acts."""

    secret: str = "s3cret"
    suspended: set[str] = field(default_factory=set)
    suspend_calls: int = 0
    lift_calls: int = 0
    bad_signatures: int = 0

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        scripted = self.next_answer()
        if scripted == "hang":
            time.sleep(3)
            return 504, {"error": "too slow"}
        if isinstance(scripted, int):
            return scripted, {"error": "scripted"}
        ok = verify(
            self.secret, headers.get(TIMESTAMP_HEADER, ""), body, headers.get(SIGNATURE_HEADER, ""), now=time.time()
        )
        if not ok:
            self.bad_signatures += 1
            return 401, {"error": "bad signature"}
        doc = json.loads(body)
        names = set(doc["services"]) | set(doc["mailboxes"]) | set(doc["domains"])
        if doc["event"] == "service.suspend":
            self.suspend_calls += 1
            self.suspended |= names
        elif doc["event"] == "service.lift":
            self.lift_calls += 1
            self.suspended -= names
        return 200, {"ok": True}


@dataclass
class WhmcsFake(Fake):
    """includes/api.php as documented: form POST, identifier/secret, responsetype=json, result success|error."""

    identifier: str = "api-id"
    secret: str = "api-secret"
    services: dict[str, str] = field(default_factory=lambda: {"101": "Active", "102": "Active"})
    calls: list[dict[str, str]] = field(default_factory=list)

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        scripted = self.next_answer()
        if isinstance(scripted, int):
            return scripted, {"result": "error", "message": "scripted"}
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"result": "error", "message": "form POST expected"}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.calls.append(form)
        if form.get("identifier") != self.identifier or form.get("secret") != self.secret:
            return 403, {"result": "error", "message": "Authentication Failed"}
        if form.get("responsetype") != "json":
            return 200, {"result": "error", "message": "responsetype=json expected by this fake"}
        action, sid = form.get("action"), form.get("serviceid", "")
        if action not in ("ModuleSuspend", "ModuleUnsuspend"):
            return 200, {"result": "error", "message": "Command Not Found"}
        if sid not in self.services:
            return 200, {"result": "error", "message": "Service ID Not Found"}
        if action == "ModuleSuspend":
            if self.services[sid] == "Suspended":
                return 200, {"result": "error", "message": "Account is already suspended"}
            self.services[sid] = "Suspended"
        else:
            if self.services[sid] != "Suspended":
                return 200, {"result": "error", "message": "Account is not suspended"}
            self.services[sid] = "Active"
        return 200, {"result": "success"}


def _handler(fake: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k: v for k, v in self.headers.items()}
            headers |= {k.lower(): v for k, v in self.headers.items()}
            status, answer = fake.handle(headers, body)
            fake.received.append(Received(self.path, headers, body, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except BrokenPipeError:
                pass  # the client timed out and went away

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(fake: Fake, path: str = "/hook") -> Iterator[Fake]:
    """Run the fake on 127.0.0.1 (a free port) in a thread; fake.url is its address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
