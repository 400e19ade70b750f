"""HTTP endpoints of a process: uvicorn on the runtime's own loop; /metrics, /healthz and /livez per process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from core import metrics
from core.errors import ConfigError
from core.settings import split_host_port

log = structlog.get_logger("abuse_desk.http")

Health = Callable[[], dict[str, Any]]


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the runtime (which stops every component in order)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def start_server(app: Any, listen: str, *, name: str, env_var: str) -> tuple[Callable[[], Any], int]:
    """Serve an ASGI app on HOST:PORT in the current loop; returns (stop coroutine function, bound port)."""
    host, port = split_host_port(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        problem = exc.strerror or str(exc)
        raise ConfigError(f"cannot serve {name} on {listen}: {problem}; set {env_var} to a free HOST:PORT") from exc
    sock.listen(128)
    sock.setblocking(False)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = EmbeddedServer(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            raise ConfigError(f"cannot serve {name} on {listen} ({env_var})")
        await asyncio.sleep(0.02)
    log.info("http.listening", endpoint=name, host=host, port=bound)

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)

    return stop, bound


def process_app(health: Health) -> Starlette:
    """/metrics (Prometheus text format), /healthz (ready: 200 or 503 with the reasons), /livez (the loop answers)."""

    async def metrics_page(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def healthz(request: Request) -> Response:
        report = health()
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    async def livez(request: Request) -> Response:
        return PlainTextResponse("alive\n")

    return Starlette(
        routes=[Route("/metrics", metrics_page), Route("/healthz", healthz), Route("/livez", livez)],
    )
