"""Typer commands ``lifelong broker`` and ``lifelong feed`` (registered by :mod:`lifelong.cli`)."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import asdict, is_dataclass
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


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return _jsonable(vars(value))
    return str(value)


def _field(boundary: Any, name: str, default: Any = None) -> Any:
    if isinstance(boundary, dict):
        return boundary.get(name, default)
    return getattr(boundary, name, default)


def feed(
    bootstrap: str = typer.Option("127.0.0.1:9092", "--bootstrap", "-b",
                                  envvar="LIFELONG_KAFKA__BOOTSTRAP_SERVERS",
                                  help="Kafka bootstrap servers, comma-separated."),
    topic: str = typer.Option("lifelong.events", "--topic", "-t", help="Topic to produce into."),
    dataset: str = typer.Option("mnist", "--dataset", "-d",
                                help="digits, mnist, mnist:DIR, csv:PATH, npz:PATH or river:NAME."),
    scenario: str = typer.Option("split", "--scenario", "-s",
                                 help="split, permuted, rotated, drift... or none (the plain training set)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the scenario (same seed, same stream)."),
    codec: str = typer.Option("f32", "--codec", "-c", help="f32 (fast), json or image."),
    rate: float = typer.Option(0.0, "--rate", "-r", help="Events per second; 0 = as fast as possible."),
    limit: int = typer.Option(0, "--limit", "-n", help="Produce at most this many events (0 = all)."),
    partitions: int = typer.Option(1, "--partitions", min=1,
                                   help="Partitions if the topic is created (1 keeps the stream's order)."),
    keys: str = typer.Option("index", "--keys", help="Record key: index, label or none."),
    tasks: int = typer.Option(0, "--tasks", help="Shortcut for --param tasks=N (0: the scenario's default)."),
    param: list[str] = typer.Option([], "--param", "-P",
                                    help="Scenario parameter key=value (repeatable), e.g. -P tasks=5."),
    boundaries_out: Path | None = typer.Option(None, "--boundaries-out",
                                               help="Where to write the boundaries JSON "
                                                    "(default: <topic>.boundaries.json here)."),
    config: Path | None = typer.Option(None, "--config", help="Take SASL/SSL settings from this config."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
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

    x, y, meta, boundaries = _load(dataset, scenario, seed, limit, params)
    if limit:
        x, y = x[:limit], y[:limit]
    n = len(y)
    boundaries = [b for b in boundaries if int(_field(b, "position", 0)) < n]
    pace = "as fast as possible" if not rate else f"{rate:,.0f} events/s"
    console.print(f"feeding {n:,} events of {dataset} ({scenario}) into [bold]{topic}[/bold] at {bootstrap}, "
                  f"codec {codec}, {pace}")
    try:
        report = feed_arrays(x, y, topic=topic, kafka=kafka, codec=codec, rate=rate or None, keys=keys,
                             partitions=partitions, progress=progress)
    except (FeedError, ValueError) as exc:
        console.print(f"[red]feed failed:[/red] {exc}")
        raise typer.Exit(1) from exc

    out = boundaries_out or Path(f"{topic}.boundaries.json")
    doc = {
        "topic": topic, "bootstrap": bootstrap, "dataset": dataset, "scenario": scenario, "seed": seed,
        "params": params, "codec": codec, "records": report.records, "partitions": report.partitions,
        "base_offset": report.base_offset, "rate": rate or None, **meta,
        "boundaries": _jsonable(boundaries),
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for b in boundaries:
        console.print(f"  boundary at event {int(_field(b, 'position', 0)):>8,}: {_field(b, 'kind', '?')}"
                      f" -> task {_field(b, 'task', '?')}")
    console.print(f"fed {report.records:,} events ({report.bytes / 1e6:,.1f} MB) in {report.seconds:,.1f} s "
                  f"({report.records_per_s:,.0f} events/s); boundaries written to {out}")


def _load(dataset: str, scenario: str, seed: int, limit: int, params: dict[str, Any],
          ) -> tuple[Any, Any, dict[str, Any], list[Any]]:
    """Arrays to feed, metadata for the JSON, and the boundaries (empty for ``--scenario none``)."""
    import numpy as np

    if scenario == "none":
        from lifelong.datasets import load_dataset

        data = load_dataset(dataset, seed=seed, limit=limit or None)
        meta = {"num_classes": data.num_classes, "feature_shape": list(data.feature_shape)}
        return data.x_train, data.y_train, meta, []
    from lifelong.datasets import build_scenario

    if limit and "limit" not in params:
        params = {**params, "limit": limit}
    try:
        sc = build_scenario(scenario, dataset=dataset, seed=seed, **params)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario/--param") from exc
    meta = {"num_classes": int(sc.num_classes), "feature_shape": [int(d) for d in sc.feature_shape],
            "tasks": sorted({int(t) for t in np.unique(np.asarray(sc.task))})}
    return sc.x, sc.y, meta, list(sc.boundaries)
