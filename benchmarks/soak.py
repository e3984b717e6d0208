"""Soak: one daemon over 1,000,000 events; does its memory or its checkpoint grow?

Feeds a synthetic 10-class stream into the embedded broker while `lifelong run` (a subprocess, so its resident
memory is its own) learns from it with a class-balanced replay memory, drift detection and checkpoints. Samples
every second, from /proc, the memory of the daemon and of the processes it starts (its fetch processes and
multiprocessing's resource tracker), and its /metrics. Reports, from the end of the warm-up (the first 10% of
events) to the end, the growth of the daemon's RSS (`soak_rss_growth_pct`), of its children's RSS
(`children_rss_growth_pct`) and of the proportional set size of them all (`total_pss_growth_pct`: shared pages,
such as the fetch processes' shared-memory blocks, counted once), target < 5% each; the checkpoint size at each
checkpoint (bounded: the last should not exceed the first full one), and events/s. Writes a PNG of memory against
events.

    python benchmarks/soak.py [--events 1000000] [--features 32] [--out runs/soak]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from daemon_helpers import blobs, scrape, start_daemon, write_config  # noqa: E402

from lifelong.bench.results import record  # noqa: E402
from lifelong.stream.broker import EmbeddedBroker, free_port  # noqa: E402
from lifelong.stream.feed import feed_arrays  # noqa: E402

console = Console()


def memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` from /proc/PID/smaps_rollup; (0, 0) for a process gone meanwhile."""
    found = {"Rss:": 0, "Pss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found["Rss:"], found["Pss:"]


def children(pid: int) -> list[int]:
    """Every process below ``pid`` (fetch processes come and go: a dead one is replaced), read from /proc."""
    below: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            below.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in below.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def sample_memory(pid: int) -> tuple[int, int, int]:
    """(the daemon's RSS, its children's RSS summed, the PSS of them all)."""
    rss, pss = memory_bytes(pid)
    kids = [memory_bytes(child) for child in children(pid)]
    return rss, sum(r for r, _ in kids), pss + sum(p for _, p in kids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=100_000, help="events generated and fed per chunk")
    parser.add_argument("--out", type=Path, default=Path("runs/soak"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic, port = "soak", free_port()
        config = write_config(
            Path(tmp), broker.bootstrap, topic, port,
            kafka={"group_id": "soak", "assign": True},
            codec={"name": "f32", "num_features": args.features},
            model={"name": "mlp", "input_shape": [args.features], "hidden": [128], "max_classes": 10},
            replay={"kind": "class_balanced", "capacity": 500, "batch_size": 32},
            checkpoint={"every_events": 50_000, "every_seconds": 3600, "keep": 3},
            daemon={"device": "cpu", "summary_interval_s": 30, "log_format": "json", "idle_exit_s": 30},
        )
        feeder_error: list[BaseException] = []

        def feed_all() -> None:
            try:
                for start in range(0, args.events, args.chunk):
                    n = min(args.chunk, args.events - start)
                    x, y = blobs(n, features=args.features, seed=start)
                    feed_arrays(x, y, topic=topic, bootstrap_servers=broker.bootstrap, progress=False,
                                partitions=1, start_index=start)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                feeder_error.append(exc)

        feeder = threading.Thread(target=feed_all, daemon=True)
        feeder.start()
        proc = start_daemon(config, args.out / "daemon.log")
        # (t, events, daemon RSS, children's RSS, PSS of all, checkpoint bytes)
        samples: list[tuple[float, int, int, int, int, float]] = []
        started = time.monotonic()
        with Progress(TextColumn("[bold]soak"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} events"),
                      TextColumn("RSS {task.fields[rss]:.0f} MB"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("soak", total=args.events, rss=0.0)
            events = 0
            while proc.poll() is None and events < args.events:
                time.sleep(1.0)
                try:
                    metrics = scrape(port)
                except OSError:
                    continue
                events = int(metrics.get(("lifelong_events_total", (("outcome", "trained"),)), 0))
                ckpt = metrics.get(("lifelong_checkpoint_bytes", ()), 0.0)
                rss, kids_rss, pss = sample_memory(proc.pid)
                samples.append((time.monotonic() - started, events, rss, kids_rss, pss, ckpt))
                bar.update(task, completed=events, rss=rss / 2**20)
        seconds = time.monotonic() - started
        proc.terminate()
        proc.wait(timeout=60)
        if feeder_error:
            raise feeder_error[0]

    t, ev, rss, kids_rss, pss, ckpt = (np.array(col, dtype=float) for col in zip(*samples, strict=True))
    warm = ev >= 0.1 * args.events
    ckpt_sizes = np.unique(ckpt[ckpt > 0])
    rate = ev[-1] / seconds
    console.print(f"events {int(ev[-1]):,} in {seconds:.0f}s ({rate:,.0f}/s); checkpoint sizes "
                  f"{sorted(int(s) for s in ckpt_sizes)} bytes")
    settings = {"events": int(ev[-1]), "features": args.features, "replay": "class_balanced:500",
                "device": "cpu", "client": "kafka-python", "fetcher": "process"}
    growths = {}
    for key, name, series, metric in (("daemon", "the daemon's RSS", rss, "soak_rss_growth_pct"),
                                      ("children", "its children's RSS", kids_rss, "children_rss_growth_pct"),
                                      ("all", "the PSS of all", pss, "total_pss_growth_pct")):
        at_warm, at_end = series[warm][0], series[-1]
        growths[key] = 100.0 * (at_end - at_warm) / at_warm if at_warm else float("nan")
        console.print(f"{name}: after warm-up {at_warm / 2**20:.1f} MB, at the end {at_end / 2**20:.1f} MB: "
                      f"growth {growths[key]:+.2f}% (target < 5%)")
        record("soak", metric, round(growths[key], 3), "%", **settings)
    record("soak", "rss_after_warmup_mb", round(rss[warm][0] / 2**20, 1), "MB", **settings)
    record("soak", "children_rss_after_warmup_mb", round(kids_rss[warm][0] / 2**20, 1), "MB", **settings)
    record("soak", "checkpoint_bytes_max", int(ckpt_sizes.max()) if ckpt_sizes.size else 0, "bytes", **settings)
    record("soak", "checkpoint_bytes_min", int(ckpt_sizes.min()) if ckpt_sizes.size else 0, "bytes", **settings)
    record("soak", "events_per_s", round(rate, 1), "events/s", **settings)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    ax.plot(ev, rss / 2**20, lw=1.5, label=f"daemon RSS ({growths['daemon']:+.2f}%)")
    ax.plot(ev, kids_rss / 2**20, lw=1.5, label=f"its children's RSS ({growths['children']:+.2f}%)")
    ax.plot(ev, pss / 2**20, lw=1.5, ls=":", label=f"PSS of all ({growths['all']:+.2f}%)")
    ax.axvline(0.1 * args.events, color="grey", ls="--", lw=1, label="end of warm-up")
    ax.set_xlabel("events learned")
    ax.set_ylabel("memory (MB)")
    ax.set_title(f"soak: {int(ev[-1]):,} events, growth after warm-up")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "soak_memory.png")
    console.print(f"plot: {args.out / 'soak_memory.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
