"""Whether ``daemon.autocast: auto`` should pick bf16 on this CPU: the learner alone, bf16 against float32.

The benchmark's learner (MLP 784-256-256-10, Adam, reservoir replay 500, micro-batches of 256 with one step
each, one torch thread as beside a fetch process on 2 cores) learns the same MNIST rows from memory under
each mode, interleaved round by round so each ratio compares neighbours in time. Prints and records the
thread CPU time per event (after a warm-up of 10 micro-batches), the prequential accuracy of each mode, the
speed-up of bf16 and which bf16 instructions the CPU has (``lifelong.learner.cpu_bf16_flags``).

    python benchmarks/autocast.py [--events 40960] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import (  # noqa: E402
    Options,
    learner_alone,
    learner_cost,
    mnist_arrays,
    too_few_learner_events,
)
from lifelong.learner import cpu_bf16_flags  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_960)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    micro_batch = Options().micro_batch or 256
    if problem := too_few_learner_events(args.events, micro_batch):
        parser.error(problem)
    x, y = mnist_arrays(args.events)
    cost: dict[str, list[float]] = {"off": [], "bf16": []}
    accuracy: dict[str, float] = {}
    ratios = []
    for round_ in range(args.repeats):
        for mode in cost:
            us, accuracy[mode] = learner_cost(learner_alone(x.shape[1], len(y), autocast=mode), x, y, micro_batch)
            cost[mode].append(us)
        ratios.append(cost["off"][-1] / cost["bf16"][-1])
        print(f"round {round_ + 1}: float32 {cost['off'][-1]:.1f} us/event, bf16 {cost['bf16'][-1]:.1f} us/event,"
              f" bf16 {ratios[-1]:.2f}x", flush=True)
    flags = ",".join(cpu_bf16_flags()) or "none"
    tags = {"events": args.events, "model": "mlp", "replay": "reservoir-500", "micro_batch": micro_batch,
            "torch_threads": 1, "repeats": args.repeats, "cpu_bf16": flags}
    for mode, values in cost.items():
        print(f"{mode:<5} median {statistics.median(values):.2f} us/event, prequential accuracy {accuracy[mode]:.4f}")
        record("autocast", "learner_us_per_event", statistics.median(values), "us/event", autocast=mode, **tags)
        record("autocast", "prequential_accuracy", accuracy[mode], "ratio", autocast=mode, **tags)
    speedup = statistics.median(ratios)
    print(f"bf16 autocast: {speedup:.2f}x less learner CPU per event (CPU bf16 instructions: {flags})")
    record("autocast", "bf16_speedup", speedup, "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
