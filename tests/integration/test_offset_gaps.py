"""Offsets that hold no record, on the real broker: a transactional producer's commit markers take an offset
each (Tansu writes them as Kafka does), so a partition's data offsets have gaps. The daemon must learn every
record once, in order, commit past the gaps, and resume across one, with every fetcher and both clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, blobs
from kafka import KafkaProducer

from lifelong.config import Settings
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import get_codec
from lifelong.stream.consumer import open_consumer
from lifelong.stream.prefetch import open_stream

pytestmark = pytest.mark.integration

FEATURES = 16
PER_TRANSACTION = 250
TRANSACTIONS = 8
N = PER_TRANSACTION * TRANSACTIONS


def feed_in_transactions(bootstrap: str, topic: str, transactions: range) -> list[int]:
    """Records of the stream on partition 0, PER_TRANSACTION per committed transaction; returns their offsets."""
    x, y = blobs(N, FEATURES)
    codec = get_codec("f32")
    producer = KafkaProducer(bootstrap_servers=[bootstrap], transactional_id=f"tx-{topic}")
    futures = []
    try:
        producer.init_transactions()
        for t in transactions:
            producer.begin_transaction()
            for i in range(t * PER_TRANSACTION, (t + 1) * PER_TRANSACTION):
                value, headers = codec.encode(x[i], int(y[i]))
                futures.append(producer.send(topic, value=value, headers=headers, partition=0))
            producer.commit_transaction()
        producer.flush()
    finally:
        producer.close()
    return [f.get(timeout=10).offset for f in futures]


def settings(bootstrap: str, topic: str, ckpt: Path, client: str, fetcher: str, prefetch: int,
             max_events: int) -> Settings:
    return Settings(
        kafka={"bootstrap_servers": [bootstrap], "topics": [topic], "group_id": f"g-{topic}", "assign": True,
               "client": client, "poll_timeout_ms": 500, "max_poll_records": 100},
        codec={"name": "f32", "num_features": FEATURES},
        model={"name": "mlp", "input_shape": [FEATURES], "hidden": [16], "max_classes": 10},
        metrics={"port": 0},
        checkpoint={"dir": str(ckpt), "every_events": 500},
        daemon={"device": "cpu", "prefetch": prefetch, "fetcher": fetcher, "max_events": max_events,
                "idle_exit_s": 3, "log_level": "WARNING"},
    )


def learn(config: Settings, seen: list[int], timeout: float = 60,
          log_starts_read: list[set] | None = None) -> Daemon:
    """Run the daemon to its end (max_events); one still running after ``timeout`` (stuck on a gap) fails.
    ``log_starts_read``: receives the partitions of each log start the daemon reads from the broker."""
    def on_batch(_daemon: Daemon, batch) -> None:
        seen.extend(batch.offsets.tolist())

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    if log_starts_read is not None:
        real = daemon.read_log_starts

        def read(partitions: set) -> dict:
            log_starts_read.append(set(partitions))
            return real(partitions)

        daemon.read_log_starts = read
    with Running(daemon, timeout=30) as run:
        if not run.wait(timeout):
            pytest.fail(f"still running after {timeout}s with {len(seen)} of {N} records learned")
    return daemon


def skipped(daemon: Daemon, reason: str = "no_record") -> float:
    return daemon.metrics.registry.get_sample_value("lifelong_offsets_skipped_total", {"reason": reason})


@pytest.mark.parametrize(("client", "fetcher", "prefetch"), [
    ("kafka-python", "thread", 0), ("kafka-python", "thread", 2), ("kafka-python", "process", 2),
    ("confluent", "thread", 2)])
def test_transaction_markers_are_stepped_over_and_resume_across_one(
    client: str, fetcher: str, prefetch: int, shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = make_topic(1)
    tp = (topic, 0)
    offsets = feed_in_transactions(shared_broker.bootstrap, topic, range(3))
    seen: list[int] = []
    first = learn(settings(shared_broker.bootstrap, topic, tmp_path, client, fetcher, prefetch, N), seen)
    assert seen == offsets  # learned up to the idle exit: each marker stepped over
    assert first.stats.positions[tp] == offsets[-1] + 1  # the checkpoint stands on the last marker's offset
    assert skipped(first) == 2  # the markers after transactions 1 and 2; the third is not passed yet

    offsets += feed_in_transactions(shared_broker.bootstrap, topic, range(3, TRANSACTIONS))
    assert offsets[-1] == N + TRANSACTIONS - 2  # one marker after each transaction: the gaps are there
    log_starts: list[set] = []
    second = learn(settings(shared_broker.bootstrap, topic, tmp_path, client, fetcher, prefetch, N), seen,
                   log_starts_read=log_starts)
    assert second.stats.resumed_from is not None
    assert seen == offsets  # every record once, in order, across the restart and every marker
    assert skipped(first) + skipped(second) == TRANSACTIONS - 1  # each marker between records, once
    # the resume stands on a marker: before that gap was taken as empty, the broker was asked where the log
    # starts (at 0: nothing was deleted, so nothing counted as lost)
    assert {tp} in log_starts
    assert skipped(first, "deleted") + skipped(second, "deleted") == 0
    probe = open_consumer(settings(shared_broker.bootstrap, topic, tmp_path, client, fetcher, prefetch, 1).kafka)
    try:
        assert probe.committed([tp])[tp] == offsets[-1] + 1
    finally:
        probe.close()


@pytest.mark.parametrize(("client", "process"), [("kafka-python", False), ("confluent", False),
                                                 ("kafka-python", True)])
def test_lag_is_zero_once_caught_up_past_the_last_marker(
    client: str, process: bool, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    """The last offset of a transactional partition is its commit marker, which no client returns: the lag
    must still read 0 once every record is consumed (it read 1 for ever when it counted from the last record)."""
    topic = make_topic(1)
    tp = (topic, 0)
    offsets = feed_in_transactions(shared_broker.bootstrap, topic, range(2))
    cfg = settings(shared_broker.bootstrap, topic, tmp_path, client, "thread", 0, N).kafka
    consumer = open_stream(cfg, prefetch=2 if process else 0, process=process)
    try:
        seen, deadline = 0, time.monotonic() + 60
        while seen < len(offsets) and time.monotonic() < deadline:
            seen += len(consumer.poll(500))  # records, or a fetch process's Prefetched (its coordinates)
        assert seen == len(offsets)
        lag: dict = {}
        while time.monotonic() < deadline:  # the marker's fetch may come a poll after the last record
            consumer.poll(200)
            lag = consumer.lag()
            if lag.get(tp) == 0:
                break
        assert lag == {tp: 0}, f"lag {lag} after every record up to offset {offsets[-1]} was consumed"
    finally:
        consumer.close()
