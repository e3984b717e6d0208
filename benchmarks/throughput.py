"""End-to-end throughput of the daemon vs its Kafka client's own rate vs river (issue 8).

Runs the same code as ``lifelong bench`` (lifelong/bench/throughput.py): feeds N f32 MNIST records into an
embedded broker, then measures raw consume+decode, the real daemon in-process, and river's online learners on
the same records, for each client, model and replay setting; medians of repeats go to benchmarks/results.jsonl.

    python benchmarks/throughput.py                                    # the full matrix, 100,000 records
    python benchmarks/throughput.py --clients kafka-python --models mlp --replays reservoir --repeats 5
    python benchmarks/throughput.py --with-deep-river --decay-run      # + deep-river venv, 500k-event decay run
"""

from __future__ import annotations

import typer

from lifelong.bench.cli import bench

if __name__ == "__main__":
    typer.run(bench)
