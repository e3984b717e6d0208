"""benchmarks/replay_ratio.py: each replay batch size is the learner it names, on both streams, and the learner
timing helper it shares with benchmarks/autocast.py counts what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bench_scripts import benchmark_script

from lifelong.bench.throughput import Options, learner_alone, learner_cost
from lifelong.learner import StepResult
from lifelong.replay.plugin import ReplayPlugin


def _script():
    return benchmark_script("replay_ratio")


def _replay(learner) -> list[ReplayPlugin]:
    return [p for p in learner.plugins if isinstance(p, ReplayPlugin)]


def test_learner_alone_replays_the_rows_asked_for_and_none_at_zero():
    (plugin,) = _replay(learner_alone(784, 1000, replay_batch_size=64))
    assert plugin.batch_size == 64 and plugin.buffer.capacity == 500
    assert _replay(learner_alone(784, 1000, replay_batch_size=0)) == []
    (default,) = _replay(learner_alone(784, 1000))
    assert default.batch_size == Options().replay_batch_size


class _HalfRight:
    """Right on even labels only; counts the rows it was given."""

    def __init__(self) -> None:
        self.rows = 0

    def process(self, x, y) -> StepResult:
        self.rows += len(y)
        correct = np.asarray(y) % 2 == 0
        return StepResult(predictions=np.asarray(y), correct=correct, losses=np.zeros(len(y), np.float32),
                          train_loss=0.0, train_seconds=0.0, new_classes=[])


def test_learner_cost_scores_every_event_and_times_past_the_warm_up():
    learner = _HalfRight()
    x, y = np.zeros((1000, 2), np.float32), np.arange(1000) % 4  # labels 0..3: half even
    us, accuracy = learner_cost(learner, x, y, micro_batch=100, warmup_batches=2)
    assert learner.rows == 1000 and accuracy == 0.5
    assert us >= 0
    with pytest.raises(ZeroDivisionError):  # nothing left to time: an error, not a figure
        learner_cost(_HalfRight(), x, y, micro_batch=100, warmup_batches=10)


def test_split_runs_use_the_throughput_settings_not_continual_defaults():
    script = _script()
    opts = Options()
    for replay_batch, method in ((64, "er"), (0, "naive")):
        extra = dict(script.split_overrides(opts, replay_batch))
        assert extra.pop("micro_batch") == opts.micro_batch
        settings = script.continual.make_settings("split", method, script.MEMORY, 0, extra, [100])
        assert settings.model.hidden == list(opts.hidden)
        assert (settings.optim.name, settings.optim.lr, settings.optim.batch_size) == (
            opts.optimizer, opts.lr, opts.batch_size)
        assert settings.optim.steps_per_batch == 1
        if replay_batch:
            assert (settings.replay.kind, settings.replay.capacity, settings.replay.batch_size) == (
                "reservoir", script.MEMORY, replay_batch)
        else:
            assert settings.replay.kind == "none"


def test_main_prints_a_row_per_replay_batch(capsys: pytest.CaptureFixture[str]):
    threads = torch.get_num_threads()
    try:
        assert _script().main(["--batches", "0,32", "--events", "6000", "--repeats", "1", "--seeds", "0",
                               "--quick", "--no-record"]) == 0
    finally:
        torch.set_num_threads(threads)
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[1:]] == ["0", "32"]
    for line in table[1:]:
        cells = [c.strip() for c in line.split("|")[2:-1]]
        assert float(cells[0]) > 0 and 0.0 <= float(cells[1]) <= 1.0  # us/event, prequential accuracy
