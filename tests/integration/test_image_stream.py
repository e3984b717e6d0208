"""The image codec on the real broker: PNG records fed with ``lifelong feed``'s encoder, learned by the daemon,
and the bad ones (too large, a decompression bomb's header, not an image, truncated, no label) dead-lettered
with their reasons, by the thread fetcher and by a fetch process (which decodes in the child)."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import Running, blobs, daemon_settings
from kafka import KafkaConsumer, KafkaProducer

from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import get_codec
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, SIDE = 800, 8


def bad_images() -> list[tuple[bytes, list[tuple[str, bytes]], str]]:
    """(value, headers, the reason the daemon must give)."""
    codec = get_codec("image")
    label = [("label", b"1")]
    large, _ = codec.encode(np.zeros((1, 2 * SIDE, 2 * SIDE), np.float32), 1)
    good, _ = codec.encode(np.zeros((1, SIDE, SIDE), np.float32), 1)
    bomb = bytearray(good)
    bomb[16:24] = struct.pack(">II", 200_000, 200_000)
    return [
        (large, label, "wrong_feature_count"),  # more pixels than the model's 64 features
        (bytes(bomb), label, "wrong_feature_count"),  # refused from its header, never inflated
        (b"GIF89a" + bytes(40), label, "invalid_image"),
        (good[: len(good) // 2], label, "invalid_image"),  # truncated
        (good, [], "missing_label"),
    ]


@pytest.mark.parametrize("fetcher", ["thread", "process"])
def test_image_records_are_learned_and_bad_ones_dead_lettered(
    fetcher: str, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic = make_topic(1)
    x, y = blobs(N, SIDE * SIDE, seed=4)
    x = np.clip(0.5 + x / 6, 0, 1).reshape(N, 1, SIDE, SIDE)  # pixels in [0, 1]
    feed_arrays(x[: N // 2], y[: N // 2], topic=topic, bootstrap_servers=shared_broker.bootstrap, codec="image",
                progress=False)
    bad = bad_images()
    producer = KafkaProducer(bootstrap_servers=[shared_broker.bootstrap], enable_idempotence=False)
    for value, headers, _ in bad:
        producer.send(topic, value=value, headers=headers, partition=0)
    producer.flush()
    producer.close()
    feed_arrays(x[N // 2:], y[N // 2:], topic=topic, bootstrap_servers=shared_broker.bootstrap, codec="image",
                progress=False)

    config = daemon_settings(
        shared_broker.bootstrap, topic, tmp_path / "ckpt", SIDE * SIDE, codec={"name": "image"},
        model={"input_shape": [1, SIDE, SIDE], "hidden": [32]}, optim={"name": "adam", "lr": 0.01, "batch_size": 32},
        daemon={"fetcher": fetcher, "micro_batch": 32, "max_events": N,
                "idle_exit_s": 20},  # a fetch process imports torchvision at its first image: seconds
    )
    daemon = Daemon(config, install_signal_handlers=False)
    with Running(daemon, timeout=120) as run:
        assert run.wait()
    assert daemon.stats.events == N and daemon.stats.dead_letters == len(bad)
    registry = daemon.metrics.registry
    correct = sum(registry.get_sample_value("lifelong_predictions_correct_total", {"class": str(c)}) for c in range(10))
    assert correct / N > 0.3  # the images were decoded into something learnable (chance: 0.1)

    consumer = KafkaConsumer(topic + ".dlq", bootstrap_servers=[shared_broker.bootstrap], auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5_000)
    letters = list(consumer)
    consumer.close()
    reasons = Counter(dict(m.headers)["reason"].decode() for m in letters)
    assert reasons == Counter(reason for _, _, reason in bad)
    assert sorted(int(dict(m.headers)["source_offset"]) for m in letters) == list(range(N // 2, N // 2 + len(bad)))
