"""`lifelong bench` on the embedded broker, and the loop-only daemon of benchmarks/loop_ceiling.py: the figures a user
reads are the ones the run measured, and the loop-only daemon runs every event without learning any."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import lifelong.bench.throughput as throughput
from lifelong.bench import process_cpu
from lifelong.bench.throughput import Options, _feed, daemon_rate, daemon_settings, loop_only_daemon, mnist_arrays
from lifelong.cli import app
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def test_bench_reports_raw_end_to_end_and_river_from_one_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--records", "3000", "--repeats", "1", "--clients", "kafka-python", "--models", "mlp",
        "--replays", "reservoir", "--river-records", "600", "--no-record", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    (config,) = data["configs"]
    assert config["client"] == "kafka-python" and config["replay"] == "reservoir-500"
    assert config["raw"] > 0 and config["end_to_end"] > 0
    assert config["ratio"] == pytest.approx(config["end_to_end"] / config["raw"])  # one repeat: its own ratio
    assert 0.3 < config["accuracy"] <= 1.0  # chance is 0.1: the daemon learned over the 3,000 events
    assert set(data["baselines"]) == {"river.SoftmaxRegression", "river.OneVsRest(LogisticRegression)"}
    assert all(b["events_per_s"] > 0 and 0 <= b["accuracy"] <= 1 for b in data["baselines"].values())
    assert "cpu_end_to_end_over_raw" in result.output and "end_to_end_over_river" in result.output
    # --no-record: nothing appended, yet the run's own figures say where it stands against the targets
    (ratio,) = [f for f in data["figures"] if f["metric"] == "cpu_end_to_end_over_raw"]
    assert ratio["value"] == pytest.approx(config["ratio"]) and ratio["model"] == "mlp"
    assert "targets, this run" in result.output


def test_loop_only_daemon_runs_every_event_and_trains_nothing(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(throughput._Marks, "HELPER_SAMPLE_S", 0.0)  # a short run: sample at every batch
    n = 12_000  # long enough for the fetch process and the broker to run up CPU ticks (10 ms each)
    x, y = mnist_arrays(n)
    topic = make_topic(1)
    _feed(shared_broker.bootstrap, topic, x, y, 1, progress=False)
    runs: list[tuple[object, list[torch.Tensor]]] = []  # (daemon, its weights before the run)

    class Watched(loop_only_daemon()):
        def _setup(self) -> None:
            super()._setup()
            runs.append((self, [p.detach().clone() for p in self.learner.model.parameters()]))

    with tempfile.TemporaryDirectory() as tmp:
        settings = daemon_settings(shared_broker.bootstrap, topic, client="kafka-python", model="mlp",
                                   replay="reservoir", features=x.shape[1], n=n, opts=Options(),
                                   checkpoint_dir=Path(tmp))
        rate = daemon_rate(settings, daemon_type=Watched)
    (daemon, weights), = runs
    assert daemon.stats.events == n and rate.per_s > 0
    assert rate.accuracy == 1.0  # every event "predicted" right: the loop's metrics saw the stub's answers
    assert daemon.learner.train_steps == 0
    after = list(daemon.learner.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, after, strict=True))  # nothing was learned
    assert rate.cpu_us_per_event > 0
    # the fetch process and the broker were sampled while it ran: both worked for these events
    assert rate.helper_us_per_event["fetch"] > 0 and rate.helper_us_per_event["broker"] > 0, rate.helper_us_per_event


def test_the_broker_and_a_spawn_child_are_told_apart(shared_broker: EmbeddedBroker) -> None:
    """process_cpu's roles: the Tansu binary is the broker, a multiprocessing spawn child a fetch process."""
    import multiprocessing as mp
    import time

    sleeper = mp.get_context("spawn").Process(target=time.sleep, args=(30,), daemon=True)
    sleeper.start()
    try:
        deadline = time.monotonic() + 30
        while process_cpu.role_of(sleeper.pid) != "fetch" and time.monotonic() < deadline:
            time.sleep(0.05)  # between fork and exec the child still shows this process's command line
        roles = {pid: role for pid, (role, _) in process_cpu.sample().items()}
        assert roles.get(shared_broker.pid) == "broker"
        assert roles.get(sleeper.pid) == "fetch"
    finally:
        sleeper.kill()
        sleeper.join()
