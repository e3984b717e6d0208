"""What the Learner costs per step beyond the training arithmetic: it against a bare hand-written loop.

The daemon's learner does more per micro-batch than a textbook training step: it masks classes not seen yet,
reads predictions off the training forward, checks loss and gradients for non-finite values, samples a replay
memory and inserts into it by reservoir sampling, and hands predictions and per-row losses back to the host.
Each of those is a few small tensor operations, a fixed cost per step that a big model hides and a small model,
or a GPU (where every operation is a kernel launch and every host read a sync), does not. At 150,000 events/s
the main process has 6.7 us per event in all, 1.7 ms per step of 256: this is the budget it shares.

For each MLP width, interleaved round by round, on the same rows: (learner) ``Learner.process`` as the daemon
builds it (reservoir replay of 500, ``replay.batch_size`` rows per step, fused Adam where PyTorch has it, bf16
autocast where ``daemon.autocast: auto`` picks it, one torch thread on the CPU), and (bare) the same network,
optimizer, autocast and replayed row count in a plain loop: concatenate, forward, cross-entropy, argmax read
back, backward, step. Prints and records the wall time and this thread's CPU time per step (after a warm-up),
their difference (``overhead_us_per_step``) and ratio, and both prequential accuracies.

    python benchmarks/learner_overhead.py [--hidden 16 --hidden 256,256] [--events 25600] [--repeats 3]
                                          [--replay-batch-size 64] [--device cpu] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import (  # noqa: E402
    LEARNER_WARMUP_BATCHES,
    Options,
    learner_alone,
    mnist_arrays,
    too_few_learner_events,
)

MICRO_BATCH = Options.batch_size  # rows per process() call: one optimizer step each, as in lifelong bench
MEMORY = 500  # the reservoir's capacity in lifelong bench


def timed_steps(step: Callable[[int], int], starts: range, device: torch.device) -> tuple[float, float, float]:
    """Run ``step(start)`` (returns how many predictions were right) for every start; returns (wall us per
    step, thread CPU us per step, accuracy), timing after the warm-up steps. Each step reads its predictions
    back to the host, so on CUDA its work is done when it returns."""
    right, wall, cpu = 0, 0.0, 0.0
    for i, start in enumerate(starts):
        if i == LEARNER_WARMUP_BATCHES:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall, cpu = time.perf_counter(), time.thread_time()
        right += step(start)
    timed = len(starts) - LEARNER_WARMUP_BATCHES
    return ((time.perf_counter() - wall) / timed * 1e6, (time.thread_time() - cpu) / timed * 1e6,
            right / (len(starts) * MICRO_BATCH))


def learner_step(x: np.ndarray, y: np.ndarray, hidden: list[int], replay_rows: int, device: str
                 ) -> tuple[Callable[[int], int], torch.device, torch.dtype | None]:
    learner = learner_alone(x.shape[1], len(y), replay_batch_size=replay_rows, hidden=hidden, device=device)

    def step(start: int) -> int:
        end = start + MICRO_BATCH
        return int(learner.process(x[start:end], y[start:end]).correct.sum())

    return step, learner.device, learner.autocast


def bare_step(x: np.ndarray, y: np.ndarray, hidden: list[int], replay_rows: int, device: torch.device,
              autocast: torch.dtype | None) -> Callable[[int], int]:
    """The textbook loop on the same network: a memory of the stream's first rows, sampled uniformly."""
    from lifelong.models.zoo import build_model

    model = build_model("mlp", [x.shape[1]], 10, hidden).to(device)
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=Options.lr, **fused)  # Options.optimizer: adam
    xs, ys = torch.from_numpy(x).to(device), torch.from_numpy(y.astype(np.int64)).to(device)
    memory_x, memory_y = xs[:MEMORY].clone(), ys[:MEMORY].clone()

    def step(start: int) -> int:
        end = start + MICRO_BATCH
        new_x = torch.from_numpy(x[start:end]).to(device)
        new_y = torch.from_numpy(y[start:end].astype(np.int64)).to(device)
        pick = torch.randint(0, MEMORY, (replay_rows,), device=device)
        batch_x, batch_y = torch.cat([new_x, memory_x[pick]]), torch.cat([new_y, memory_y[pick]])
        with torch.autocast(device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            logits = model(batch_x)
            loss = torch.nn.functional.cross_entropy(logits, batch_y)
        right = int((logits[:MICRO_BATCH].argmax(1) == new_y).sum().item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return right

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", action="append", help="Hidden widths of one MLP, comma-separated; repeat the "
                        "option for more (default: 16, and 256,256 as in lifelong bench).")
    parser.add_argument("--events", type=int, default=25_600, help="f32 MNIST rows each run learns.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved rounds of learner and bare loop.")
    parser.add_argument("--replay-batch-size", type=int, default=64, help="Replayed rows per step (both loops).")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--no-record", action="store_true", help="Print only; leave benchmarks/results.jsonl be.")
    args = parser.parse_args(argv)
    put = (lambda *a, **k: None) if args.no_record else record
    if problem := too_few_learner_events(args.events, MICRO_BATCH):
        parser.error(problem)
    widths = [[int(w) for w in spec.split(",")] for spec in (args.hidden or ["16", "256,256"])]
    torch.set_num_threads(1)  # as beside a fetch process on 2 cores (lifelong.daemon.factory.tune_for_stream)
    x, y = mnist_arrays(args.events)
    starts = range(0, len(y) - MICRO_BATCH + 1, MICRO_BATCH)
    for hidden in widths:
        runs: dict[str, list[tuple[float, float, float]]] = {"learner": [], "bare": []}
        for round_ in range(args.repeats):
            step, device, autocast = learner_step(x, y, hidden, args.replay_batch_size, args.device)
            runs["learner"].append(timed_steps(step, starts, device))
            runs["bare"].append(timed_steps(bare_step(x, y, hidden, args.replay_batch_size, device, autocast),
                                            starts, device))
            (lw, lc, _), (bw, bc, _) = runs["learner"][-1], runs["bare"][-1]
            print(f"mlp{hidden} round {round_ + 1}: learner {lw:,.0f} us/step wall ({lc:,.0f} CPU), bare loop "
                  f"{bw:,.0f} ({bc:,.0f})", flush=True)
        tags = {"model": f"mlp{hidden}", "device": str(device), "events": args.events, "micro_batch": MICRO_BATCH,
                "replay_batch_size": args.replay_batch_size, "autocast": str(autocast).replace("torch.", "")
                if autocast else "off", "repeats": args.repeats}
        med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in runs.items()}
        over = statistics.median(a[0] / b[0] for a, b in zip(runs["learner"], runs["bare"], strict=True))
        overhead = statistics.median(a[0] - b[0] for a, b in zip(runs["learner"], runs["bare"], strict=True))
        print(f"mlp{hidden}: learner {med['learner'][0]:,.0f} us per step of {MICRO_BATCH}, bare loop "
              f"{med['bare'][0]:,.0f}: {overhead:,.0f} us more per step ({overhead / MICRO_BATCH:.2f} us per "
              f"event), {over:.2f}x; prequential accuracy {med['learner'][2]:.3f} against {med['bare'][2]:.3f}")
        for name, (wall, cpu, accuracy) in med.items():
            put("learner_overhead", f"{name}_us_per_step", wall, "us/step", **tags, cpu_us=round(cpu, 1))
            put("learner_overhead", f"{name}_prequential_accuracy", accuracy, "ratio", **tags)
        put("learner_overhead", "overhead_us_per_step", overhead, "us/step", **tags)
        put("learner_overhead", "learner_over_bare", over, "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
