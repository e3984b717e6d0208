"""The wrong codec on the real broker: f32 records read as JSON are all dead-lettered, nothing is learned, and
the log says what the counters cannot: every record was bad, why, and which codec settings to check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs, daemon_settings, fed_topic

from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, FEATURES = 1_200, 16


def test_every_record_dead_lettered_is_said_with_the_codec_to_check(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    topic, x, y = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             kafka={"max_poll_records": 200}, codec={"name": "json"})
    daemon = Daemon(config, install_signal_handlers=False)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == 0 and daemon.stats.dead_letters == N
    said = [r.getMessage() for r in caplog.records if "all dead-lettered" in r.getMessage()]
    assert len(said) == 1, said  # once, not once a poll
    assert "invalid_json" in said[0] and "codec.name=json" in said[0]


def test_records_the_model_cannot_take_are_dead_lettered_not_a_crash(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    """No codec.num_features: the model's input size is the rule. The first record used to set it, so 16-feature
    records passed and an 8-input model failed its first step (and again after every restart)."""
    topic = make_topic(1)
    x, y = blobs(N, FEATURES)
    feed_arrays(x[:N // 2], y[:N // 2], topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    fits, fits_y = blobs(N // 2, 8)
    feed_arrays(fits, fits_y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", codec={"num_features": None},
                             model={"input_shape": [8], "hidden": [8]}, daemon={"fetcher": "process"})
    stats = Daemon(config, install_signal_handlers=False).run()
    assert (stats.events, stats.dead_letters) == (N // 2, N // 2)
