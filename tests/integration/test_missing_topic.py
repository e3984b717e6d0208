"""A topic that is not there yet, on the real broker: the daemon waits for it, says which topic the cluster lacks
(a typo in kafka.topics is the usual first-run mistake), and learns once the topic is created and fed."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs, daemon_settings, wait_for

import lifelong.daemon.service as service
from lifelong.daemon.service import Daemon
from lifelong.stream.admin import create_topic
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, FEATURES = 500, 16


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not on the cluster" in r.getMessage()]


def test_a_missing_topic_is_named_then_learned_once_created(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "UNASSIGNED_CHECK_S", 1.0)
    there, absent = make_topic(1), f"absent-{uuid.uuid4().hex[:10]}"
    x, y = blobs(N, FEATURES)
    feed_arrays(x, y, topic=there, bootstrap_servers=shared_broker.bootstrap, progress=False)
    config = daemon_settings(shared_broker.bootstrap, [there, absent], tmp_path / "ckpt", FEATURES,
                             daemon={"idle_exit_s": 60})
    daemon = Daemon(config, install_signal_handlers=False)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon):
        wait_for(lambda: bool(said(caplog)) and daemon.stats.events >= N, 30, interval=0.2)
    first = said(caplog)
    assert first and absent in first[0] and there not in first[0], [r.getMessage() for r in caplog.records]
    assert daemon.stats.events == N  # the topic that is there was learned meanwhile

    caplog.clear()
    config.daemon.max_events = N
    config.kafka.topics = [absent]
    config.checkpoint.dir = tmp_path / "ckpt-absent"
    daemon = Daemon(config, install_signal_handlers=False)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon) as run:
        wait_for(lambda: bool(said(caplog)), 30, interval=0.2)
        assert said(caplog) and absent in said(caplog)[0], [r.getMessage() for r in caplog.records]
        time.sleep(2.5)  # checked again since: the same cause is not said twice
        assert len(said(caplog)) == 1
        create_topic(shared_broker.bootstrap, absent, 1)
        feed_arrays(x, y, topic=absent, bootstrap_servers=shared_broker.bootstrap, progress=False)
        assert run.wait()
    assert daemon.stats.events == N
