"""An idle daemon, on the real broker: nothing learned since the newest checkpoint, so no new one every
``checkpoint.every_seconds`` (it wrote one each time: 2,880 copies of the same model a day at the default 30 s, and
the same offsets committed again), until records come again. Its checkpoint age stays current meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs, daemon_settings, fed_topic, wait_for

from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, FEATURES = 300, 16


def test_an_idle_daemon_writes_no_checkpoint_until_it_learns_again(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             checkpoint={"every_seconds": 0.2}, daemon={"idle_exit_s": 60})
    daemon = Daemon(config, install_signal_handlers=False)
    with Running(daemon):
        assert wait_for(lambda: daemon.stats.positions == {(topic, 0): N}, 30)
        written, commits = daemon.stats.checkpoints, daemon.stats.commits
        files = sorted(p.name for p in (tmp_path / "ckpt").glob("ckpt-*.pt"))
        durable = daemon.metrics.registry.get_sample_value("lifelong_checkpoint_timestamp_seconds")
        time.sleep(2.0)  # ten checkpoint intervals with nothing learned
        assert (daemon.stats.checkpoints, daemon.stats.commits) == (written, commits)
        assert sorted(p.name for p in (tmp_path / "ckpt").glob("ckpt-*.pt")) == files
        # the newest checkpoint still holds all it learned: durable as of now, no stale alarm on the dashboard
        assert daemon.metrics.registry.get_sample_value("lifelong_checkpoint_timestamp_seconds") > durable + 1

        x, y = blobs(N, FEATURES, seed=1)
        feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
        assert wait_for(lambda: daemon.stats.positions == {(topic, 0): 2 * N}, 30)
        assert daemon.stats.checkpoints > written and daemon.stats.commits > commits
    assert daemon.stats.events == 2 * N
