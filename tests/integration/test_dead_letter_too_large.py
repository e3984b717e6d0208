"""A bad record too large for the dead-letter topic, on the real broker. Its dead letter used to fail at every
checkpoint, for ever, and so no checkpoint was written and no offset committed again: one poison record stopped
the daemon's durability. Its dead letter now goes without the payload, saying what was left out and where the
record is.

On Kafka the refusal is usually the broker's (the dead-letter topic's ``max.message.bytes``, 1 MB by default,
below the source topic's); Tansu sets no such limit, so here it is the producer's own: the daemon's producers
take ``max_request_size`` from ``kafka.max_partition_fetch_bytes``, set to 1 MB, while a consumer still fetches a
larger record whole. tests/unit/test_dead_letter.py covers the broker's refusal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs, daemon_settings

from lifelong.config import KafkaConfig
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.consumer import StreamConsumer
from lifelong.stream.feed import feed_arrays
from lifelong.stream.producer import StreamProducer

pytestmark = pytest.mark.integration

N, FEATURES, HUGE = 300, 16, 2 << 20


def test_a_dead_letter_too_large_for_its_topic_goes_without_its_payload_and_checkpoints_go_on(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic = make_topic(1)
    x, y = blobs(2 * N, FEATURES)
    feed_arrays(x[:N], y[:N], topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    with StreamProducer(KafkaConfig(bootstrap_servers=[shared_broker.bootstrap]), max_request_size=2 * HUGE) as big:
        big.send(topic, b"\x00" * HUGE, key=b"huge", headers=[("trace", b"t-1")]).get(timeout=30)  # offset N
    feed_arrays(x[N:], y[N:], topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)

    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             kafka={"max_partition_fetch_bytes": 1 << 20}, checkpoint={"every_events": 100})
    daemon = Daemon(config, install_signal_handlers=False)
    with Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == 2 * N and daemon.stats.dead_letters == 1
    assert daemon.stats.positions == {(topic, 0): 2 * N + 1}  # checkpointed and committed past it
    assert daemon.metrics.value("lifelong_dead_letter_payloads_omitted_total") == 1

    consumer = StreamConsumer(KafkaConfig(bootstrap_servers=[shared_broker.bootstrap], topics=[f"{topic}.dlq"],
                                          group_id=f"read-{topic}"))
    letters = []
    try:
        for _ in range(20):
            letters += consumer.poll(timeout_ms=500)
            if letters:
                break
    finally:
        consumer.close()
    assert len(letters) == 1
    letter = letters[0]
    assert not letter.value and letter.key is None
    assert letter.header("source_offset") == str(N).encode() and letter.header("reason")
    omitted = letter.header("omitted").decode()
    assert f"value {HUGE} bytes" in omitted and "key 4 bytes" in omitted and "1 headers" in omitted
