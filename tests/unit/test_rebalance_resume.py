"""Where the daemon resumes a partition it is assigned: after a loss (eviction), at what its model had learned.

A partition lost (say, the group forgot the member while the broker was away) and then assigned back used to
resume at the newest checkpoint's offset, so the events learned after that checkpoint were learned a second time
(seen in tests/integration/test_broker_outage.py: 10,684 events learned of 10,000). The consumer here is an
in-memory script of rebalance events; the real-broker path is that outage test.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lifelong.config import Settings
from lifelong.daemon.dead_letter_topics import DeadLetterTopics
from lifelong.daemon.service import Daemon
from lifelong.daemon.topic_identity import TopicIdentity
from lifelong.stream.consumer import RebalanceEvent
from lifelong.stream.records import DecodedBatch, RawRecord

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

    def assignment(self) -> set:
        return {TP}


def _daemon(tmp_path: Path, *events: RebalanceEvent, topic_ids: dict[str, str] | None = None) -> Daemon:
    daemon = Daemon(Settings(checkpoint={"dir": str(tmp_path)}), install_signal_handlers=False)
    daemon.consumer = ScriptedConsumer(*events)
    daemon.read_topic_ids = lambda topics: {t: i for t, i in (topic_ids or {}).items() if t in topics}
    daemon.dead_letter_topics = DeadLetterTopics(daemon.settings.kafka, create_missing=lambda *_, **__: (set(), set()))
    daemon.read_log_starts = lambda partitions: dict.fromkeys(partitions, 0)
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


def test_a_topic_with_another_id_than_the_checkpoints_resumes_at_its_start(tmp_path: Path, caplog) -> None:
    """The checkpoint's offsets were learned in the log of topic ID A; the cluster's topic now has ID B (deleted and
    created again): its partitions start at 0, the other topic's at the checkpoint."""
    other = ("clicks", 0)
    daemon = _daemon(tmp_path, RebalanceEvent("assigned", frozenset({TP, other})),
                     topic_ids={"events": "B", "clicks": "C"})
    daemon._checkpoint_offsets.update({TP: 8_867, other: 120})
    daemon.topic_ids = TopicIdentity({"events": "A", "clicks": "C"})
    with caplog.at_level("WARNING", logger="lifelong.daemon"):
        daemon._handle_rebalance()
    assert daemon.consumer.sought == [{TP: 0, other: 120}]
    assert daemon._checkpoint_offsets == {other: 120}  # the old log's offsets are not resumed from again
    assert daemon.topic_ids.state_dict() == {"events": "B", "clicks": "C"}  # what the next checkpoint keeps
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "events was deleted and created again" in said[0] and "8867" in said[0]


def test_the_same_topic_id_or_none_known_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    for known in ({"events": "A"}, {}):  # the same log; a checkpoint written before topic IDs were kept
        daemon = _daemon(tmp_path, RebalanceEvent("assigned", frozenset({TP})), topic_ids={"events": "A"})
        daemon._checkpoint_offsets[TP] = 8_867
        daemon.topic_ids = TopicIdentity(known)
        daemon._handle_rebalance()
        assert daemon.consumer.sought == [{TP: 8_867}]
        assert daemon.topic_ids.state_dict() == {"events": "A"}


def test_topic_ids_that_cannot_be_read_leave_the_offsets_as_they_are(tmp_path: Path) -> None:
    daemon = _daemon(tmp_path, RebalanceEvent("assigned", frozenset({TP})))
    daemon._checkpoint_offsets[TP] = 8_867
    daemon.topic_ids = TopicIdentity({"events": "A"})

    def unreachable(topics: set[str]) -> dict[str, str]:
        raise ConnectionError("no broker")

    daemon.read_topic_ids = unreachable
    daemon._handle_rebalance()
    assert daemon.consumer.sought == [{TP: 8_867}] and daemon.topic_ids.state_dict() == {"events": "A"}


def _fetched(*offsets: int) -> list[RawRecord]:
    return [RawRecord(TP[0], TP[1], offset, None, b"") for offset in offsets]


def _after_an_outage(tmp_path: Path, cluster_ids: dict[str, str]) -> Daemon:
    """Held at 6,000 in the log of topic ID A, verified; then the broker went away."""
    daemon = _daemon(tmp_path, topic_ids=cluster_ids)
    daemon.guard.positions[TP] = 6_000
    daemon.topic_ids = TopicIdentity({"events": "A"}, hold_s=30)
    daemon.topic_ids.read({"events"}, {"events": "A"}, time.monotonic())
    daemon.topic_ids.suspect(time.monotonic())
    return daemon


def test_after_an_outage_a_fetch_from_a_new_log_is_not_learned_and_the_log_starts_over(tmp_path: Path) -> None:
    daemon = _after_an_outage(tmp_path, {"events": "B"})  # the cluster came back empty and was fed again
    assert daemon._wait_for_topic_ids(_fetched(6_000, 6_001))
    assert daemon.positions[TP] == 0 and daemon.consumer.sought[-1] == {TP: 0}
    assert not daemon._wait_for_topic_ids(_fetched(0, 1))  # read: the fetches from the start are learned


def test_after_an_outage_the_same_log_is_learned_on_at_once(tmp_path: Path) -> None:
    daemon = _after_an_outage(tmp_path, {"events": "A"})
    assert not daemon._wait_for_topic_ids(_fetched(6_000, 6_001))
    assert daemon.positions[TP] == 6_000 and daemon.consumer.sought == []


def test_after_an_outage_ids_that_cannot_be_read_hold_fetches_back_for_hold_s_only(tmp_path: Path) -> None:
    daemon = _after_an_outage(tmp_path, {})  # the topic not there (yet)
    assert daemon._wait_for_topic_ids(_fetched(6_000, 6_001))
    assert daemon.consumer.sought == [{TP: 6_000}]  # fetched again from where it stands
    daemon.topic_ids.hold_s = 0  # the wait is over: learn on unchecked rather than stall
    assert not daemon._wait_for_topic_ids(_fetched(6_000, 6_001))


def test_a_reading_while_no_partition_is_held_verifies_nothing(tmp_path: Path) -> None:
    """After an outage a group member may hold nothing until it has joined again. A topic-ID reading then (of no
    topic) used to mark the IDs verified, so when the reading at the assignment failed, the fetch at the old log's
    position was learned from the new log (seen once in tests/integration/test_broker_outage.py)."""
    daemon = _after_an_outage(tmp_path, {"events": "B"})
    daemon.consumer.assignment = lambda: set()  # rejoining the group
    daemon._forget({TP})
    daemon._positions_when_lost[TP] = 6_000
    assert not daemon._watch_topic_ids(now=True)
    assert not daemon.topic_ids.verified

    def unreadable(topics: set[str]) -> dict[str, str | None]:
        raise TimeoutError("the admin request timed out")

    daemon.read_topic_ids = unreadable
    daemon.consumer.events = [RebalanceEvent("assigned", frozenset({TP}))]
    daemon.consumer.assignment = lambda: {TP}
    daemon._handle_rebalance()  # resumes at 6,000 for now: the reading failed
    assert daemon.positions[TP] == 6_000
    assert daemon._wait_for_topic_ids(_fetched(6_000, 6_001))  # held until the IDs are read
    daemon.read_topic_ids = lambda topics: {"events": "B"}
    daemon.topic_ids._next = 0.0  # the retry is due
    assert daemon._wait_for_topic_ids(_fetched(6_000, 6_001))
    assert daemon.positions[TP] == 0 and daemon.consumer.sought[-1] == {TP: 0}
