"""The command's help names what it can do: `serve --help` lists every component."""

from __future__ import annotations

from typer.testing import CliRunner

from abuse_desk.cli import app
from abuse_desk.runtime import COMPONENTS


def test_serve_help_lists_every_component() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert [c for c in COMPONENTS if c not in result.output] == []


def test_the_desk_commands_are_there() -> None:
    groups = {
        "cases": ("list", "show", "suspend-now", "uphold"),
        "dead": ("list", "replay", "discard"),
        "operators": ("add", "list", "disable"),
    }
    for group, commands in groups.items():
        result = CliRunner().invoke(app, [group, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and all(c in result.output for c in commands), result.output
