"""What replay costs: the learner's CPU per event and its accuracy for each replay batch size.

The throughput settings (``lifelong bench``, benchmarks/RESULTS.md) take one optimizer step per micro-batch of 256
stream rows with ``replay.batch_size`` rows from a reservoir memory of 500 concatenated to it, so the replayed rows
are, after the stream's own, the largest share of the learner's work. For each replay batch size (0: no memory),
interleaved round by round so neighbours in time are compared, this prints and records:

- ``learner_us_per_event`` and ``prequential_accuracy``: the learner alone (no broker, one torch thread, as beside
  a fetch process on 2 cores) on the benchmark's f32 MNIST stream, whose classes arrive mixed: thread CPU per
  event after a warm-up, and prequential accuracy over every event;
- ``split_final_accuracy`` and ``split_forgetting``: Split-MNIST, class-incremental (5 tasks of 2 classes;
  benchmarks/continual.py's scenario and metrics) with the same model, optimizer, micro-batch and memory, mean
  over seeds: the arrival order where a replay memory has to earn its cost.

On the mixed stream the memory mostly repeats what the stream shows anyway; under class-incremental arrival it is
what keeps the old classes. The table shows what a lighter ratio saves, and what it gives up where forgetting
is the risk. ``--plot`` draws both accuracies against the CPU per event.

    python benchmarks/replay_ratio.py [--batches 0,32,64,128,256] [--events 60000] [--repeats 3]
                                      [--seeds 0,1,2] [--quick] [--plot replay_ratio.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import continual  # noqa: E402  (benchmarks/continual.py: the Split-MNIST scenario, its runner and metrics)

from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import (  # noqa: E402
    Options,
    learner_alone,
    learner_cost,
    mnist_arrays,
    too_few_learner_events,
)

BENCHMARK = "replay_ratio"
MEMORY = 500  # the throughput benchmark's reservoir capacity


def split_overrides(opts: Options, replay_batch: int) -> dict[str, Any]:
    """The throughput settings as benchmarks/continual.py ``--set`` overrides (its Split-MNIST base differs)."""
    extra: dict[str, Any] = {
        "model": {"hidden": list(opts.hidden)},
        "optim": {"name": opts.optimizer, "lr": opts.lr, "batch_size": opts.batch_size, "steps_per_batch": 1},
        "daemon": {"autocast": opts.autocast},
        "micro_batch": opts.micro_batch,
    }
    if replay_batch:
        extra["replay"] = {"batch_size": replay_batch}
    return extra


def split_run(opts: Options, replay_batch: int, seed: int, quick: bool) -> continual.RunResult:
    scenario = continual.load_scenario("split", seed, quick)
    method = "er" if replay_batch else "naive"
    return continual.run_one("split", scenario, method, MEMORY, seed, split_overrides(opts, replay_batch), "inproc")


def plot(path: Path, rows: list[dict[str, float]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    cost = [r["us"] for r in rows]
    for key, label, marker, offset in (("prequential", "mixed stream: prequential accuracy", "o", (4, 6)),
                                       ("split", "Split-MNIST: final average accuracy", "s", (4, -14))):
        ax.plot(cost, [r[key] for r in rows], marker=marker, label=label)
        for r in rows:  # each point named by its replay batch size
            ax.annotate(str(int(r["batch"])), (r["us"], r[key]), textcoords="offset points", xytext=offset)
    ax.set_xlabel("learner CPU per event (us), one torch thread")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Replayed rows per step of {Options().batch_size} (reservoir memory {MEMORY})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="0,32,64,128,256",
                        help="replay.batch_size values, comma list (0: no replay memory).")
    parser.add_argument("--events", type=int, default=60_000, help="Mixed-stream MNIST events per learner run.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved rounds of the mixed-stream timing.")
    parser.add_argument("--seeds", default="0,1,2", help="Split-MNIST seeds, comma list.")
    parser.add_argument("--quick", action="store_true", help="Subsampled Split-MNIST (a smoke test).")
    parser.add_argument("--plot", type=Path, help="Also draw accuracy against CPU per event into this PNG.")
    parser.add_argument("--no-record", action="store_true", help="Print only; do not append to results.jsonl.")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    opts = Options()
    micro_batch = opts.micro_batch or opts.batch_size
    if problem := too_few_learner_events(args.events, micro_batch):
        parser.error(problem)
    torch.set_num_threads(1)

    x, y = mnist_arrays(args.events)
    cost: dict[int, list[float]] = {b: [] for b in batches}
    accuracy: dict[int, float] = {}
    for round_ in range(args.repeats):
        for b in batches:
            us, accuracy[b] = learner_cost(learner_alone(x.shape[1], len(y), replay_batch_size=b), x, y, micro_batch)
            cost[b].append(us)
            print(f"round {round_ + 1}: replay {b:>3} rows/step: {us:5.1f} us/event, prequential accuracy "
                  f"{accuracy[b]:.4f}", flush=True)
    split = {b: [split_run(opts, b, seed, args.quick) for seed in seeds] for b in batches}

    rows = []
    print(f"\n| replayed rows per step of {opts.batch_size} | learner us/event | mixed-stream prequential accuracy "
          f"| Split-MNIST final avg accuracy | Split-MNIST forgetting |")
    print("|---|---|---|---|---|")
    for b in batches:
        summary = continual.summarise(split[b])
        row = {"batch": b, "us": statistics.median(cost[b]), "prequential": accuracy[b],
               "split": summary["avg_acc"] / 100, "forgetting": summary["forgetting"] / 100}
        rows.append(row)
        print(f"| {b} | {row['us']:.1f} | {row['prequential']:.4f} | {summary['avg_acc']:.2f} +- "
              f"{summary['avg_acc_std']:.2f} % | {summary['forgetting']:.2f} +- {summary['forgetting_std']:.2f} % |")
        if args.no_record:
            continue
        tags = {"model": "mlp", "hidden": list(opts.hidden), "replay": f"reservoir-{MEMORY}" if b else "none",
                "replay_batch_size": b, "batch_size": opts.batch_size, "micro_batch": micro_batch,
                "optimizer": f"{opts.optimizer}(lr={opts.lr})", "autocast": opts.autocast, "torch_threads": 1}
        record(BENCHMARK, "learner_us_per_event", row["us"], "us/event", events=args.events,
               repeats=args.repeats, **tags)
        record(BENCHMARK, "prequential_accuracy", row["prequential"], "ratio", events=args.events, **tags)
        split_tags = {**tags, "scenario": "split-mnist", "seeds": len(seeds), "quick": args.quick}
        record(BENCHMARK, "split_final_accuracy", row["split"], "ratio", **split_tags)
        record(BENCHMARK, "split_forgetting", row["forgetting"], "ratio", **split_tags)
    if args.plot:
        print(f"plot: {plot(args.plot, rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
