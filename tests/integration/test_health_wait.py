"""`abuse-desk health --wait`: keeps asking until the process is ready, and says so truthfully when it never is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from abuse_desk.cli import app
from tests.conftest import free_port


class _Starting(BaseHTTPRequestHandler):
    """/healthz answers 503 to the first two requests (still starting), then 200."""

    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        ready = type(self).seen > 2
        body = b'{"ready": true}' if ready else b'{"ready": false}'
        self.send_response(200 if ready else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def starting_server() -> Iterator[str]:
    _Starting.seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Starting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def test_without_wait_a_starting_process_is_not_ready(starting_server: str) -> None:
    result = CliRunner().invoke(app, ["health", "--url", starting_server])
    assert result.exit_code == 1 and _Starting.seen == 1


def test_wait_asks_again_until_ready(starting_server: str) -> None:
    result = CliRunner().invoke(app, ["health", "--url", starting_server, "--wait", "30"])
    assert result.exit_code == 0, result.output
    assert _Starting.seen == 3 and '"ready": true' in result.output


def test_wait_gives_up_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    result = CliRunner().invoke(app, ["health", "--url", url, "--wait", "1"])
    assert result.exit_code == 1 and "nothing answers" in result.output
