"""Typer command ``lifelong bench`` (registered by :mod:`lifelong.cli`); ``benchmarks/throughput.py`` calls it too."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["bench"]

console = Console(stderr=True)


# --help shows the options in groups: each group is a table of its own, so the --x/--no-x pairs widen only theirs
what = partial(typer.Option, rich_help_panel="What is measured")
learner = partial(typer.Option, rich_help_panel="The daemon's settings (config keys)")
fetching = partial(typer.Option, rich_help_panel="Fetching and decoding (config keys)")
extra = partial(typer.Option, rich_help_panel="Extra runs")
output = partial(typer.Option, rich_help_panel="Output")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def bench(
    records: Annotated[int, what(help="f32 MNIST records fed into the embedded broker.")] = 100_000,
    clients: Annotated[str, what(help="Comma list: kafka-python, confluent.")] = "kafka-python,confluent",
    models: Annotated[str, what(help="Comma list: mlp, cnn.")] = "mlp,cnn",
    replays: Annotated[str, what(help="Comma list: reservoir (memory 500), none.")] = "reservoir,none",
    repeats: Annotated[int, what(help="Repeats of each measurement; medians are recorded.")] = 3,
    cnn_records: Annotated[int, what(help="Events the daemon learns with the CNN (slower).")] = 20_000,
    river_records: Annotated[int, what(
        help="Events learned by river (capped at RECORDS): its accuracy is compared with the daemon's over the "
        "same prefix.")] = 100_000,
    deep_river_records: Annotated[int, what(help="Prefix learned by deep-river (~300 events/s).")] = 10_000,
    batch_size: Annotated[int, learner(
        help="optim.batch_size of the daemon (MLP; the CNN keeps 32: MODEL_OPTIONS in lifelong/bench/throughput.py).",
    )] = 256,
    hidden: Annotated[str, learner(help="MLP hidden widths, comma list (784-256-256-10 by default).")] = "256,256",
    replay_batch_size: Annotated[int, learner(help=(
        "replay.batch_size: replayed rows per step (256: 1:1 with the stream's rows; "
        "benchmarks/replay_ratio.py shows what fewer save and cost)."))] = 256,
    micro_batch: Annotated[int, learner(help="daemon.micro_batch (0: each fetch as it comes).")] = 256,
    optimizer: Annotated[str, learner(help="optim.name: sgd, adam or adamw.")] = "adam",
    lr: Annotated[float, learner(help="optim.lr.")] = 0.005,
    momentum: Annotated[float, learner(help="optim.momentum (sgd).")] = 0.0,
    prefetch: Annotated[int, fetching(help="daemon.prefetch (0: fetch and decode in the loop).")] = 2,
    fetch_workers: Annotated[int, fetching(help="daemon.fetch_workers (needs partitions > 1).")] = 1,
    fetcher: Annotated[str, fetching(help="daemon.fetcher: process or thread.")] = "process",
    recv_chunk_bytes: Annotated[int, fetching(
        help="kafka.recv_chunk_bytes: most bytes per kafka-python socket read (0: its own 4 KiB reads).",
    )] = 256 * 1024,
    shared_memory: Annotated[bool, fetching(
        help="daemon.shared_memory: fetch processes hand batches over in shared memory (else the pipe).")] = True,
    gc_freeze: Annotated[bool, learner(
        help="daemon.gc_freeze: the daemon freezes its heap once it is up (the raw client loop always does).")] = True,
    reuse_fetch_memory: Annotated[bool, fetching(
        help="daemon.reuse_fetch_memory: fetch processes keep large fetch buffers for reuse.")] = True,
    partitions: Annotated[int, fetching(help="Partitions of the benchmark topic.")] = 1,
    torch_threads: Annotated[int | None, learner(help="daemon.torch_threads (default: auto).")] = None,
    autocast: Annotated[str, learner(
        help="daemon.autocast: off, bf16 or auto (bf16 on CPUs with AMX-BF16 or AVX512-BF16).")] = "auto",
    device: Annotated[str, what(help="daemon.device: cpu, cuda or auto.")] = "cpu",
    with_deep_river: Annotated[bool, what(
        "--with-deep-river", help="Also measure deep-river (deep-river==0.3.4) from a venv of its own "
        "under the cache dir (created and installed on first use).")] = False,
    decay_run: Annotated[bool, extra(
        "--decay-run", help="Also run the rate-decay check: one long run, first vs last 10% of events.")] = False,
    decay_records: Annotated[int, extra(help="Events of the decay run.")] = 500_000,
    decay_repeats: Annotated[int, extra(help="Decay runs (on one topic); medians are recorded.")] = 3,
    decay_features: Annotated[int, extra(
        help="Features per record in the decay run: 784, or 196/49 (pooled) to keep the broker's memory small.",
    )] = 784,
    ablation: Annotated[bool, extra(
        "--ablation", help="Also measure each speed option (prefetch, torch threads, bf16, compile, fetch "
        "workers) against the default daemon, interleaved, on a 4-partition topic.")] = False,
    ablation_records: Annotated[int, extra(help="Events per ablation run.")] = 30_000,
    compile_model: Annotated[bool, learner("--compile", help="daemon.compile for the main runs.")] = False,
    compile_mode: Annotated[str, learner(
        help="daemon.compile_mode with --compile: default, reduce-overhead (CUDA graphs on a GPU), max-autotune.",
    )] = "default",
    cache_dir: Annotated[Path | None, output(help="Cache dir (deep-river venv); default ~/.cache/lifelong."
                                                   )] = None,
    no_record: Annotated[bool, output("--no-record", help="Print only; do not append to results.")] = False,
    json_out: Annotated[Path | None, output("--json", help="Also write every figure to this JSON file.")] = None,
) -> None:
    """Throughput: raw consume+decode vs the daemon end to end vs river, on the same records, in one run.

    Feeds RECORDS f32 MNIST records into an embedded broker, then measures for each client, model and replay
    setting (a) the client's own consume+decode rate, (b) the real daemon in-process (predict, score, train
    with replay, drift, metrics, checkpoints), (c) river's online learners on the same events (and deep-river
    on a prefix with --with-deep-river). Prints and records b/a, b/c and the prequential accuracies
    (benchmarks/RESULTS.md).

    Example: lifelong bench --records 100000 --clients kafka-python --models mlp --replays reservoir
    """
    from lifelong.bench.throughput import Options, run_throughput
    from lifelong.config import ConfigError, load_settings

    try:  # the daemon's own rule, at start rather than after the feed: a mode needs --compile
        load_settings(None, daemon={"compile": compile_model, "compile_mode": compile_mode})
    except ConfigError as err:
        raise typer.BadParameter("; ".join(reason for _, reason in err.problems), param_hint="--compile-mode") from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("kafka", "lifelong.drift"):
        logging.getLogger(name).setLevel(logging.ERROR)
    opts = Options(
        records=records, clients=_split(clients), models=_split(models), replays=_split(replays), repeats=repeats,
        cnn_records=cnn_records, river_records=river_records, deep_river_records=deep_river_records,
        batch_size=batch_size, fetcher=fetcher, recv_chunk_bytes=recv_chunk_bytes, shared_memory=shared_memory,
        gc_freeze=gc_freeze,
        reuse_fetch_memory=reuse_fetch_memory,
        hidden=[int(h) for h in _split(hidden)],
        replay_batch_size=replay_batch_size, micro_batch=micro_batch or None, optimizer=optimizer, lr=lr,
        momentum=momentum, prefetch=prefetch,
        fetch_workers=fetch_workers, partitions=partitions, torch_threads=torch_threads, autocast=autocast,
        device=device, with_deep_river=with_deep_river, decay_run=decay_run, decay_records=decay_records,
        decay_repeats=decay_repeats,
        decay_features=decay_features, ablation=ablation, ablation_records=ablation_records,
        compile=compile_model, compile_mode=compile_mode, cache_dir=cache_dir, record_results=not no_record,
    )
    result = run_throughput(opts, emit=print)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"[green]done[/green]: {len(result['configs'])} settings measured on {result['device']}")
    _print_targets(result["figures"])


def _print_targets(figures: list[dict]) -> None:
    """The targets this run measured, met or not (benchmarks/RESULTS.md shows them over every run)."""
    from rich.table import Table

    from lifelong.bench.targets import standings

    measured = [s for s in standings(figures) if s.runs]
    if not measured:
        return
    table = Table(title="targets, this run")
    table.add_column("metric", overflow="fold")  # the name whole, over two lines in a narrow terminal
    for column in ("target", "this run", "met", "ceiling in this run"):
        table.add_column(column)
    for s in measured:
        table.add_row(s.target.metric, s.target.wants, s.shown(),
                      "[green]yes[/green]" if s.latest_met else "[red]no[/red]", s.ceiling_shown())
    console.print(table)
