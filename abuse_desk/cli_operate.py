"""Operator subcommands: `doctor`, `health` (for orchestrators) and `deploy rabbitmq-definitions`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core.errors import ConfigError
from core.settings import load_settings, split_host_port

console = Console()
err = Console(stderr=True)
deploy_app = typer.Typer(help="Deployment files generated from the code.", no_args_is_help=True)
MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warning[/]", "fail": "[bold red]FAILED[/]"}


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields a callback(done, total)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check configuration, broker, database and mail-out; exit 1 when something is wrong."""
    from abuse_desk.doctor import Check, examine
    from abuse_desk.home import anchored

    try:
        settings = anchored(load_settings())
    except ConfigError as exc:
        found = [Check("configuration", "fail", str(exc))]
    else:
        found = asyncio.run(examine(settings))
    failed = any(c.failed for c in found)
    if as_json:
        sys.stdout.write(json.dumps([c.__dict__ for c in found]) + "\n")
    else:
        for c in found:
            console.print(f"{MARKS[c.state]:>22}  [bold]{c.name}[/]: {c.detail}", highlight=False, soft_wrap=True)
        console.print("[bold red]something is wrong: see above[/]" if failed else "[green]all good[/]")
    raise typer.Exit(1 if failed else 0)


def health(
    url: Annotated[str | None, typer.Option(help="default: http://ABUSE_DESK_METRICS_LISTEN/healthz")] = None,
    timeout: float = 5.0,
    wait: Annotated[float, typer.Option(help="keep asking up to this many seconds until it is ready")] = 0.0,
) -> None:
    """Ask a running process whether it is ready (exit 0) or not (exit 1): for container health checks."""
    if url is None:
        try:
            host, port = split_host_port(load_settings().metrics_listen)
        except (ConfigError, ValueError) as exc:
            err.print(f"configuration error: {exc}")
            raise typer.Exit(2) from exc
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
    give_up = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read().decode()
                ok = response.status == 200
        except urllib.error.HTTPError as exc:
            body, ok = exc.read().decode(errors="replace"), False
        except OSError as exc:
            if time.monotonic() < give_up:
                time.sleep(0.5)
                continue
            err.print(f"not healthy: nothing answers at {url} ({exc})")
            raise typer.Exit(1) from exc
        if ok or time.monotonic() >= give_up:
            break
        time.sleep(0.5)
    console.print(body.strip(), highlight=False)
    raise typer.Exit(0 if ok else 1)


@deploy_app.command("rabbitmq-definitions")
def rabbitmq_definitions(
    prefix: Annotated[str, typer.Option(help="the ABUSE_DESK_PREFIX of the instance")] = "",
    vhost: str = "/",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
) -> None:
    """RabbitMQ definitions (exchanges, quorum queues, dead letters, policies) from the topology table."""
    from abuse_desk.deploy import definitions_json

    text = definitions_json(prefix, vhost)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@deploy_app.command("example-config")
def example_config(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
) -> None:
    """The example configuration (every key with its default), generated from the settings model."""
    from abuse_desk.example_config import example_toml

    text = example_toml()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add the operator subcommands to the `abuse-desk` command."""
    app.command()(doctor)
    app.command()(health)
    app.add_typer(deploy_app, name="deploy")
