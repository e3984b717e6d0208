"""Soak: one daemon over 1,000,000 events; does its memory or its checkpoint grow?

Feeds a synthetic 10-class stream into the embedded broker while `lifelong run` (a subprocess, so its resident
memory is its own) learns from it with a class-balanced replay memory, drift detection and checkpoints. Samples the
daemon's RSS from /proc and its /metrics every second. Reports the RSS growth from the end of the warm-up (the first
10% of events) to the end (`soak_rss_growth_pct`, target < 5%), the checkpoint size at each checkpoint (bounded: the
last should not exceed the first full one), and events/s. Writes a PNG of RSS against events.

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


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


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
        samples: list[tuple[float, int, int, float]] = []  # (t, events, rss, checkpoint bytes)
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
                rss = rss_bytes(proc.pid)
                samples.append((time.monotonic() - started, events, rss, ckpt))
                bar.update(task, completed=events, rss=rss / 2**20)
        seconds = time.monotonic() - started
        proc.terminate()
        proc.wait(timeout=60)
        if feeder_error:
            raise feeder_error[0]

    t, ev, rss, ckpt = (np.array(col, dtype=float) for col in zip(*samples, strict=True))
    warm = ev >= 0.1 * args.events
    rss_warm, rss_end = rss[warm][0], rss[-1]
    growth = 100.0 * (rss_end - rss_warm) / rss_warm
    ckpt_sizes = np.unique(ckpt[ckpt > 0])
    rate = ev[-1] / seconds
    console.print(f"events {int(ev[-1]):,} in {seconds:.0f}s ({rate:,.0f}/s); RSS after warm-up "
                  f"{rss_warm / 2**20:.1f} MB, at the end {rss_end / 2**20:.1f} MB: growth {growth:+.2f}% "
                  f"(target < 5%); checkpoint sizes {sorted(int(s) for s in ckpt_sizes)} bytes")
    settings = {"events": int(ev[-1]), "features": args.features, "replay": "class_balanced:500",
                "device": "cpu", "client": "kafka-python"}
    record("soak", "soak_rss_growth_pct", round(growth, 3), "%", **settings)
    record("soak", "rss_after_warmup_mb", round(rss_warm / 2**20, 1), "MB", **settings)
    record("soak", "checkpoint_bytes_max", int(ckpt_sizes.max()) if ckpt_sizes.size else 0, "bytes", **settings)
    record("soak", "checkpoint_bytes_min", int(ckpt_sizes.min()) if ckpt_sizes.size else 0, "bytes", **settings)
    record("soak", "events_per_s", round(rate, 1), "events/s", **settings)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    ax.plot(ev, rss / 2**20, lw=1.5)
    ax.axvline(0.1 * args.events, color="grey", ls="--", lw=1, label="end of warm-up")
    ax.set_xlabel("events learned")
    ax.set_ylabel("daemon RSS (MB)")
    ax.set_title(f"soak: {int(ev[-1]):,} events, RSS growth after warm-up {growth:+.2f}%")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "soak_rss.png")
    console.print(f"plot: {args.out / 'soak_rss.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
