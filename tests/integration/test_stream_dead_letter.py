"""Issue 2 acceptance: malformed records among good ones each land in ``<topic>.dlq`` with their reason and
raw bytes; every good one is delivered, in order per partition."""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from lifelong.config import KafkaConfig
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import decode_records, get_codec
from lifelong.stream.consumer import StreamConsumer
from lifelong.stream.dead_letter import DeadLetterError, DeadLetterWriter
from lifelong.stream.producer import StreamProducer
from lifelong.stream.records import BadRecord, RawRecord

pytestmark = pytest.mark.integration

NUM_FEATURES = 16
RNG = np.random.default_rng(3)


def _json_bad() -> list[tuple[bytes, str]]:
    good = {"x": [0.5] * NUM_FEATURES, "y": 1}
    return [
        (b'{"x": [0.1, 0.2', "invalid_json"),
        (json.dumps({**good, "x": [0.5] * (NUM_FEATURES - 3)}).encode(), "wrong_feature_count"),
        (json.dumps({**good, "x": [float("nan")] * NUM_FEATURES}).encode(), "non_finite"),
        (json.dumps({**good, "x": [0.0] * (NUM_FEATURES - 1) + [float("-inf")]}).encode(), "non_finite"),
        (b"", "empty_value"),
        (json.dumps({**good, "y": "seven"}).encode(), "bad_label_type"),
        (json.dumps({**good, "y": 12}).encode(), "label_out_of_range"),
    ]


def _f32_bad() -> list[tuple[bytes, str]]:
    codec = get_codec("f32")
    value, _ = codec.encode(np.ones(NUM_FEATURES, np.float32), 1)
    nan = np.ones(NUM_FEATURES, np.float32)
    nan[3] = np.nan
    inf = np.ones(NUM_FEATURES, np.float32)
    inf[0] = np.inf
    return [
        (value[:2] + bytes([7]) + value[3:], "bad_header_version"),
        (codec.encode(np.ones(NUM_FEATURES + 1, np.float32), 1)[0], "wrong_feature_count"),
        (codec.encode(nan, 1)[0], "non_finite"),
        (codec.encode(inf, 1)[0], "non_finite"),
        (b"", "empty_value"),
        (value[:-5], "truncated"),
        (struct.pack("<2s", b"XY") + value[2:], "bad_magic"),
        (codec.encode(np.ones(NUM_FEATURES, np.float32), -1)[0], "label_out_of_range"),
    ]


def _produce_mix(bootstrap: str, topic: str, codec_name: str, bad: list[tuple[bytes, str]], partitions: int,
                 n_good: int) -> tuple[dict[int, list[int]], dict[str, tuple[bytes, str]]]:
    """Good records (key ``g<i>``) with the bad ones (key ``b<j>``) spread among them, round-robin over
    partitions. Returns the expected good ids per partition in order, and (value, reason) per bad key."""
    codec = get_codec(codec_name)
    producer = StreamProducer(KafkaConfig(bootstrap_servers=[bootstrap]))
    expected: dict[int, list[int]] = {p: [] for p in range(partitions)}
    reasons: dict[str, tuple[bytes, str]] = {}
    every = n_good // (len(bad) + 1)
    bad_iter = iter(enumerate(bad))
    slot = 0
    for i in range(n_good):
        if i % every == every // 2:
            item = next(bad_iter, None)
            if item is not None:
                j, (value, reason) = item
                key = f"b{j}"
                producer.send(topic, value, key=key.encode(), headers=[("trace", key.encode())],
                              partition=slot % partitions)
                reasons[key] = (value, reason)
                slot += 1
        x = RNG.random(NUM_FEATURES, dtype=np.float32)
        value, headers = codec.encode(x, i % 10)
        producer.send(topic, value, key=f"g{i}".encode(), headers=headers, partition=slot % partitions)
        expected[slot % partitions].append(i)
        slot += 1
    producer.flush(30)
    assert producer.take_errors() == []
    producer.close()
    assert len(reasons) == len(bad)
    return expected, reasons


def _read_all(cfg: KafkaConfig, total: int, timeout_s: float = 30.0) -> list[RawRecord]:
    consumer = StreamConsumer(cfg)
    out: list[RawRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < total and time.monotonic() < deadline:
            out.extend(consumer.poll(timeout_ms=1000))
    finally:
        consumer.close()
    return out


@pytest.mark.parametrize(("codec_name", "assign"), [("json", False), ("f32", True)])
def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_arrive_in_order(
    codec_name: str, assign: bool, shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
    kafka_config: Callable[..., KafkaConfig],
) -> None:
    partitions, n_good = 2, 300
    topic = make_topic(partitions)
    bad = _json_bad() if codec_name == "json" else _f32_bad()
    expected, reasons = _produce_mix(shared_broker.bootstrap, topic, codec_name, bad, partitions, n_good)
    total = n_good + len(bad)

    cfg = kafka_config(shared_broker.bootstrap, topic, assign=assign, max_poll_records=64)
    consumer = StreamConsumer(cfg)
    writer = DeadLetterWriter(cfg)
    delivered: dict[int, list[tuple[int, int]]] = {p: [] for p in range(partitions)}
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while seen < total and time.monotonic() < deadline:
            records = consumer.poll()
            batch = decode_records(records, codec_name, num_features=NUM_FEATURES, max_classes=10)
            writer.write(batch.bad)
            writer.flush()  # raises if a dead letter was not written: then no commit
            consumer.commit(batch.next_offsets)
            for record, partition, offset in zip(
                [r for r in records if r.key.startswith(b"g")], batch.partitions.tolist(),
                batch.offsets.tolist(), strict=True,
            ):
                assert (record.partition, record.offset) == (partition, offset)
                delivered[partition].append((offset, int(record.key[1:])))
            seen += batch.total
    finally:
        consumer.close()
        writer.close()
    assert seen == total
    assert writer.written == len(bad)
    for p in range(partitions):
        offsets = [o for o, _ in delivered[p]]
        assert offsets == sorted(offsets)
        assert [i for _, i in delivered[p]] == expected[p]

    dlq = _read_all(kafka_config(shared_broker.bootstrap, f"{topic}.dlq", assign=True), len(bad))
    assert len(dlq) == len(bad)
    sources: set[tuple[int, int]] = set()
    for record in dlq:
        key = record.key.decode()
        value, reason = reasons.pop(key)
        assert record.header("reason").decode() == reason
        assert (record.value or b"") == value  # the raw bytes, as they came
        assert record.header("source_topic").decode() == topic
        assert record.header("trace") == key.encode()  # original headers kept
        sources.add((int(record.header("source_partition")), int(record.header("source_offset"))))
    assert reasons == {}  # every bad record found once
    assert len(sources) == len(bad)


def test_dead_letter_flush_fails_while_the_broker_is_down_and_recovers(
    broker: EmbeddedBroker, kafka_config: Callable[..., KafkaConfig],
) -> None:
    threads_before = set(threading.enumerate())
    cfg = kafka_config(broker.bootstrap, "events", reconnect_backoff_max_ms=500, bootstrap_timeout_ms=1000)
    writer = DeadLetterWriter(cfg)
    rec = RawRecord("events", 0, 41, b"k", b"\x00garbage", (("h", b"v"),))

    writer.write(BadRecord(rec, "bad_magic"))
    assert writer.flush(timeout_s=20) == 1

    broker.kill()
    writer.write(BadRecord(rec, "bad_magic"))
    with pytest.raises(DeadLetterError) as err:
        writer.flush(timeout_s=2)
    assert [b.record.offset for b in err.value.failed] == [41]
    # a retry while the broker is still down: the failed flush replaced the producer, and a new one cannot reach
    # the cluster; the letter must come back as failed again, not be dropped (nor raise from write)
    writer.write(err.value.failed)
    with pytest.raises(DeadLetterError) as err:
        writer.flush(timeout_s=2)
    assert [b.record.offset for b in err.value.failed] == [41]

    broker.start()  # same port, empty broker
    # The caller retries what failed, as the daemon does at each checkpoint: the first attempt after a restart
    # may still fail (the fresh producer's first metadata for a topic the new broker has not created yet).
    failed, attempts = err.value.failed, 0
    while failed:
        attempts += 1
        assert attempts <= 5, "dead letters still not written after 5 attempts"
        writer.write(failed)
        try:
            assert writer.flush(timeout_s=20) == 1
            failed = []
        except DeadLetterError as retry:
            failed = retry.failed
    writer.close()
    # each failed flush closed its producer with a letter still queued: kafka-python's close() raised then and
    # left the client open, its network thread running (and sending the letter again once a broker answered)
    left = [t.name for t in set(threading.enumerate()) - threads_before if "producer" in t.name and t.is_alive()]
    assert not left, f"producer threads left running: {left}"
    dlq = _read_all(kafka_config(broker.bootstrap, "events.dlq", assign=True), attempts, timeout_s=15)
    letters = [(r.value, r.header("reason"), r.header("source_offset")) for r in dlq]
    # at least once: an attempt reported failed may still have landed (its ack lost in the restart), so a retry
    # can write the letter again; one per attempt at most, and none other
    assert set(letters) == {(b"\x00garbage", b"bad_magic", b"41")}
    assert len(letters) <= attempts, f"{len(letters)} copies after {attempts} attempts"
