"""The ``lifelong`` command line: run the daemon, check a config, start the embedded broker, feed a stream.

Every command's ``--help`` explains it with an example. Heavy imports (torch, kafka) happen inside the commands so
``--help`` stays quick.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lifelong import __version__
from lifelong.config import ConfigError, load_settings

app = typer.Typer(
    name="lifelong",
    help="A daemon for streaming continual learning: it reads a labelled Kafka stream, predicts each event before "
    "learning from it, keeps what it learned with replay and regularisers, detects drift, and exports "
    "per-class accuracy to Prometheus.\n\nQuick start: `lifelong broker` in one terminal, "
    "`lifelong feed --scenario split --dataset mnist` and `lifelong run --config configs/default.yaml` in others.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
console = Console(stderr=True)

ConfigPath = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (see configs/ and the README's configuration reference). "
                 "Environment variables LIFELONG_<SECTION>__<KEY> override it."),
]


def _load(config: Path | None):
    """Validated settings, or exit 2 naming every bad key and why."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    from lifelong.daemon.factory import validate_components

    try:
        validate_components(settings)
    except ValueError as exc:
        console.print(f"[red]error:[/red] invalid configuration {config}:\n  {exc}")
        raise typer.Exit(2) from exc
    return settings


def _version(value: bool) -> None:
    if value:
        print(f"lifelong {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """lifelong: streaming continual learning from Kafka."""


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="YAML config file to validate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the effective config as JSON, not YAML.")] = False,
    connect: Annotated[bool, typer.Option(
        "--connect", help="Also look at what the daemon would meet: the cluster, the topics and dead-letter topics, "
        "the checkpoint folder and the metrics port.")] = False,
) -> None:
    """Validate a config file and print the effective configuration (file + environment overrides).

    Exits 2 and names each bad key with the reason when the config is invalid. With --connect, it then asks the
    cluster for the topics (partitions, topic IDs) and their dead-letter topics, opens the checkpoint folder (is it
    writable, held by another daemon, which checkpoint would it resume from) and tries the metrics port, changing
    nothing the daemon relies on; it exits 1 when one of them would stop the daemon or keep it waiting.

    Example: lifelong check-config /etc/lifelong/config.yaml --connect
    """
    import yaml

    settings = _load(config)
    data = settings.model_dump(mode="json")
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")
    console.print(f"[green]ok[/green]: {config} is valid")
    if not connect:
        return
    from rich.table import Table

    from lifelong.preflight import preflight

    findings = preflight(settings)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found")
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for finding in findings:
        table.add_row(finding.check, f"[{colour[finding.status]}]{finding.status}[/]", finding.detail)
    console.print(table)
    failed = [finding.check for finding in findings if finding.status == "fail"]
    if failed:
        console.print(f"[red]not ready to run[/red]: {', '.join(failed)}")
        raise typer.Exit(1)


@app.command("run")
def run(
    config: ConfigPath = None,
    max_events: Annotated[int | None, typer.Option(help="Stop after this many events (demos, tests).")] = None,
    idle_exit: Annotated[float | None, typer.Option(help="Stop after this many seconds without a record.")] = None,
) -> None:
    """Run the daemon: consume the configured topics, predict each event, then learn from it.

    Serves /metrics, /livez and /readyz on metrics.host:metrics.port. SIGTERM or Ctrl-C finishes the current
    batch, writes a checkpoint, commits the offsets and exits 0. On start it resumes from the newest valid
    checkpoint in checkpoint.dir.

    Example: lifelong run --config configs/default.yaml
    """
    settings = _load(config)
    if max_events is not None:
        settings.daemon.max_events = max_events
    if idle_exit is not None:
        settings.daemon.idle_exit_s = idle_exit
    from lifelong.logs import setup_logging

    setup_logging(settings.daemon.log_format, settings.daemon.log_level)
    from lifelong.daemon.service import Daemon, StartupError

    try:
        stats = Daemon(settings).run()
    except StartupError as exc:
        console.print(f"[red]error:[/red] cannot start: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"learned {stats.events} events at {stats.events_per_second:,.0f}/s, "
                  f"{stats.dead_letters} dead letters, {stats.checkpoints} checkpoints")


def _register_commands() -> None:
    """Commands whose implementations live beside the code they drive."""
    from lifelong.bench.cli import bench
    from lifelong.report import report, scrape
    from lifelong.stream.cli import broker, feed

    app.command("broker")(broker)
    app.command("feed")(feed)
    app.command("bench")(bench)
    app.command("report")(report)
    app.command("scrape")(scrape)


def _reflow_help() -> None:
    """Each command's help from its docstring, one line per paragraph: rich keeps a docstring's line breaks,
    which would print its source wrapping, broken again at the terminal's width."""
    for info in app.registered_commands:
        doc = inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in doc.split("\n\n"))


_register_commands()
_reflow_help()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
