"""A disk that fills up under a running daemon, on the real broker: checkpoints fail for a while (ENOSPC), the
daemon keeps learning, commits nothing the disk does not hold, counts each failure, and once the disk has room
again checkpoints and commits everything it learned; every record learned once."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, daemon_settings, fed_topic

from lifelong.daemon.checkpoint import CheckpointStore
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.consumer import open_consumer

pytestmark = pytest.mark.integration

N, FEATURES, FULL = 3_000, 16, range(1_000, 2_000)


def test_checkpoints_that_fail_for_a_while_lose_nothing(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, x, y = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             kafka={"max_poll_records": 100}, checkpoint={"every_events": 200},
                             daemon={"fetcher": "thread", "micro_batch": 100, "max_events": N, "idle_exit_s": 5})
    state = {"full": False, "commits_when_full": None, "commits_after": None}
    save = CheckpointStore.save

    def failing_save(store, *args, **kwargs):
        if state["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(store, *args, **kwargs)

    monkeypatch.setattr(CheckpointStore, "save", failing_save)
    seen: list[int] = []

    def on_batch(daemon: Daemon, batch) -> None:
        seen.extend(batch.offsets.tolist())
        full = daemon.stats.events in FULL
        if full and not state["full"]:
            state["commits_when_full"] = daemon.stats.commits
        if state["full"] and not full:
            state["commits_after"] = daemon.stats.commits
        state["full"] = full

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    with Running(daemon, timeout=120) as run:
        assert run.wait()
    assert seen == list(range(N))
    failures = daemon.metrics.registry.get_sample_value("lifelong_checkpoint_failures_total")
    assert failures >= 3  # a checkpoint every 200 events, for 1,000 events
    assert state["commits_when_full"] is not None and state["commits_after"] == state["commits_when_full"]
    latest = CheckpointStore(tmp_path / "ckpt").latest()
    assert latest.offsets == {(topic, 0): N}  # the disk had room again: everything learned is on it
    probe = open_consumer(config.kafka)
    try:
        assert probe.committed([(topic, 0)])[(topic, 0)] == N
    finally:
        probe.close()
