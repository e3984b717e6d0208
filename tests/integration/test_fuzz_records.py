"""Fuzz (issue 5): 20,000 random and structurally wrong records mixed into a good stream.

No crash; every bad record lands in ``<topic>.dlq`` with a reason; every weight stays finite; and prequential
accuracy on the good records is within 1 point of a run over the good records alone.
"""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest
import torch
from daemon_helpers import blobs, start_daemon, write_config
from kafka import KafkaConsumer, KafkaProducer

from lifelong.daemon.checkpoint import CheckpointStore
from lifelong.stream.broker import free_port
from lifelong.stream.codecs import REASONS, get_codec
from lifelong.stream.feed import feed_arrays

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_GOOD, N_BAD, FEATURES = 10_000, 20_000, 32


def bad_records(n: int, rng: np.random.Generator) -> list[bytes | None]:
    """Random bytes and near-miss f32 records: wrong dimensions, NaN/Inf, huge, empty, wrong types, bad labels."""
    codec = get_codec("f32")
    good_x = rng.normal(size=FEATURES).astype(np.float32)

    def encoded(x: np.ndarray, y: int) -> bytes:
        return codec.encode(x, y)[0]

    makers = [
        lambda: rng.bytes(int(rng.integers(1, 300))),  # random bytes
        lambda: None,  # no value at all
        lambda: b"",  # empty value
        lambda: encoded(rng.normal(size=FEATURES + int(rng.integers(1, 5))).astype(np.float32), 1),
        lambda: encoded(rng.normal(size=(4, FEATURES // 4 + 1)).astype(np.float32), 1),  # wrong shape
        lambda: encoded(np.where(np.arange(FEATURES) == rng.integers(FEATURES), np.nan, good_x).astype(np.float32), 2),
        lambda: encoded(np.full(FEATURES, np.inf, np.float32), 2),
        lambda: encoded(good_x, int(rng.integers(10, 10_000))),  # label out of range
        lambda: encoded(good_x, -int(rng.integers(1, 100))),  # negative label
        lambda: encoded(good_x, 3)[:-int(rng.integers(1, 20))],  # truncated
        lambda: b"LF" + bytes([9]) + encoded(good_x, 3)[3:],  # unknown header version
        lambda: b'{"x": [1, 2, 3], "y": "cat"}',  # another codec's record, wrong label type
        lambda: struct.pack("<2sBBi", b"LF", 1, 7, 1) + rng.bytes(64),  # absurd ndim
    ]
    out: list[bytes | None] = []
    for i in range(n):
        out.append(makers[i % len(makers)]())
    # a few huge ones (1.5 MB of garbage)
    for i in range(0, n, n // 4):
        out[i] = rng.bytes(1_500_000)
    return out


def run_daemon(tmp_path, bootstrap, topic, name, fetcher="thread"):
    path = tmp_path / name
    path.mkdir()
    config = write_config(
        path, bootstrap, topic, free_port(),
        kafka={"group_id": name, "assign": True, "max_poll_records": 1000},
        codec={"name": "f32", "num_features": FEATURES},
        model={"name": "mlp", "input_shape": [FEATURES], "hidden": [64], "max_classes": 10},
        replay={"kind": "reservoir", "capacity": 200, "batch_size": 32},
        checkpoint={"every_events": 5000, "every_seconds": 3600},
        daemon={"device": "cpu", "deterministic": True, "seed": 5, "micro_batch": 256, "idle_exit_s": 10,
                "fetcher": fetcher},
    )
    proc = start_daemon(config, path / "daemon.log")
    assert proc.wait(timeout=400) == 0, (path / "daemon.log").read_text()[-3000:]
    checkpoint = CheckpointStore(path / "ckpt").latest()
    counters = checkpoint.state["counters"]
    accuracy = float(np.asarray(counters["correct"]).sum() / np.asarray(counters["predictions"]).sum())
    return checkpoint, accuracy


def test_fuzzed_stream_loses_nothing_and_learns_as_well(broker, make_topic, tmp_path):
    rng = np.random.default_rng(7)
    x, y = blobs(N_GOOD, features=FEATURES, seed=3)
    clean_topic, dirty_topic = make_topic(1), make_topic(1)
    feed_arrays(x, y, topic=clean_topic, bootstrap_servers=broker.bootstrap, progress=False)

    # the same good records, in the same order, with the bad ones scattered between them
    codec = get_codec("f32")
    bad = bad_records(N_BAD, rng)
    slots = np.sort(rng.choice(N_GOOD + N_BAD, N_BAD, replace=False))
    producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], max_request_size=4 * 1024 * 1024,
                             enable_idempotence=False, linger_ms=5)
    bad_iter, good_iter = iter(bad), iter(range(N_GOOD))
    is_bad = np.zeros(N_GOOD + N_BAD, dtype=bool)
    is_bad[slots] = True
    for flag in is_bad:
        if flag:
            producer.send(dirty_topic, key=b"fuzz", value=next(bad_iter))
        else:
            i = next(good_iter)
            producer.send(dirty_topic, value=codec.encode(x[i], int(y[i]))[0])
    producer.flush()
    producer.close()

    clean, clean_accuracy = run_daemon(tmp_path, broker.bootstrap, clean_topic, "clean")
    # the fuzzed run fetches and decodes in a child process: its dead letters and learning match the thread path's
    dirty, dirty_accuracy = run_daemon(tmp_path, broker.bootstrap, dirty_topic, "dirty", fetcher="process")

    assert dirty.offsets == {(dirty_topic, 0): N_GOOD + N_BAD}
    assert int(dirty.state["counters"]["events"]) == N_GOOD
    for name, tensor in dirty.state["learner"]["model"].items():
        assert torch.isfinite(tensor).all(), name
    print(f"\nprequential accuracy on the good records: clean {clean_accuracy:.4f}, fuzzed {dirty_accuracy:.4f}")
    assert abs(dirty_accuracy - clean_accuracy) <= 0.01

    consumer = KafkaConsumer(dirty_topic + ".dlq", bootstrap_servers=[broker.bootstrap], auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=10_000,
                             max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    letters = list(consumer)
    consumer.close()
    offsets = sorted(int(dict(m.headers)["source_offset"]) for m in letters)
    assert offsets == sorted(np.flatnonzero(is_bad).tolist()), f"{len(offsets)} dead letters for {N_BAD} bad records"
    reasons = Counter(dict(m.headers)["reason"].decode() for m in letters)
    assert set(reasons) <= set(REASONS)
    print("dead letters by reason:", dict(reasons))
