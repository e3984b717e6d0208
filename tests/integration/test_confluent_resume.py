"""kafka.client: confluent against the real broker in group mode: rebalance events come from the on_assign
callback inside poll, explicit offsets are committed, and a new member resumes at the committed offsets with
nothing missing and nothing twice; the daemon's ``open_stream`` picks this client from the config."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from lifelong.config import KafkaConfig
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import decode_records
from lifelong.stream.confluent_consumer import ConfluentStreamConsumer
from lifelong.stream.feed import feed_arrays
from lifelong.stream.prefetch import open_stream

pytestmark = pytest.mark.integration

N = 3_000
PARTITIONS = 2
STOP_AFTER = 1_234


def consume(consumer, budget: int, seen: list[tuple[int, int, int]], timeout_s: float = 40.0) -> list:
    """Poll until ``budget`` records, committing exactly the processed prefix; returns the rebalance events."""
    events: list = []
    deadline = time.monotonic() + timeout_s
    done = 0
    while done < budget and time.monotonic() < deadline:
        records = consumer.poll(1000)
        events.extend(consumer.drain_events())
        records = list(records)[: budget - done]
        if not records:
            continue
        batch = decode_records(records, "f32", num_features=4, max_classes=10)
        assert batch.bad == []
        seen.extend(zip(batch.partitions.tolist(), batch.offsets.tolist(), batch.x[:, 0].astype(int).tolist(),
                        strict=True))
        consumer.commit(batch.next_offsets)
        done += len(records)
    assert done == budget, f"{done} of {budget} records within {timeout_s} s"
    return events


def test_group_member_commits_and_a_new_member_resumes(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], kafka_config: Callable[..., KafkaConfig],
) -> None:
    topic = make_topic(PARTITIONS)
    x = np.repeat(np.arange(N, dtype=np.float32)[:, None], 4, axis=1)  # feature 0 = the record's id
    feed_arrays(x, np.arange(N) % 10, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    cfg = kafka_config(shared_broker.bootstrap, topic, client="confluent", max_poll_records=300)

    seen: list[tuple[int, int, int]] = []
    first = ConfluentStreamConsumer(cfg)
    try:
        events = consume(first, STOP_AFTER, seen)
        committed = first.committed([(topic, p) for p in range(PARTITIONS)])
    finally:
        first.close()
    assert events[0].kind == "assigned" and set(events[0].partitions) == {(topic, p) for p in range(PARTITIONS)}
    ends = {p: max(o for q, o, _ in seen if q == p) + 1 for p in {q for q, _, _ in seen}}
    assert {p: committed[(topic, p)] for p in ends} == ends

    second = open_stream(cfg)  # what the daemon's _connect calls, with prefetch off
    try:
        assert isinstance(second, ConfluentStreamConsumer)
        consume(second, N - STOP_AFTER, seen)
        extra = second.poll(1500)
    finally:
        second.close()
    assert list(extra) == []
    ids = sorted(i for _, _, i in seen)
    assert ids == list(range(N))  # none missing, none twice
    for p in range(PARTITIONS):
        offsets = [o for q, o, _ in seen if q == p]
        assert offsets == list(range(len(offsets)))
