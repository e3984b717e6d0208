"""benchmarks/learner_overhead.py: the bare loop trains the learner's own network on as many rows, and the
script's figures are what its steps did."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from bench_scripts import benchmark_script


def _script():
    return benchmark_script("learner_overhead")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_bare_loop_trains_on_the_stream_and_as_many_replayed_rows():
    script = _script()
    x = np.random.default_rng(0).random((2048, 20), dtype=np.float32)
    y = np.arange(2048) % 3
    seen: list[int] = []
    cat = torch.cat

    def counting_cat(tensors, *args, **kwargs):
        seen.append(sum(int(t.shape[0]) for t in tensors))
        return cat(tensors, *args, **kwargs)

    step = script.bare_step(x, y, [8], 32, torch.device("cpu"), None)
    torch.cat = counting_cat
    try:
        right = [step(start) for start in range(0, 2048, script.MICRO_BATCH)]
    finally:
        torch.cat = cat
    assert set(seen) == {script.MICRO_BATCH + 32}  # the stream's rows and the replayed ones, every step
    assert all(0 <= r <= script.MICRO_BATCH for r in right)


def test_timed_steps_times_past_the_warm_up_and_counts_right_answers():
    script = _script()
    calls: list[int] = []

    def step(start: int) -> int:
        calls.append(start)
        return script.MICRO_BATCH // 2

    starts = range(0, (script.LEARNER_WARMUP_BATCHES + 4) * script.MICRO_BATCH, script.MICRO_BATCH)
    wall, cpu, accuracy = script.timed_steps(step, starts, torch.device("cpu"))
    assert calls == list(starts) and accuracy == 0.5 and wall >= 0 and cpu >= 0


def test_main_compares_two_learners_of_the_same_worth(threads, capsys: pytest.CaptureFixture[str]):
    assert _script().main(["--hidden", "32", "--events", "6000", "--repeats", "1", "--no-record"]) == 0
    out = capsys.readouterr().out
    (summary,) = [line for line in out.splitlines() if line.startswith("mlp[32]: learner")]
    assert "bare loop" in summary and "us more per step" in summary
    ours, bare = (float(v) for v in re.search(r"accuracy ([\d.]+) against ([\d.]+)", summary).groups())
    assert ours > 0.6 and bare > 0.6 and abs(ours - bare) < 0.1  # MNIST: both learn, and learn alike
