"""The component table is the one list of programs: the topology's consumers, `serve --help` and the README agree."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from abuse_desk.cli import app
from abuse_desk.components import TABLE
from core.topology import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def test_every_queue_is_consumed_by_the_component_the_topology_names() -> None:
    by_component = {c.name: set(c.queues) for c in TABLE}
    for queue in QUEUES:
        assert queue.consumer in by_component, f"{queue.name}: no component {queue.consumer!r}"
    for name, queues in by_component.items():
        assert queues == {q.name for q in QUEUES if q.consumer == name}, name


def test_serve_help_and_the_readme_name_every_component() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    serve_row = next(line for line in readme.splitlines() if line.startswith("| `abuse-desk serve COMPONENT`"))
    for component in TABLE:
        assert component.name in result.output, component.name
        assert f"`{component.name}`" in serve_row, component.name
