"""``make demo``: the whole job on the embedded default, end to end, in a few minutes on a laptop-class CPU.

Starts the embedded broker, feeds a class-incremental MNIST stream (5 tasks x 2 classes), runs the daemon on it
with a live progress bar, prints the metrics URL (curl it while it runs), then prints a summary table and writes a
PNG of per-class prequential accuracy over time with the task boundaries marked.

    python -m lifelong.demo [--events 60000] [--config configs/default.yaml] [--out runs/demo]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def plot_accuracy(history: dict[str, list], boundaries: list[int], classes: list[int], path: Path) -> Path:
    """Two panels over events learned, task boundaries dashed: per-class prequential accuracy (what the daemon
    exports) and per-class accuracy on held-out test data (which shows forgetting: old classes get no new events,
    so their prequential window freezes, while their test accuracy keeps moving)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = np.asarray(history["events"])
    fig, axes = plt.subplots(2, 1, figsize=(11, 8), dpi=110, sharex=True)
    cmap = plt.get_cmap("tab10")
    panels = [
        (axes[0], events, np.asarray(history["class_accuracy"], dtype=float), history["accuracy"],
         "prequential accuracy\n(sliding window, per class)", "overall (window)"),
        (axes[1], np.asarray(history["test_events"]), np.asarray(history["test_class_accuracy"], dtype=float),
         history["test_accuracy"], "held-out test accuracy\n(per class)", "all test data"),
    ]
    for ax, xs, per_class, overall, ylabel, overall_label in panels:
        for cls in classes:
            if per_class.size:
                ax.plot(xs, per_class[:, cls], color=cmap(cls % 10), lw=1.3, label=f"class {cls}")
        ax.plot(xs, overall, color="black", lw=2.2, label=overall_label)
        for position in boundaries:
            ax.axvline(position, color="grey", ls="--", lw=1)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    for i, position in enumerate([0, *boundaries]):
        axes[0].text(position, 1.02, f" task {i + 1} \u2192", ha="left", va="bottom", fontsize=8, color="grey",
                     transform=axes[0].get_xaxis_transform())
    axes[1].legend(loc="lower left", ncol=6, fontsize=8)
    axes[1].set_xlabel("events learned")
    axes[1].set_xlim(0, events.max() if events.size else 1)
    fig.suptitle("lifelong demo: class-incremental MNIST (5 tasks x 2 classes), each event predicted before learned")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--events", type=int, default=60_000, help="events to feed (split over the 5 tasks)")
    parser.add_argument("--dataset", default="mnist", help="mnist (default) or digits for a quick look")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from lifelong.config import load_settings
    from lifelong.daemon.service import Daemon
    from lifelong.datasets import build_scenario
    from lifelong.logs import setup_logging
    from lifelong.stream.broker import EmbeddedBroker
    from lifelong.stream.feed import feed_arrays

    setup_logging("text", "ERROR")  # the progress bar and the summary say what matters; logs would interleave
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)

    console.rule("[bold]lifelong demo")
    with console.status("loading the dataset and building a class-incremental scenario"):
        scenario = build_scenario("split", dataset=args.dataset, seed=args.seed, tasks=5,
                                  limit=args.events)
    n = len(scenario.y)
    positions = [b.position for b in scenario.boundaries if b.position > 0]
    console.print(f"scenario: {n:,} events, 5 tasks x 2 classes, boundaries at {positions}")

    with EmbeddedBroker() as broker:
        console.print(f"embedded broker (Tansu) at [bold]{broker.bootstrap}[/bold]")
        # laid over the file before validation, so its checks across sections (the codec's feature count
        # against the model's input) see the scenario's shape
        settings = load_settings(
            args.config,
            kafka={"bootstrap_servers": [broker.bootstrap]},
            model={"input_shape": list(scenario.feature_shape)},
            codec={"num_features": int(np.prod(scenario.feature_shape))},
            checkpoint={"dir": args.out / "checkpoints"},
            daemon={"max_events": n, "idle_exit_s": 60, "summary_interval_s": 3600},
        )
        topic = settings.kafka.topics[0]
        if not _port_free(settings.metrics.port):
            settings.metrics.port = 0
        feed_arrays(scenario.x, scenario.y, topic=topic, bootstrap_servers=broker.bootstrap,
                    codec=settings.codec.name, partitions=1, progress=True)

        history: dict[str, list] = {"events": [], "accuracy": [], "class_accuracy": [], "test_events": [],
                                    "test_accuracy": [], "test_class_accuracy": []}
        x_test = np.concatenate([t[0] for t in scenario.test_sets])
        y_test = np.concatenate([t[1] for t in scenario.test_sets])
        max_classes = settings.model.max_classes
        progress = Progress(TextColumn("[bold]learning"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                            TextColumn("{task.fields[rate]:>7,.0f} ev/s  acc {task.fields[acc]:.3f}"),
                            TimeElapsedColumn(), console=console)
        task = progress.add_task("learn", total=n, rate=0.0, acc=0.0)
        started = time.monotonic()

        def on_batch(daemon: Daemon, _batch) -> None:
            m = daemon.metrics
            history["events"].append(daemon.stats.events)
            history["accuracy"].append(m.window_accuracy)
            history["class_accuracy"].append([m.value("lifelong_class_accuracy_ratio", {"class": str(c)})
                                              for c in range(settings.model.max_classes)])
            if not history["test_events"] or daemon.stats.events - history["test_events"][-1] >= 2000:
                preds = daemon.learner.predict(x_test)
                history["test_events"].append(daemon.stats.events)
                history["test_accuracy"].append(float((preds == y_test).mean()))
                history["test_class_accuracy"].append(
                    [float((preds[y_test == c] == c).mean()) if (y_test == c).any() else np.nan
                     for c in range(max_classes)])
            elapsed = max(time.monotonic() - started, 1e-6)
            progress.update(task, completed=daemon.stats.events, rate=daemon.stats.events / elapsed,
                            acc=m.window_accuracy)
            if not hasattr(on_batch, "announced") and daemon.metrics_url:
                progress.console.print(f"metrics: [bold]curl {daemon.metrics_url}/metrics[/bold] "
                                       f"(also /livez, /readyz) while it runs")
                on_batch.announced = True

        daemon = Daemon(settings, on_batch=on_batch)
        with progress:
            stats = daemon.run()

    learner = daemon.learner
    table = Table(title="final accuracy per class")
    table.add_column("class", justify="right")
    table.add_column("prequential (last window)", justify="right")
    table.add_column("held-out test", justify="right")
    preds = np.concatenate([learner.predict(x_test[i:i + 4096]) for i in range(0, len(y_test), 4096)])
    classes = sorted(int(c) for c in np.unique(scenario.y))
    for cls in classes:
        mask = y_test == cls
        table.add_row(str(cls), f"{daemon.metrics.value('lifelong_class_accuracy_ratio', {'class': str(cls)}):.3f}",
                      f"{(preds[mask] == cls).mean():.3f}")
    table.add_row("all", f"{daemon.metrics.window_accuracy:.3f}", f"{(preds == y_test).mean():.3f}", style="bold")
    console.print(table)
    console.print(f"{stats.events:,} events learned in {stats.seconds:.1f}s: "
                  f"[bold]{stats.events_per_second:,.0f} events/s[/bold] end to end "
                  f"({stats.dead_letters} dead letters, {stats.checkpoints} checkpoints, "
                  f"{stats.drifts} drift detections)")
    png = plot_accuracy(history, positions, classes, args.out / "accuracy.png")
    console.print(f"plot: [bold]{png}[/bold]")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
