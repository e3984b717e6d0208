"""A log that goes back, on the real broker: the client starts handing out offsets the daemon learned already, with
no seek of the daemon's to explain them (as a Kafka client does after OFFSET_OUT_OF_RANGE on a re-created topic).

Tansu never answers OFFSET_OUT_OF_RANGE (a fetch beyond a partition's end returns no records), so the test makes
the client go back itself: it seeks the consumer to offset 0 behind the daemon's back, from the batch callback.
The daemon must learn every record once and in order, count what it dropped and say once that the log went back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import blobs

from lifelong.config import Settings
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, REWIND_AT, FEATURES = 1_500, 600, 16


@pytest.mark.parametrize(("fetcher", "prefetch"), [("thread", 0), ("process", 2)])
def test_records_below_the_position_are_dropped_counted_and_said_once(
    fetcher: str, prefetch: int, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic(1)
    x, y = blobs(N, FEATURES)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, progress=False)
    config = Settings(
        kafka={"bootstrap_servers": [shared_broker.bootstrap], "topics": [topic], "group_id": f"g-{topic}",
               "assign": True, "poll_timeout_ms": 500, "max_poll_records": 100},
        codec={"name": "f32", "num_features": FEATURES},
        model={"name": "mlp", "input_shape": [FEATURES], "hidden": [16], "max_classes": 10},
        metrics={"port": 0},
        checkpoint={"dir": str(tmp_path / "ckpt"), "every_events": 500},
        daemon={"device": "cpu", "prefetch": prefetch, "fetcher": fetcher, "max_events": N, "idle_exit_s": 3},
    )
    seen: list[int] = []
    rewound: list[int] = []

    def on_batch(daemon: Daemon, batch) -> None:
        seen.extend(batch.offsets.tolist())
        if len(seen) >= REWIND_AT and not rewound:
            rewound.append(daemon.positions[(topic, 0)])
            daemon.consumer.seek({(topic, 0): 0})  # the client goes back; the guard is not told

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    runner = threading.Thread(target=daemon.run, daemon=True)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"):
        runner.start()
        runner.join(90)
    assert not runner.is_alive(), f"still running with {len(seen)} of {N} records learned"
    assert seen == list(range(N))  # every record once, in order, across the rewind
    dropped = daemon.metrics.registry.get_sample_value("lifelong_offsets_skipped_total",
                                                       {"reason": "already_learned"})
    assert rewound and dropped >= REWIND_AT  # everything below the position at the rewind, fetched again
    said = [r.getMessage() for r in caplog.records if "the log went back" in r.getMessage()]
    assert len(said) == 1, said
