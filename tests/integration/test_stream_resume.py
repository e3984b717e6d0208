"""Issue 2 acceptance: 10,000 MNIST records through a real broker, consumed in a group with manual commits,
stopped midway (inside a poll) and resumed by a new consumer: no record missing, none twice, bytes intact."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from lifelong.config import KafkaConfig
from lifelong.datasets import load_dataset
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import decode_records, get_codec
from lifelong.stream.consumer import StreamConsumer
from lifelong.stream.feed import feed_arrays
from lifelong.stream.records import RawRecord

pytestmark = pytest.mark.integration

N = 10_000
PARTITIONS = 3
STOP_AFTER = 4_321  # not a multiple of the poll size: the first consumer stops inside a poll


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("mnist", limit=N)
    assert data.x_train.shape == (N, 28, 28)
    return data.x_train, data.y_train


def _process(consumer: StreamConsumer, codec_name: str, budget: int, seen: list[tuple[int, int, int]],
             x_ref: np.ndarray, y_ref: np.ndarray, timeout_s: float = 60.0) -> None:
    """Poll, decode and check records until ``budget`` are processed; commit exactly what was processed."""
    codec = get_codec(codec_name)
    deadline = time.monotonic() + timeout_s
    done = 0
    while done < budget and time.monotonic() < deadline:
        records: list[RawRecord] = consumer.poll()
        if not records:
            continue
        records = records[: budget - done]  # "processed" = a prefix of this poll when stopping midway
        batch = decode_records(records, codec, feature_shape=(28, 28), max_classes=10)
        assert batch.bad == []
        ids = [int(r.key) for r in records]
        np.testing.assert_array_equal(batch.x, x_ref[ids])
        np.testing.assert_array_equal(batch.y, y_ref[ids])
        seen.extend(zip(batch.partitions.tolist(), batch.offsets.tolist(), ids, strict=True))
        consumer.commit(batch.next_offsets)
        done += len(records)
    assert done == budget, f"only {done} of {budget} records arrived within {timeout_s} s"


@pytest.mark.parametrize("codec_name", ["f32", "json"])
def test_stop_midway_and_resume_from_committed_offsets(
    codec_name: str, shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
    kafka_config: Callable[..., KafkaConfig], mnist: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = mnist
    topic = make_topic(PARTITIONS)
    report = feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, codec=codec_name,
                         keys="index", progress=False)
    assert report.records == N and report.partitions == PARTITIONS
    cfg = kafka_config(shared_broker.bootstrap, topic, max_poll_records=700)

    seen: list[tuple[int, int, int]] = []
    first = StreamConsumer(cfg)
    _process(first, codec_name, STOP_AFTER, seen, x, y)
    committed = first.committed([(topic, p) for p in range(PARTITIONS)])
    first.close()
    by_partition: dict[int, int] = {}
    for partition, offset, _ in seen:
        by_partition[partition] = max(by_partition.get(partition, -1), offset + 1)
    assert {p: committed[(topic, p)] for p in by_partition} == by_partition

    second = StreamConsumer(cfg)
    try:
        _process(second, codec_name, N - STOP_AFTER, seen, x, y)
        extra = second.poll(timeout_ms=1500)  # nothing may come after the last record
    finally:
        second.close()
    assert extra == []

    ids = [i for _, _, i in seen]
    assert len(ids) == N
    assert sorted(ids) == list(range(N))  # none missing, none twice
    positions = sorted((p, o) for p, o, _ in seen)
    assert len(set(positions)) == N
    for p in range(PARTITIONS):  # offsets per partition are contiguous from 0
        offsets = [o for q, o in positions if q == p]
        assert offsets == list(range(len(offsets)))
