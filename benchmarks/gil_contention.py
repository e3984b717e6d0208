"""Why the daemon fetches in a child process: the learner's rate beside a busy Python thread and a busy process.

The learner (the benchmark's MLP 784-256-256-10, reservoir replay 500, micro-batches of 256 with one step each,
autocast auto) learns MNIST rows from memory three ways in one run: alone; while another *thread* of the same
process runs pure Python (as kafka-python's record parsing does on a fetch thread); and while another *process*
does the same. Each torch call releases the GIL and must take it back; a busy thread holds it for up to the
interpreter's switch interval (5 ms) at a time. Prints and records events/s and the ratios to "alone".

    python benchmarks/gil_contention.py [--events 30000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import Options, autocast_tag, learner_alone, mnist_arrays  # noqa: E402


def busy_python(stop: threading.Event | mp.synchronize.Event) -> None:
    """Pure Python work, as record parsing is: dictionaries and small objects, the GIL held throughout."""
    while not stop.is_set():
        table = {}
        for i in range(1000):
            table[i] = str(i)


def learner_rate(x, y, micro_batch: int) -> float:
    learner = learner_alone(x.shape[1], len(y))
    learner.process(x[:micro_batch], y[:micro_batch])  # warm-up: first-call costs are not the point
    start = time.perf_counter()
    for i in range(micro_batch, len(y), micro_batch):
        learner.process(x[i : i + micro_batch], y[i : i + micro_batch])
    return (len(y) - micro_batch) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the daemon's learner beside one fetcher on 2 cores
    x, y = mnist_arrays(args.events)
    micro_batch = Options().micro_batch or 256
    rates: dict[str, list[float]] = {"alone": [], "busy thread": [], "busy process": []}
    for _ in range(args.repeats):
        rates["alone"].append(learner_rate(x, y, micro_batch))
        stop = threading.Event()
        thread = threading.Thread(target=busy_python, args=(stop,), daemon=True)
        thread.start()
        rates["busy thread"].append(learner_rate(x, y, micro_batch))
        stop.set()
        thread.join()
        pstop = mp.get_context("spawn").Event()
        process = mp.get_context("spawn").Process(target=busy_python, args=(pstop,), daemon=True)
        process.start()
        rates["busy process"].append(learner_rate(x, y, micro_batch))
        pstop.set()
        process.join()
    alone = statistics.median(rates["alone"])
    tags = {"events": args.events, "model": "mlp", "replay": "reservoir-500", "micro_batch": micro_batch,
            "torch_threads": 1, "autocast": autocast_tag(Options().autocast, "cpu"), "repeats": args.repeats,
            "switch_interval_s": sys.getswitchinterval()}
    for name, values in rates.items():
        median = statistics.median(values)
        ratio = median / alone
        print(f"{name:<13} {median:>10,.0f} events/s  x{ratio:.3f}  ({', '.join(f'{v:,.0f}' for v in values)})")
        key = name.replace(" ", "_")
        record("gil_contention", f"learner_events_per_s_{key}", median, "events/s", **tags)
        if name != "alone":
            record("gil_contention", f"learner_{key}_over_alone", ratio, "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
