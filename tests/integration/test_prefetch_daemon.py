"""The daemon with fetch threads (daemon.prefetch, daemon.fetch_workers) against the real broker: stopped
midway and resumed from its checkpoint and committed offsets, every record is learned exactly once, in order
per partition, with kafka-python (one or two fetch threads) and confluent-kafka, and with the fetch threads in a
child process (daemon.fetcher: process)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import blobs

from lifelong.config import Settings
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.consumer import open_consumer
from lifelong.stream.feed import feed_arrays
from lifelong.stream.fetch_process import ProcessPrefetchingConsumer
from lifelong.stream.prefetch import PrefetchingConsumer

pytestmark = pytest.mark.integration

N = 6_000
PARTITIONS = 3
FEATURES = 16


def settings(bootstrap: str, topic: str, ckpt: Path, client: str, workers: int, max_events: int,
             fetcher: str = "thread") -> Settings:
    return Settings(
        kafka={"bootstrap_servers": [bootstrap], "topics": [topic], "group_id": f"g-{topic}", "assign": True,
               "client": client, "poll_timeout_ms": 1000, "max_poll_records": 500},
        codec={"name": "f32", "num_features": FEATURES},
        model={"name": "mlp", "input_shape": [FEATURES], "hidden": [32], "max_classes": 10},
        optim={"name": "adam", "lr": 0.002},  # optimizer state (step counters) across the restart
        metrics={"port": 0},
        checkpoint={"dir": str(ckpt), "every_events": 2_000},
        daemon={"device": "cpu", "prefetch": 2, "fetch_workers": workers, "fetcher": fetcher, "max_events": max_events,
                "idle_exit_s": 3, "log_level": "WARNING"},
    )


def learn(config: Settings, seen: list[tuple[int, int]]) -> Daemon:
    def on_batch(_daemon: Daemon, batch) -> None:
        seen.extend(zip(batch.partitions.tolist(), batch.offsets.tolist(), strict=True))

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    daemon.run()
    return daemon


@pytest.mark.parametrize(("client", "workers", "fetcher"), [
    ("kafka-python", 1, "thread"), ("kafka-python", 2, "thread"), ("confluent", 1, "thread"),
    ("confluent", 2, "thread"), ("kafka-python", 1, "process"), ("kafka-python", 2, "process")])
def test_stop_and_resume_learns_every_record_once(
    client: str, workers: int, fetcher: str, shared_broker: EmbeddedBroker, make_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = make_topic(PARTITIONS)
    x, y = blobs(N, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, keys="index", progress=False)

    seen: list[tuple[int, int]] = []
    first = learn(settings(shared_broker.bootstrap, topic, tmp_path, client, workers, 2_500, fetcher), seen)
    if fetcher == "thread":
        assert isinstance(first.consumer, PrefetchingConsumer) and len(first.consumer.workers) == workers
    else:
        assert isinstance(first.consumer, ProcessPrefetchingConsumer)
    assert 2_500 <= len(seen) < N
    learned = {p: max(o for q, o in seen if q == p) + 1 for p in {p for p, _ in seen}}
    assert {(topic, p): o for p, o in learned.items()} == {
        tp: o for tp, o in first.stats.positions.items() if tp[1] in learned}

    probe = open_consumer(settings(shared_broker.bootstrap, topic, tmp_path, client, 1, 1).kafka)
    try:
        committed = probe.committed([(topic, p) for p in range(PARTITIONS)])
    finally:
        probe.close()
    assert {p: committed[(topic, p)] for p in learned} == learned  # committed = what was learned, no more

    # max_events counts on from the checkpoint
    second = learn(settings(shared_broker.bootstrap, topic, tmp_path, client, workers, N, fetcher), seen)
    assert second.stats.resumed_from is not None
    assert len(seen) == N and len(set(seen)) == N  # none missing, none twice
    for p in range(PARTITIONS):  # in order per partition, across the restart
        offsets = [o for q, o in seen if q == p]
        assert offsets == list(range(len(offsets)))


def test_learner_flags_threads_and_bf16_autocast(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    import gc

    import torch

    topic = make_topic(1)
    x, y = blobs(600, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    config = settings(shared_broker.bootstrap, topic, tmp_path, "kafka-python", 1, 600)
    config.kafka.max_poll_records = 100
    config.daemon.torch_threads = 1
    config.daemon.autocast = "bf16"
    dtypes: list[torch.dtype] = []
    frozen: list[int] = []

    def on_batch(daemon: Daemon, _batch) -> None:
        frozen.append(gc.get_freeze_count())
        if not dtypes:  # from the second batch on, see what the head computes in
            daemon.learner.model.head.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
            dtypes.append(torch.float32)

    before = torch.get_num_threads()
    try:
        daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
        stats = daemon.run()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert stats.events == 600
    assert all(group["fused"] for group in daemon.learner.optimizer.param_groups)  # optim.fused: auto
    assert torch.bfloat16 in dtypes[1:] and daemon.learner.model.head.weight.dtype == torch.float32
    assert min(frozen) > 100_000 and gc.get_freeze_count() == 0  # daemon.gc_freeze: torch's heap, given back


def test_fetch_process_delivers_decoded_rows_and_a_dead_child_is_raised(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    import functools
    import time

    from lifelong.stream.codecs import decode_records

    topic = make_topic(2)
    x, y = blobs(2_000, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, keys="index", progress=False)
    cfg = settings(shared_broker.bootstrap, topic, tmp_path, "kafka-python", 2, 1).kafka
    decode = functools.partial(decode_records, codec="f32", num_features=FEATURES, max_classes=10)
    consumer = ProcessPrefetchingConsumer(cfg, workers=2, decode=decode)
    try:
        rows: dict[int, list[int]] = {}
        deadline = time.monotonic() + 60
        while sum(map(len, rows.values())) < 2_000 and time.monotonic() < deadline:
            fetched = consumer.poll(1000)
            if fetched.batch is not None:
                for p, o in zip(fetched.batch.partitions.tolist(), fetched.batch.offsets.tolist(), strict=True):
                    rows.setdefault(p, []).append(o)
        assert consumer.assignment() == {(topic, 0), (topic, 1)}  # the two children split the partitions
        assert {p: offs == list(range(len(offs))) for p, offs in rows.items()} == {0: True, 1: True}
        assert sum(map(len, rows.values())) == 2_000
        assert consumer.commit({(topic, 0): len(rows[0]), (topic, 1): 5}, timeout_ms=5000) == {
            (topic, 0): len(rows[0]), (topic, 1): 5}
        consumer.children[1].process.kill()
        with pytest.raises(RuntimeError, match="fetch process 1 stopped"):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                consumer.poll(200)
    finally:
        consumer.close()


def test_daemon_rebuilds_a_killed_fetch_process_and_learns_every_record_once(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic = make_topic(PARTITIONS)
    x, y = blobs(N, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, keys="index", progress=False)
    config = settings(shared_broker.bootstrap, topic, tmp_path, "kafka-python", 1, N, "process")
    config.kafka.max_poll_records = 200
    seen: list[tuple[int, int]] = []
    killed: list[int] = []

    def on_batch(daemon: Daemon, batch) -> None:
        seen.extend(zip(batch.partitions.tolist(), batch.offsets.tolist(), strict=True))
        if not killed and len(seen) >= 1_000:
            child = daemon.consumer.children[0].process
            killed.append(child.pid)
            child.kill()

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    stats = daemon.run()
    assert killed and daemon.consumer.children[0].process.pid != killed[0]  # a new child took over
    assert daemon.metrics.value("lifelong_fetcher_restarts_total") == 1
    assert stats.events == N and len(seen) == N and len(set(seen)) == N  # none missing, none twice
    for p in range(PARTITIONS):
        offsets = [o for q, o in seen if q == p]
        assert offsets == list(range(len(offsets)))


@pytest.mark.parametrize("shared_memory", [True, False])
def test_fetch_process_rows_match_the_stream_and_a_seek_while_it_waits_for_a_block_is_exact(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, shared_memory: bool,
) -> None:
    """The rows through shared memory (or the pipe) are the rows fed; a child that waits for a block with a
    batch in hand runs a seek only after sending that batch, so the parent's purge leaves no stale row."""
    import functools
    import time

    import numpy as np

    from lifelong.stream.codecs import decode_records

    topic = make_topic(1)
    x, y = blobs(3_000, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, keys="index", progress=False)
    cfg = settings(shared_broker.bootstrap, topic, tmp_path, "kafka-python", 1, 1).kafka
    cfg.max_poll_records = 100
    decode = functools.partial(decode_records, codec="f32", num_features=FEATURES, max_classes=10)
    consumer = ProcessPrefetchingConsumer(cfg, decode=decode, shared_memory=shared_memory)
    try:
        deadline = time.monotonic() + 30
        first = consumer.poll(1000)
        while first.batch is None and time.monotonic() < deadline:  # the assignment comes first
            first = consumer.poll(1000)
        assert first.batch is not None and len(first.batch) > 0
        time.sleep(2.0)  # not reading: the child lends every block and waits with its next batch
        consumer.seek({(topic, 0): 2_500})
        offsets: list[int] = []
        deadline = time.monotonic() + 60
        while len(offsets) < 500 and time.monotonic() < deadline:
            fetched = consumer.poll(1000)
            if fetched.batch is None:
                continue
            got = fetched.batch.offsets
            np.testing.assert_array_equal(fetched.batch.x, x[got])  # each row is the record at its offset
            np.testing.assert_array_equal(fetched.batch.y, y[got])
            offsets.extend(got.tolist())
        assert offsets == list(range(2_500, 3_000))  # nothing from before the seek, nothing missing
        np.testing.assert_array_equal(first.batch.x, x[first.batch.offsets])
    finally:
        consumer.close()
