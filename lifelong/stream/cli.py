"""Typer commands ``lifelong broker`` and ``lifelong feed`` (registered by :mod:`lifelong.cli`)."""

from __future__ import annotations

import json
import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)

__all__ = ["broker", "feed", "parse_params"]


def broker(
    port: int = typer.Option(9092, "--port", "-p", help="TCP port to listen on (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on and to advertise to clients."),
) -> None:
    """Start the embedded Kafka-protocol broker (Tansu, memory storage) until Ctrl-C or SIGTERM.

    Prints its address (host:port) on stdout. Everything it stores is lost when it stops: demos and tests.

    Example: lifelong broker --port 9092   (then: lifelong feed --bootstrap 127.0.0.1:9092)
    """
    from lifelong.stream.broker import BrokerError, EmbeddedBroker

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    embedded = EmbeddedBroker(host=host, port=port)
    try:
        try:
            embedded.start()
        except BrokerError as exc:
            console.print(f"[red]cannot start the broker:[/red] {exc}")
            raise typer.Exit(1) from exc
        typer.echo(embedded.bootstrap)  # stdout: the address alone, for scripts
        console.print(f"broker ready at [bold]{embedded.bootstrap}[/bold] (Ctrl-C to stop)")
        while not stop.wait(0.5):
            if not embedded.is_running():
                console.print(f"[red]the broker exited unexpectedly[/red]\n{embedded.output()}")
                raise typer.Exit(1)
    finally:
        embedded.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("broker stopped")


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["tasks=5", "mode=abrupt", "positions=[1000,2000]"]`` -> ``{"tasks": 5, "mode": "abrupt", ...}``.

    Values are read as JSON when they parse (numbers, lists, true/false), else kept as strings.
    """
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


_target = partial(typer.Option, rich_help_panel="Where it goes")
_stream = partial(typer.Option, rich_help_panel="The stream (dataset and scenario)")
_pace = partial(typer.Option, rich_help_panel="Encoding, pace and output")


def feed(
    bootstrap: str = _target("127.0.0.1:9092", "--bootstrap", "-b", envvar="LIFELONG_KAFKA__BOOTSTRAP_SERVERS",
                             help="Kafka bootstrap servers, comma-separated."),
    topic: str = _target("lifelong.events", "--topic", "-t", help="Topic to produce into."),
    partitions: int = _target(1, "--partitions", min=1,
                              help="Partitions if the topic is created (1 keeps the stream's order)."),
    keys: str = _target("index", "--keys", help="Record key: index, label or none."),
    config: Path | None = _target(None, "--config", help="Take SASL/SSL settings from this config."),
    dataset: str = _stream("mnist", "--dataset", "-d",
                           help="digits, mnist, mnist:DIR, csv:PATH, npz:PATH or river:NAME."),
    scenario: str = _stream("split", "--scenario", "-s", help="plain (no change), split, permuted, rotated or drift."),
    tasks: int = _stream(0, "--tasks", help="Shortcut for --param tasks=N (0: the scenario's default)."),
    param: list[str] = _stream([], "--param", "-P", help="Scenario parameter key=value (repeatable), e.g. -P tasks=5."),
    seed: int = _stream(0, "--seed", help="Seed for the scenario (same seed, same stream)."),
    limit: int = _stream(0, "--limit", "-n", help="Produce at most this many events (0 = all)."),
    codec: str = _pace("f32", "--codec", "-c", help="f32 (fast), json or image."),
    rate: float = _pace(0.0, "--rate", "-r", help="Events per second; 0 = as fast as possible."),
    boundaries_out: Path | None = _pace(None, "--boundaries-out", help="Where to write the boundaries JSON "
                                        "(default: <topic>.boundaries.json here)."),
    progress: bool = _pace(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Produce a dataset or a continual-learning scenario into a Kafka topic, in order, with a progress bar.

    Prints where each task or drift boundary fell and writes them as JSON beside the run, for evaluation.

    Example: lifelong feed -b 127.0.0.1:9092 -t mnist -d mnist -s split --tasks 5 --rate 2000
    """
    from lifelong.config import KafkaConfig, load_settings
    from lifelong.stream.feed import FeedError, feed_arrays

    if keys not in ("index", "label", "none"):
        raise typer.BadParameter("use index, label or none", param_hint="--keys")
    params = parse_params(param)
    if tasks:
        params["tasks"] = tasks
    kafka = load_settings(config).kafka if config is not None else KafkaConfig()
    servers = KafkaConfig(bootstrap_servers=bootstrap).bootstrap_servers
    kafka = kafka.model_copy(update={"bootstrap_servers": servers})

    from lifelong.datasets import build_scenario

    try:
        sc = build_scenario(scenario, dataset=dataset, seed=seed, limit=limit or None, **params)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario/--param") from exc
    x, y = (sc.x[:limit], sc.y[:limit]) if limit else (sc.x, sc.y)
    n = len(y)
    boundaries = [b for b in sc.boundaries if b.position < n]
    pace = "as fast as possible" if not rate else f"{rate:,.0f} events/s"
    console.print(f"feeding {n:,} events of {dataset} ({scenario}) into [bold]{topic}[/bold] at {bootstrap}, "
                  f"codec {codec}, {pace}")
    try:
        report = feed_arrays(x, y, topic=topic, kafka=kafka, codec=codec, rate=rate or None, keys=keys,
                             partitions=partitions, progress=progress)
    except (FeedError, ValueError) as exc:
        console.print(f"[red]feed failed:[/red] {exc}")
        raise typer.Exit(1) from exc

    # The scenario's own boundaries document (lifelong.datasets.read_boundaries reads it back), plus the feed.
    doc = sc.boundaries_json()
    doc["n"] = n
    doc["boundaries"] = [b for b in doc["boundaries"] if b["position"] < n]
    doc["feed"] = {"topic": topic, "bootstrap": bootstrap, "codec": codec, "records": report.records,
                   "partitions": report.partitions, "keys": keys, "rate": rate or None,
                   "base_partition": report.base_partition, "base_offset": report.base_offset}
    out = boundaries_out or Path(f"{topic}.boundaries.json")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for b in boundaries:
        console.print(f"  boundary at event {b.position:>8,} ({b.kind}): {b.description}")
    console.print(f"fed {report.records:,} events ({report.bytes / 1e6:,.1f} MB) in {report.seconds:,.1f} s "
                  f"({report.records_per_s:,.0f} events/s); boundaries written to {out}")
