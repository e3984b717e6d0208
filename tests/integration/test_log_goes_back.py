"""A log that goes back, on the real broker: the client starts handing out offsets the daemon learned already, with
no seek of the daemon's to explain them (as a Kafka client does after OFFSET_OUT_OF_RANGE on a re-created topic).

Tansu never answers OFFSET_OUT_OF_RANGE (a fetch beyond a partition's end returns no records), so the test makes
the client go back itself: it seeks the consumer to offset 0 behind the daemon's back, from the batch callback.
The daemon must learn every record once and in order, count what it dropped and say once that the log went back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, daemon_settings, fed_topic

from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

N, REWIND_AT, FEATURES = 1_500, 600, 16


@pytest.mark.parametrize(("fetcher", "prefetch"), [("thread", 0), ("process", 2)])
def test_records_below_the_position_are_dropped_counted_and_said_once(
    fetcher: str, prefetch: int, shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, x, y = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             kafka={"max_poll_records": 100}, checkpoint={"every_events": 500},
                             daemon={"prefetch": prefetch, "fetcher": fetcher, "max_events": N})
    seen: list[int] = []
    rewound: list[int] = []

    def on_batch(daemon: Daemon, batch) -> None:
        seen.extend(batch.offsets.tolist())
        if len(seen) >= REWIND_AT and not rewound:
            rewound.append(daemon.positions[(topic, 0)])
            daemon.consumer.seek({(topic, 0): 0})  # the client goes back; the guard is not told

    daemon = Daemon(config, install_signal_handlers=False, on_batch=on_batch)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon, timeout=90) as run:
        assert run.wait(), f"still running with {len(seen)} of {N} records learned"
    assert seen == list(range(N))  # every record once, in order, across the rewind
    dropped = daemon.metrics.registry.get_sample_value("lifelong_offsets_skipped_total",
                                                       {"reason": "already_learned"})
    assert rewound and dropped >= REWIND_AT  # everything below the position at the rewind, fetched again
    said = [r.getMessage() for r in caplog.records if "the log went back" in r.getMessage()]
    assert len(said) == 1, said
