"""A topic deleted and created again under the same name, on the real broker: a new log, whose offsets start at 0
again. Resuming at the old log's offsets would skip the new log's first records without a word (Tansu answers a
fetch beyond a partition's end with no records, so nothing would even say the log went back). The daemon tells the
two logs apart by Kafka's topic ID and learns the new one from its start: after a restart, and while it runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs, daemon_settings, fed_topic, wait_for
from kafka.admin import KafkaAdminClient

import lifelong.daemon.service as service
from lifelong.daemon.service import Daemon
from lifelong.stream.admin import create_topic, topic_ids
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

OLD, NEW, FEATURES = 600, 800, 16


def recreate(bootstrap: str, topic: str, n: int) -> None:
    """Delete ``topic``, create it again with one partition, feed it ``n`` other records."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    assert wait_for(lambda: create_topic(bootstrap, topic, 1), 10, interval=0.2)
    x, y = blobs(n, FEATURES, seed=1)
    feed_arrays(x, y, topic=topic, bootstrap_servers=bootstrap, progress=False)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deleted and created again" in r.getMessage()]


def test_a_restart_after_the_topic_was_created_again_learns_the_new_log_from_its_start(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, OLD, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES)
    first = Daemon(config, install_signal_handlers=False)
    with Running(first) as run:
        assert run.wait()
    assert first.stats.events == OLD and first.stats.positions == {(topic, 0): OLD}
    old_id = topic_ids(config.kafka, [topic])[topic]

    recreate(shared_broker.bootstrap, topic, NEW)  # longer than the old log: resuming at 600 would learn 200
    assert topic_ids(config.kafka, [topic])[topic] != old_id

    second = Daemon(config, install_signal_handlers=False)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(second) as run:
        assert run.wait()
    assert second.stats.resumed_from  # the model goes on; only the offsets were of the old log
    assert second.stats.events - OLD == NEW, f"{second.stats.events - OLD} of the new log's {NEW} records learned"
    assert second.stats.positions == {(topic, 0): NEW}
    assert len(said(caplog)) == 1 and topic in said(caplog)[0] and old_id in said(caplog)[0]
    assert second.metrics.value("lifelong_topic_recreations_total", {"topic": topic}) == 1

    third = Daemon(config, install_signal_handlers=False)  # the new ID is in the checkpoint: an ordinary resume
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(third) as run:
        assert run.wait()
    assert third.stats.events == OLD + NEW and len(said(caplog)) == 1


@pytest.mark.parametrize(("fetcher", "prefetch"), [("thread", 0), ("process", 2)])
def test_a_topic_created_again_while_the_daemon_runs_is_learned_from_its_start(
    fetcher: str, prefetch: int, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While it runs, the daemon finds out within TOPIC_ID_CHECK_S. Records of the new log at offsets past the old
    position may be learned before that, and again from the start: at least once, never skipped."""
    monkeypatch.setattr(service, "TOPIC_ID_CHECK_S", 1.0)
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, OLD, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             daemon={"idle_exit_s": 60, "prefetch": prefetch, "fetcher": fetcher})
    after: list[int] = []  # offsets learned once the topic was created again
    created = threading.Event()

    def on_batch(_: Daemon, batch) -> None:
        if created.is_set():
            after.extend(batch.offsets.tolist())

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon, timeout=90):
        assert wait_for(lambda: daemon.stats.events >= OLD, 30, interval=0.1)
        created.set()
        recreate(shared_broker.bootstrap, topic, NEW)
        assert wait_for(lambda: daemon.positions.get((topic, 0)) == NEW and set(after) == set(range(NEW)), 30,
                        interval=0.1), f"{len(set(after))} of the new log's {NEW} records learned"
    assert len(said(caplog)) == 1, said(caplog)
    assert daemon.metrics.value("lifelong_topic_recreations_total", {"topic": topic}) == 1
    again = len(after) - NEW  # learned before the check found the new ID, then again from the start
    assert 0 <= again <= NEW - OLD
