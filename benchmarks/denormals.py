"""Why ``daemon.flush_denormal`` is on: the learner's CPU cost per event over a long run, with and without it.

The benchmark's learner (MLP 784-256-256-10, Adam, reservoir replay 500, micro-batches of 256 with one step
each, autocast auto) learns MNIST rows from memory, once with subnormal floats flushed to zero and once with
IEEE subnormals, in one run. Weights fed by always-zero inputs (MNIST's border pixels) never get a gradient, so
Adam's first moment of each decays by 0.9 a step into the subnormal range after a few hundred steps; from then on
every fused-Adam step works on subnormal numbers, which x86 cores handle slowly. Prints the thread CPU time per
event for each tenth of the run and records the first and last tenth (the first tenth is skipped as warm-up:
tenths 2 and 10) and their ratio per mode.

    python benchmarks/denormals.py [--events 400000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import Options, autocast_tag, learner_alone, mnist_arrays  # noqa: E402

TENTHS = 10


def cost_per_tenth(x, y, events: int, flush: bool, micro_batch: int) -> list[float]:
    """Microseconds of this thread's CPU per event for each tenth of ``events`` (cycling over the rows)."""
    learner = learner_alone(x.shape[1], events, flush_denormal=flush)  # sets this thread's flush mode
    per_tenth = events // TENTHS
    out: list[float] = []
    done, start = 0, time.thread_time()
    while done < events:
        i = done % (len(y) - micro_batch)
        learner.process(x[i : i + micro_batch], y[i : i + micro_batch])
        done += micro_batch
        if done >= per_tenth * (len(out) + 1):
            now = time.thread_time()
            out.append((now - start) / per_tenth * 1e6)
            start = now
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the daemon runs beside one fetch process on 2 cores
    x, y = mnist_arrays(70_000)
    micro_batch = Options().micro_batch or 256
    runs: dict[str, list[list[float]]] = {"flush": [], "subnormals": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(cost_per_tenth(x, y, args.events, mode == "flush", micro_batch))
            print(f"{mode:<10} us/event per tenth: {' '.join(f'{v:.1f}' for v in runs[mode][-1])}", flush=True)
    torch.set_flush_denormal(False)
    tags = {"events": args.events, "model": "mlp", "replay": "reservoir-500", "micro_batch": micro_batch,
            "torch_threads": 1, "autocast": autocast_tag(Options().autocast, "cpu"), "repeats": args.repeats}
    last: dict[str, float] = {}
    for mode, values in runs.items():
        first = statistics.median(v[1] for v in values)
        last[mode] = statistics.median(v[-1] for v in values)
        print(f"{mode:<10} tenth 2 {first:.2f} us/event, tenth 10 {last[mode]:.2f} us/event, "
              f"ratio {last[mode] / first:.3f}")
        record("denormals", "learner_us_per_event_tenth_2", first, "us/event", mode=mode, **tags)
        record("denormals", "learner_us_per_event_tenth_10", last[mode], "us/event", mode=mode, **tags)
        record("denormals", "learner_cost_last_over_first", last[mode] / first, "ratio", mode=mode, **tags)
    speedup = last["subnormals"] / last["flush"]
    print(f"flushing subnormals: {speedup:.3f}x less CPU per event in the last tenth")
    record("denormals", "flush_speedup_last_tenth", speedup, "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
