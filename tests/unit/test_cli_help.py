"""`lifelong <command> --help` reads as prose at any terminal width, not as the docstring's source wrapping."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from lifelong.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)


def test_every_command_is_covered():
    assert {"run", "bench", "feed", "broker", "check-config", "report", "scrape"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_paragraphs_are_single_lines(name):
    command = typer.main.get_command(app).commands[name]
    paragraphs = (command.help or "").split("\n\n")
    assert paragraphs[0], f"{name} has no help"
    assert all("\n" not in paragraph for paragraph in paragraphs), command.help


def test_help_wraps_at_the_terminal_width():
    """A sentence the docstring breaks across source lines comes out whole on a wide terminal."""
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "SIGTERM or Ctrl-C finishes the current batch, writes a checkpoint" in result.output


@pytest.mark.parametrize("name", ["bench", "feed"])
def test_options_of_the_long_commands_are_grouped(name):
    """`lifelong bench` has some forty options, `lifelong feed` sixteen: each belongs to a titled group, and
    every group is shown."""
    command = typer.main.get_command(app).commands[name]
    options = [param for param in command.params if param.name != "help"]
    ungrouped = [param.name for param in options if not getattr(param, "rich_help_panel", None)]
    assert not ungrouped, ungrouped
    panels = {param.rich_help_panel for param in options}
    assert len(panels) >= 3
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "120"}, terminal_width=120)
    assert result.exit_code == 0, result.output
    assert all(panel in result.output for panel in panels), result.output
