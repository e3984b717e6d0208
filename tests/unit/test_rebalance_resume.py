"""Where the daemon resumes a partition it is assigned: after a loss (eviction), at what its model had learned.

A partition lost (say, the group forgot the member while the broker was away) and then assigned back used to
resume at the newest checkpoint's offset, so the events learned after that checkpoint were learned a second time
(seen in tests/integration/test_broker_outage.py: 10,684 events learned of 10,000). The consumer here is an
in-memory script of rebalance events; the real-broker path is that outage test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lifelong.config import Settings
from lifelong.daemon.service import Daemon
from lifelong.stream.consumer import RebalanceEvent
from lifelong.stream.records import DecodedBatch

TP = ("events", 0)


class ScriptedConsumer:
    """Hands out the given rebalance events once and records every seek."""

    def __init__(self, *events: RebalanceEvent) -> None:
        self.events = list(events)
        self.sought: list[dict] = []

    def drain_events(self) -> list[RebalanceEvent]:
        events, self.events = self.events, []
        return events

    def seek(self, offsets: dict) -> None:
        self.sought.append(dict(offsets))


def _daemon(tmp_path: Path, *events: RebalanceEvent) -> Daemon:
    daemon = Daemon(Settings(checkpoint={"dir": str(tmp_path)}), install_signal_handlers=False)
    daemon.consumer = ScriptedConsumer(*events)
    return daemon


def _lost_then_assigned() -> tuple[RebalanceEvent, RebalanceEvent]:
    return RebalanceEvent("lost", frozenset({TP})), RebalanceEvent("assigned", frozenset({TP}))


def test_a_partition_lost_and_assigned_back_resumes_where_the_model_stood(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, *_lost_then_assigned())
    daemon._checkpoint_offsets[TP] = 8_867  # the newest checkpoint
    daemon.guard.positions[TP] = 9_551  # learned since, not yet checkpointed
    daemon._handle_rebalance()
    assert daemon.consumer.sought == [{TP: 9_551}]
    assert daemon.positions[TP] == 9_551


def test_rows_fetched_but_not_learned_when_the_partition_was_lost_are_fetched_again(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, *_lost_then_assigned())
    daemon._checkpoint_offsets[TP] = 8_867
    daemon.guard.positions[TP] = 9_551
    daemon.pending.append(DecodedBatch(x=np.zeros((51, 2), np.float32), y=np.zeros(51, np.int64),
                                       topics=[TP[0]] * 51, partitions=np.zeros(51, np.int32),
                                       offsets=np.arange(9_500, 9_551)))
    daemon._handle_rebalance()
    assert daemon.consumer.sought == [{TP: 9_500}]  # the pending rows were dropped with the partition
    assert len(daemon.pending) == 0


def test_a_partition_never_held_resumes_at_the_checkpoint_or_the_clients_own_position(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, RebalanceEvent("assigned", frozenset({TP, ("events", 1)})))
    daemon._checkpoint_offsets[TP] = 8_867
    daemon._handle_rebalance()
    assert daemon.consumer.sought == [{TP: 8_867}]  # partition 1: no offset of ours, the group's applies
    assert daemon.positions == {TP: 8_867}
