"""ClusterAdmin on the real broker: one admin client serves every question the daemon asks the cluster (topic IDs
every 15 s, missing topics, dead-letter topics, log starts), a question that fails closes it and the next one opens
a fresh client, and the daemon closes it when it stops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, daemon_settings, fed_topic, wait_for

import lifelong.daemon.service as service
import lifelong.stream.admin as admin
from lifelong.config import KafkaConfig
from lifelong.daemon.service import Daemon
from lifelong.stream.admin import ClusterAdmin
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

N, FEATURES = 400, 16


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every admin client lifelong.stream.admin opens, in order."""
    clients: list[object] = []
    real = admin._admin

    def counting(*args: object, **kwargs: object) -> object:
        clients.append(real(*args, **kwargs))
        return clients[-1]

    monkeypatch.setattr(admin, "_admin", counting)
    return clients


def test_one_client_answers_every_question(shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
                                           opened: list[object]) -> None:
    topic = make_topic(2)
    cfg = KafkaConfig(bootstrap_servers=[shared_broker.bootstrap], topics=[topic])
    del opened[:]  # make_topic's own
    with ClusterAdmin(cfg) as cluster:
        assert not cluster.open  # opened at the first question, not before
        info = cluster.describe_topics([topic, "absent-topic"])
        assert set(info) == {topic} and info[topic].partitions == 2 and info[topic].topic_id
        assert cluster.topic_ids([topic]) == {topic: info[topic].topic_id}
        assert cluster.missing_topics([topic, "absent-topic"]) == {"absent-topic"}
        assert cluster.create_missing_topics([f"{topic}.dlq"]) == ({f"{topic}.dlq"}, set())
        assert cluster.create_missing_topics([f"{topic}.dlq"]) == (set(), set())
        # nothing deleted from a new topic: both partitions' logs start at 0
        assert cluster.log_start_offsets([(topic, 0), (topic, 1)]) == {(topic, 0): 0, (topic, 1): 0}
        assert cluster.log_start_offsets([]) == {}
        assert cluster.open
    assert len(opened) == 1 and not cluster.open


def test_the_log_start_of_a_partition_the_cluster_lacks_raises(shared_broker: EmbeddedBroker,
                                                               make_topic: Callable[..., str]) -> None:
    """The daemon takes an unanswered log start as unknown (the gap then counts as holding no record): the admin
    must say it did not answer, not make up an offset."""
    topic = make_topic(1)
    with ClusterAdmin(KafkaConfig(bootstrap_servers=[shared_broker.bootstrap])) as cluster:
        with pytest.raises(Exception, match="UnknownTopicOrPartition|not known"):
            cluster.log_start_offsets([(topic, 0), (topic, 5)])
        assert not cluster.open  # the failed question closed the client
        assert cluster.log_start_offsets([(topic, 0)]) == {(topic, 0): 0}


def test_a_question_that_fails_closes_the_client_and_the_next_opens_another(
    broker: EmbeddedBroker, make_topic: Callable[..., str], opened: list[object],
) -> None:
    topic = make_topic(1)
    cfg = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=[topic], bootstrap_timeout_ms=2000)
    cluster = ClusterAdmin(cfg, timeout_ms=1500)
    del opened[:]  # make_topic's own
    try:
        before = cluster.topic_ids([topic])[topic]
        broker.stop()
        with pytest.raises(Exception):  # noqa: B017 - whichever kafka-python raises for a broker gone
            cluster.topic_ids([topic])
        assert not cluster.open and len(opened) == 1
        broker.start()  # memory storage: a new, empty cluster on the same port
        assert wait_for(lambda: _answers(cluster), 20, interval=0.5)
        reopened = len(opened)  # 2, or more if an attempt came before the broker answered
        assert reopened >= 2 and topic not in cluster.topic_ids([topic])
        make_topic(1, name=topic)
        assert cluster.topic_ids([topic])[topic] not in (None, before)
        assert len(opened) == reopened + 1  # make_topic's; the questions stayed on the one reopened
    finally:
        cluster.close()


def _answers(cluster: ClusterAdmin) -> bool:
    try:
        cluster.list_topics()
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


def test_the_daemon_asks_on_one_client_and_closes_it(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, opened: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, every topic-ID reading, dead-letter topic check and missing-topic check opened a client of its own."""
    monkeypatch.setattr(service, "TOPIC_ID_CHECK_S", 0.2)
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    del opened[:]  # the topic's creation and feed
    readings: list[float] = []
    daemon = Daemon(daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                                    daemon={"idle_exit_s": 2}), install_signal_handlers=False)
    real = daemon.read_topic_ids

    def counted(topics: set[str]) -> dict[str, str | None]:
        readings.append(1.0)
        return real(topics)

    daemon.read_topic_ids = counted
    with Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == N
    assert len(readings) >= 5, f"{len(readings)} topic-ID readings"  # the assignment's, then every 0.2 s
    assert len(opened) == 1, f"{len(opened)} admin clients for {len(readings)} readings and the dead-letter check"
    assert not daemon.admin.open  # closed at shutdown
