"""The `abuse-desk` command: run the pipeline, serve one component, and the ops and script subcommands."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvloop
from rich.console import Console
from rich.table import Table

from abuse_desk import components
from abuse_desk.cli_desk import register as register_desk_commands
from abuse_desk.cli_operate import register as register_operator_commands
from core.errors import AbuseDeskError, ConfigError
from core.logging import configure_logging
from core.settings import Settings, load_settings

app = typer.Typer(help="abuse-desk: the hosting provider's abuse desk.", no_args_is_help=True, add_completion=False)
cases_app = typer.Typer(help="Cases for ops and scripts.", no_args_is_help=True)
inventory_app = typer.Typer(help="Customers, services and resources.", no_args_is_help=True)
scheduler_app = typer.Typer(help="Deadlines.", no_args_is_help=True)
dead_app = typer.Typer(help="Dead letters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
report_app = typer.Typer(help="Reports on the desk's work.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(cases_app, name="cases")
app.add_typer(inventory_app, name="inventory")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(dead_app, name="dead")
app.add_typer(db_app, name="db")
register_operator_commands(app)  # doctor, health, deploy
register_desk_commands(app, cases_app, dead_app)  # cases list|show|<action>, dead list|replay|discard, operators
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    from abuse_desk.home import anchored

    try:
        return anchored(load_settings())  # ./var under the desk's home, wherever the command runs (README)
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {exc}")
        raise typer.Exit(2) from exc


def _run(coro: Any) -> Any:
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # uvloop: the listener's speed
            return runner.run(coro)
    except AbuseDeskError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _dump(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


@app.command()
def run(log_level: str = "INFO") -> None:
    """Every component in one process (small installs and demos)."""
    from abuse_desk.runtime import COMPONENTS, serve

    configure_logging(log_level)
    _run(serve(_settings(), COMPONENTS))


@app.command("serve", help="One component. " + components.summary())
def serve_one(component: str, log_level: str = "INFO") -> None:
    """One component (the table in abuse_desk/components.py)."""
    from abuse_desk.runtime import COMPONENTS, PLANNED, serve

    if component in PLANNED:
        err.print(f"[bold red]{component}[/] is not part of this release yet")
        raise typer.Exit(2)
    if component not in COMPONENTS:
        err.print(f"unknown component {component!r}: choose from {', '.join(COMPONENTS)}")
        raise typer.Exit(2)
    settings = _settings()
    if component == "web" and not settings.web_token:
        from abuse_desk import ops

        if not _run(ops.has_admin(settings)):
            err.print(
                "[bold red]nobody could sign in on the ops web page:[/] add an admin with `abuse-desk operators add"
                " NAME --role admin`, or set ABUSE_DESK_WEB_TOKEN (a long random string) to sign in as bootstrap"
            )
            raise typer.Exit(2)
    configure_logging(log_level)
    _run(serve(settings, (component,)))


@app.command()
def parse(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    with_incidents: Annotated[bool, typer.Option("--incidents", help="list the incidents, not their count")] = False,
) -> None:
    """Parse mail files offline."""
    from ingest.parse import parse_report

    for path in files:
        report = parse_report(path.read_bytes())
        data = {"file": str(path)} | report.model_dump(mode="json", exclude={"envelope", "schema_version", "incidents"})
        incidents = report.model_dump(mode="json", include={"incidents"})["incidents"]
        data["incidents"] = incidents if with_incidents else len(incidents)
        if as_json:
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        else:
            console.print(
                f"[bold]{path}[/]: {report.format} / {report.category}"
                f" ips={report.source_ips} domains={report.domains} urls={report.urls}"
                f" reporter={report.reporter} incidents={len(report.incidents)}"
            )
            for incident in report.incidents if with_incidents else ():
                console.print(f"  incident: {incident.model_dump(exclude_none=True, exclude={'evidence'})}")
            for warning in report.parse_warnings:
                console.print(f"  warning: {warning}")


@inventory_app.command("import")
def inventory_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load customers, services and resources (JSON of design §5)."""
    from abuse_desk import ops
    from abuse_desk.cli_operate import progress_bar

    with progress_bar("resources") as progress:
        counts = _run(ops.import_inventory(_settings(), str(file), progress))
    console.print(
        f"imported {counts['customers']} customers, {counts['services']} services, {counts['resources']} resources"
    )


@scheduler_app.command("tick")
def scheduler_tick(now: Annotated[str | None, typer.Option("--now", help="ISO 8601; default: now")] = None) -> None:
    """Fire the deadlines due at that time."""
    from abuse_desk import ops

    when = datetime.now(UTC)
    if now:
        try:
            when = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError as exc:
            err.print(f"--now {now!r} is not ISO 8601")
            raise typer.Exit(2) from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    fired = _run(ops.tick(_settings(), when))
    cases = list(dict.fromkeys(fired))
    console.print(f"fired {len(fired)} deadline(s)" + (f" of case(s) {', '.join(cases)}" if cases else ""))


@app.command()
def queues(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Depth, consumers and dead letters per queue."""
    from abuse_desk import ops

    stats = _run(ops.queue_stats(_settings()))
    if as_json:
        sys.stdout.write(_dump(stats) + "\n")
        return
    table = Table("queue", "messages", "consumers", "dead letters")
    for s in stats:
        table.add_row(s["queue"], str(s["messages"]), str(s["consumers"]), f"[red]{s['dead']}[/]" if s["dead"] else "0")
    console.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from abuse_desk import ops

    _run(ops.db_upgrade(_settings()))
    console.print("database is up to date")


@report_app.command("transparency")
def report_transparency(
    year: Annotated[int, typer.Option("--year", help="calendar year")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The Art. 15 DSA transparency figures of a year (and internal figures)."""
    from abuse_desk import ops

    figures = _run(ops.transparency(_settings(), year))
    if as_json:
        sys.stdout.write(_dump(figures) + "\n")
        return
    console.print(f"[bold]Transparency report {year}[/] (Art. 15 DSA, hosting service)")
    for section, values in figures.items():
        if isinstance(values, dict):
            console.print(f"[bold]{section}[/]")
            for key, value in values.items():
                console.print(f"  {key}: {value}")


def main() -> None:
    """Console-script entry point."""
    app()
