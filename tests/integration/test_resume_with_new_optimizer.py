"""A restart with other optimizer and metrics settings, on the real broker: the daemon resumes the model from its
checkpoint, applies the configured optimizer (Adam's checkpoint into SGD used to raise at the first step, and a
changed lr was overwritten by the checkpoint's) and metrics.window (the saved accuracy windows were written past
their end), and learns the rest of the stream once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import daemon_settings, fed_topic

from lifelong.config import Settings
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

N, FEATURES = 2_000, 16


@pytest.mark.parametrize(("optim", "lr"), [({"name": "sgd", "momentum": 0.9}, 0.05), ({"name": "adam"}, 0.002)])
def test_resume_under_another_optimizer_setting(
    optim: dict, lr: float, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic, x, y = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)

    def settings(optimizer: dict, max_events: int, window: int) -> Settings:
        return daemon_settings(
            shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES, kafka={"max_poll_records": 250},
            optim={"batch_size": 50, **optimizer}, metrics={"window": window},
            daemon={"fetcher": "thread", "micro_batch": 250, "max_events": max_events})

    first = Daemon(settings({"name": "adam", "lr": 0.01}, N // 2, 1000), install_signal_handlers=False)
    assert first.run().events == N // 2
    # metrics.window changed too: the accuracy windows are re-laid, not written past their end
    second = Daemon(settings({**optim, "lr": lr}, N, 300), install_signal_handlers=False)
    stats = second.run()
    assert stats.resumed_from is not None
    assert stats.events == N and stats.positions == {(topic, 0): N}  # the second half, once
    assert second.learner.optimizer.param_groups[0]["lr"] == lr
    assert 0 <= second.metrics.registry.get_sample_value("lifelong_accuracy_ratio") <= 1
