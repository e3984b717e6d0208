"""StreamConsumer against the real broker: rebalance events between two members, seek, assign mode waiting
for a topic, producer recreation after a restart, and ``lifelong feed`` end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lifelong.config import KafkaConfig
from lifelong.datasets import build_scenario, read_boundaries
from lifelong.stream.admin import create_topic
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.cli import feed
from lifelong.stream.codecs import decode_records
from lifelong.stream.consumer import RebalanceEvent, StreamConsumer, open_consumer
from lifelong.stream.feed import feed_arrays
from lifelong.stream.producer import StreamProducer
from lifelong.stream.records import RawRecord

pytestmark = pytest.mark.integration


def _small(n: int, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.random((n, features), dtype=np.float32), np.arange(n) % 10


def _drain(consumer: StreamConsumer, n: int, timeout_s: float = 20.0) -> list[RawRecord]:
    out: list[RawRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out.extend(consumer.poll(timeout_ms=1000))
    return out


def test_second_member_triggers_revoke_and_assign_events(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], kafka_config: Callable[..., KafkaConfig],
) -> None:
    topic = make_topic(2)
    cfg = kafka_config(shared_broker.bootstrap, topic, poll_timeout_ms=500)
    a, b = StreamConsumer(cfg), StreamConsumer(cfg)
    events: dict[str, list[RebalanceEvent]] = {"a": [], "b": []}
    stop = threading.Event()

    def run(name: str, consumer: StreamConsumer, start_after: float) -> None:
        time.sleep(start_after)
        while not stop.is_set():
            consumer.poll()
            events[name].extend(consumer.drain_events())

    threads = [threading.Thread(target=run, args=("a", a, 0.0)),
               threading.Thread(target=run, args=("b", b, 4.0))]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if a.assignment() and b.assignment() and len(events["b"]) >= 1 and any(
                    e.kind == "revoked" for e in events["a"]):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    try:
        assert a.assignment() | b.assignment() == {(topic, 0), (topic, 1)}
        assert not a.assignment() & b.assignment()
        kinds_a = [e.kind for e in events["a"]]
        assert kinds_a[0] == "assigned" and events["a"][0].partitions == {(topic, 0), (topic, 1)}
        assert "revoked" in kinds_a and kinds_a[-1] == "assigned"
        assert events["b"][-1] == RebalanceEvent("assigned", frozenset(b.assignment()))
        kind, parts = events["b"][-1]  # unpacks like a tuple, for callers that index events
        assert kind == "assigned" and parts == b.assignment()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_seek_and_committed_in_assign_mode(
    client: str, shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
    kafka_config: Callable[..., KafkaConfig],
) -> None:
    topic = make_topic(1)
    x, y = _small(50)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    cfg = kafka_config(shared_broker.bootstrap, topic, assign=True, client=client)
    with open_consumer(cfg) as consumer:
        records = _drain(consumer, 50)
        assert [r.offset for r in records] == list(range(50))
        assert consumer.drain_events() == [RebalanceEvent("assigned", frozenset({(topic, 0)}))]
        assert consumer.committed() == {(topic, 0): None}
        assert consumer.commit({(topic, 0): 30, ("other-topic", 0): 5}) == {(topic, 0): 30}
        assert consumer.committed() == {(topic, 0): 30}
        assert consumer.position((topic, 0)) == 50
        lag = consumer.lag()
        assert set(lag) <= {(topic, 0)} and all(v >= 0 for v in lag.values())  # exact lag is off on Tansu
        consumer.seek({(topic, 0): 45})
        again = _drain(consumer, 5)
        assert [r.offset for r in again] == [45, 46, 47, 48, 49]
        batch = decode_records(again, "f32", num_features=8)
        np.testing.assert_array_equal(batch.x, x[45:])
    with open_consumer(cfg) as resumed:  # a new instance starts at the committed offset
        assert [r.offset for r in _drain(resumed, 20)] == list(range(30, 50))


def test_assign_mode_waits_for_a_topic_created_later(
    shared_broker: EmbeddedBroker, kafka_config: Callable[..., KafkaConfig],
) -> None:
    topic = f"late-{time.monotonic_ns()}"
    cfg = kafka_config(shared_broker.bootstrap, topic, assign=True, poll_timeout_ms=300)
    with StreamConsumer(cfg) as consumer:
        assert consumer.poll() == []
        assert consumer.assignment() == set()
        create_topic(shared_broker.bootstrap, topic, 2)
        x, y = _small(10)
        feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
        records = _drain(consumer, 10)
        assert sorted(int(r.key) for r in records) == list(range(10))
        assert consumer.assignment() == {(topic, 0), (topic, 1)}
        assert [e.kind for e in consumer.drain_events()] == ["assigned"]


def test_producer_recreate_after_broker_restart(broker: EmbeddedBroker) -> None:
    cfg = KafkaConfig(bootstrap_servers=[broker.bootstrap])
    producer = StreamProducer(cfg)
    create_topic(broker.bootstrap, "r", 1)
    assert producer.send("r", b"before").get(timeout=10).offset == 0
    broker.restart()
    create_topic(broker.bootstrap, "r", 1)
    producer.recreate()
    assert producer.send("r", b"after").get(timeout=20).offset == 0  # a fresh broker: offsets start again
    producer.close()


def test_feed_paces_to_the_rate(shared_broker: EmbeddedBroker, make_topic: Callable[..., str]) -> None:
    topic = make_topic(1)
    x, y = _small(100)
    report = feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, rate=250, keys="label",
                         progress=False)
    assert report.records == 100 and report.rate_limit == 250
    assert report.seconds >= 0.35  # 100 events at 250/s cannot take less than 0.4 s (pacing, not speed)


def test_feed_command_produces_a_scenario_and_writes_its_boundaries(
    shared_broker: EmbeddedBroker, kafka_config: Callable[..., KafkaConfig], tmp_path: Path,
) -> None:
    app = typer.Typer()
    app.command("feed")(feed)
    app.command("noop")(lambda: None)  # two commands: typer keeps the subcommand name
    topic, out = "digits-split", tmp_path / "b.json"
    result = CliRunner().invoke(app, [
        "feed", "--bootstrap", shared_broker.bootstrap, "--topic", topic, "--dataset", "digits",
        "--scenario", "split", "--tasks", "5", "--seed", "3", "--codec", "json", "--limit", "600",
        "--param", "classes_per_task=2", "--no-progress", "--boundaries-out", str(out)])
    assert result.exit_code == 0, result.output
    expected = build_scenario("split", dataset="digits", seed=3, limit=600, tasks=5, classes_per_task=2)
    doc, boundaries = read_boundaries(out)
    assert [b.position for b in boundaries] == [b.position for b in expected.boundaries]
    assert doc["feed"]["topic"] == topic and doc["feed"]["records"] == len(expected.y)
    assert doc["feed"]["base_offset"] == 0 and doc["feed"]["partitions"] == 1
    for b in boundaries:
        assert f"boundary at event {b.position:>8,}" in result.output

    cfg = kafka_config(shared_broker.bootstrap, topic, assign=True)
    with StreamConsumer(cfg) as consumer:
        records = _drain(consumer, len(expected.y))
    batch = decode_records(records, "json", feature_shape=(8, 8), max_classes=10)
    assert batch.bad == []
    np.testing.assert_array_equal(batch.y, expected.y)  # one partition: the scenario's order
    np.testing.assert_array_equal(batch.x, expected.x)
    assert batch.offsets.tolist() == list(range(len(expected.y)))


def test_feed_command_rejects_bad_options(shared_broker: EmbeddedBroker, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("feed")(feed)
    app.command("noop")(lambda: None)
    base = ["feed", "--bootstrap", shared_broker.bootstrap, "--dataset", "digits", "--no-progress",
            "--boundaries-out", str(tmp_path / "x.json")]
    assert CliRunner().invoke(app, [*base, "--keys", "random"]).exit_code == 2
    assert CliRunner().invoke(app, [*base, "--scenario", "nope"]).exit_code == 2
    assert CliRunner().invoke(app, [*base, "--param", "novalue"]).exit_code == 2
    assert not (tmp_path / "x.json").exists()


def test_connected_follows_the_broker(
    broker: EmbeddedBroker, kafka_config: Callable[..., KafkaConfig],
) -> None:
    create_topic(broker.bootstrap, "c", 1)
    cfg = kafka_config(broker.bootstrap, "c", assign=True, poll_timeout_ms=300, reconnect_backoff_max_ms=300)
    with StreamConsumer(cfg) as consumer:
        consumer.poll()
        assert consumer.connected()
        broker.kill()
        deadline = time.monotonic() + 10
        while consumer.connected() and time.monotonic() < deadline:
            consumer.poll()
        assert not consumer.connected()
        broker.start()
        deadline = time.monotonic() + 15
        while not consumer.connected() and time.monotonic() < deadline:
            consumer.poll()
        assert consumer.connected()


def test_chunked_socket_reads_deliver_the_same_records_as_kafka_pythons_own(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], kafka_config: Callable[..., KafkaConfig],
) -> None:
    """3,000 MNIST-sized records (3 KB each, fetch responses of megabytes) read through 1 MiB and 256 KiB
    chunks, through 4 KiB chunks (every read a full one) and through kafka-python's own loop: the same offsets
    and bytes."""
    from lifelong.stream.socket_reads import recv_chunk_in_effect

    topic = make_topic(2)
    x, y = _small(3000, features=784)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    seen: dict[int, list[tuple[int, int, bytes]]] = {}
    decoded: np.ndarray | None = None
    try:
        for chunk in (1024 * 1024, 256 * 1024, 4096, 0):
            cfg = kafka_config(shared_broker.bootstrap, topic, assign=True, recv_chunk_bytes=chunk)
            with StreamConsumer(cfg) as consumer:
                assert recv_chunk_in_effect() == chunk
                records = _drain(consumer, 3000)
            seen[chunk] = sorted((r.partition, r.offset, r.value) for r in records)
            decoded = decode_records(records, "f32", num_features=784).x
    finally:
        from lifelong.stream.socket_reads import set_recv_chunk

        set_recv_chunk(KafkaConfig().recv_chunk_bytes)
    assert len(seen[0]) == 3000
    assert seen[1024 * 1024] == seen[256 * 1024] == seen[4096] == seen[0]
    assert decoded is not None
    assert sorted(row.tobytes() for row in decoded) == sorted(row.tobytes() for row in x)
