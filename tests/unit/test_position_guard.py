"""The position guard: what it learns, drops and seeks back, record by record and on a fetch process's
coordinates (the two paths must agree), and how a seek tells a jumped client from offsets without records."""

from __future__ import annotations

import numpy as np

from lifelong.config import Settings
from lifelong.daemon.position_guard import PositionGuard
from lifelong.daemon.service import Daemon
from lifelong.stream.prefetch import Prefetched
from lifelong.stream.records import BadRecord, Coordinates, DecodedBatch, RawRecord


class SeekRecorder:
    def __init__(self) -> None:
        self.seeks: list[dict] = []

    def seek(self, offsets: dict) -> None:
        self.seeks.append(dict(offsets))


def fetch(offsets_by_partition: dict[int, list[int]], bad: set[tuple[int, int]] = frozenset()) -> Prefetched:
    records = [RawRecord("t", p, o, None, b"v") for p, offs in offsets_by_partition.items() for o in offs]
    good = [r for r in records if (r.partition, r.offset) not in bad]
    batch = DecodedBatch(x=np.arange(len(good), dtype=np.float32)[:, None], y=np.zeros(len(good), dtype=np.int64),
                         topics=["t"] * len(good), partitions=np.array([r.partition for r in good]),
                         offsets=np.array([r.offset for r in good], dtype=np.int64),
                         bad=[BadRecord(r, "empty_value") for r in records if (r.partition, r.offset) in bad])
    return Prefetched([], batch, coords=Coordinates.of(records))


def daemon(positions: dict) -> Daemon:
    d = Daemon(Settings(metrics={"port": 0}), install_signal_handlers=False)
    d.positions = dict(positions)
    d.consumer = SeekRecorder()
    d.read_log_starts = lambda partitions: dict.fromkeys(partitions, 0)  # no cluster here: nothing deleted
    return d


def reference(positions: dict, fetched: Prefetched, bad: set) -> tuple[list, dict, list]:
    """What the record-by-record guard keeps (the thread path's behaviour)."""
    d = daemon(positions)
    records = [RawRecord(t, p, int(o), None, None) for t, p, offs in fetched.coords.runs for o in offs]
    kept = d._guard(records)
    return [(r.partition, r.offset) for r in kept], d.positions, d.consumer.seeks


def test_same_rows_positions_and_seeks_as_the_record_guard():
    cases = [
        ({}, {0: [0, 1, 2], 1: [5, 6]}, set()),  # nothing known yet: all new
        ({("t", 0): 2}, {0: [0, 1, 2, 3], 1: [0, 1]}, set()),  # re-fetched prefix of partition 0 dropped
        ({("t", 0): 1}, {0: [4, 5, 6]}, set()),  # ahead of the checkpoint: seek back, learn nothing
        ({("t", 0): 3}, {0: [1, 2, 3, 5, 6]}, set()),  # a gap inside one fetch holds no record: learned
        ({("t", 0): 2}, {0: [0, 1, 2, 3]}, {(0, 1), (0, 3)}),  # bad records below the position are dropped too
        ({("t", 0): 9}, {0: [0, 1, 2]}, set()),  # everything already learned
    ]
    for positions, offsets, bad in cases:
        fetched = fetch(offsets, bad)
        want_rows, want_positions, want_seeks = reference(positions, fetched, bad)
        d = daemon(positions)
        batch = d._guard_runs(fetched)
        got = [] if batch is None else sorted(
            [(int(p), int(o)) for p, o in zip(batch.partitions, batch.offsets, strict=True)]
            + [(b.record.partition, b.record.offset) for b in batch.bad])
        assert got == sorted(want_rows), (positions, offsets)
        assert d.positions == want_positions
        assert d.consumer.seeks == want_seeks
        if batch is not None and batch is not fetched.batch:  # filtered: next_offsets follow what is left
            assert batch.next_offsets == {("t", p): max(o for q, o in got if q == p) + 1 for p, _ in got}


def test_partition_rows_split_rows_by_topic_and_partition():
    batch = DecodedBatch(x=np.zeros((5, 1), dtype=np.float32), y=np.zeros(5, dtype=np.int64),
                         topics=["a", "b", "a", "a", "b"], partitions=np.array([0, 0, 1, 0, 0]),
                         offsets=np.arange(5, dtype=np.int64))
    rows = {tp: np.flatnonzero(mask).tolist() for tp, mask in batch.partition_rows().items()}
    assert rows == {("a", 0): [0, 3], ("a", 1): [2], ("b", 0): [1, 4]}


def offsets(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def test_a_fetch_above_the_position_is_sought_back_then_learned_when_a_later_fetch_confirms_the_gap():
    tp = ("t", 0)
    guard = PositionGuard({tp: 10})
    guard.polled()
    assert guard.start(tp, offsets(12, 13)) is None  # above: jumped, or 10 and 11 hold no record?
    assert guard.positions[tp] == 10
    guard.sought({tp: 10})  # the daemon seeks back as asked
    assert guard.start(tp, offsets(12, 13)) is None  # same poll as the seek: fetched before it, proves nothing
    guard.polled()
    assert guard.start(tp, offsets(12, 13)) == 0  # fetched after the seek: the broker has nothing at 10 or 11
    assert guard.positions[tp] == 14 and guard.skipped_offsets == 2
    guard.polled()
    assert guard.start(tp, offsets(16)) is None  # the seek was used up: the next jump is checked again
    guard.sought({tp: 14})
    guard.polled()
    assert guard.start(tp, offsets(17)) is None  # not where the seek was asked from: a stale fetch, seek again
    assert guard.positions[tp] == 14


def test_a_resume_seek_vouches_for_no_gap():
    """A seek the guard did not ask for (the resume on assignment) is followed by records the client fetched
    before it (seen with kafka-python 3): they must be sought back, not taken as a gap."""
    tp = ("t", 0)
    guard = PositionGuard({tp: 1000})
    guard.sought({tp: 1000})
    guard.polled()
    assert guard.start(tp, offsets(1047, 1048)) is None
    guard.sought({tp: 1000})
    guard.polled()
    assert guard.start(tp, offsets(1000, 1001)) == 0 and guard.skipped_offsets == 0


def test_below_the_position_is_dropped_and_a_seek_elsewhere_confirms_nothing():
    tp = ("t", 0)
    guard = PositionGuard({tp: 10})
    guard.polled()
    assert guard.start(tp, offsets(8, 9, 10, 11)) == 2 and guard.positions[tp] == 12
    assert guard.start(tp, offsets(3, 4)) == 2 and guard.positions[tp] == 12  # all learned already
    guard.sought({tp: 5})  # a seek whose target is not the position (the position moved since)
    guard.polled()
    assert guard.start(tp, offsets(14)) is None


def test_forget_drops_the_position_and_the_pending_seek():
    tp = ("t", 0)
    guard = PositionGuard({tp: 10})
    guard.sought({tp: 10})
    guard.forget([tp])
    guard.polled()
    assert guard.start(tp, offsets(40, 41)) == 0  # a partition not held: learned from where the client is
    guard.positions[tp] = 10
    assert guard.start(tp, offsets(50)) is None  # and the old seek no longer vouches for a gap


def test_records_keep_their_order_across_interleaved_partitions():
    guard = PositionGuard({("t", 0): 1, ("t", 1): 5})
    guard.polled()
    records = [RawRecord("t", p, o, None, b"v") for p, o in [(0, 0), (1, 7), (0, 1), (1, 8), (0, 2)]]
    kept, seeks = guard.records(records)
    assert [(r.partition, r.offset) for r in kept] == [(0, 1), (0, 2)]
    assert seeks == {("t", 1): 5}


def test_a_log_that_goes_back_without_a_seek_is_warned_of_once_and_counted(caplog):
    """A broker that lost its data (or a topic re-created and fed again) hands out offsets below the position with
    no seek of ours to explain them: dropped as learned, counted, and said once until the position is passed."""
    tp = ("t", 0)
    skipped: list[tuple[str, int]] = []
    rewound: list[tuple[str, int]] = []
    guard = PositionGuard({tp: 100}, on_skip=lambda reason, n: skipped.append((reason, n)), on_rewind=rewound.append)
    guard.polled()
    with caplog.at_level("WARNING", logger="lifelong.daemon"):
        assert guard.start(tp, offsets(0, 1, 2)) == 3
        assert guard.start(tp, offsets(3, 4)) == 2
    assert len([r for r in caplog.records if "went back" in r.message]) == 1
    assert rewound == [tp]  # the daemon is told once, to check whether the topic was created again
    assert guard.already_learned == 5 and skipped == [("already_learned", 3), ("already_learned", 2)]
    assert guard.start(tp, offsets(99, 100, 101)) == 1 and guard.positions[tp] == 102  # caught up: learning on
    caplog.clear()
    with caplog.at_level("WARNING", logger="lifelong.daemon"):
        assert guard.start(tp, offsets(0)) == 1  # a second time back: said again
    assert len([r for r in caplog.records if "went back" in r.message]) == 1


def test_records_below_the_position_after_our_own_seek_are_no_warning(caplog):
    tp = ("t", 0)
    guard = PositionGuard({tp: 10})
    guard.sought({tp: 10})  # the resume on assignment
    guard.polled()
    with caplog.at_level("WARNING", logger="lifelong.daemon"):
        assert guard.start(tp, offsets(8, 9, 10)) == 2
    assert not [r for r in caplog.records if "went back" in r.message]
    assert guard.already_learned == 2


def test_offsets_without_records_inside_a_run_are_counted():
    tp = ("t", 0)
    skipped: list[tuple[str, int]] = []
    guard = PositionGuard({tp: 5}, on_skip=lambda reason, n: skipped.append((reason, n)))
    guard.polled()
    assert guard.start(tp, offsets(3, 4, 5, 7, 8, 11)) == 2  # 6, 9 and 10 hold no record (commit markers)
    assert guard.skipped_offsets == 3 and skipped == [("already_learned", 2), ("no_record", 3)]


def _confirmed_gap(guard: PositionGuard, tp, expected: int, first: int) -> int | None:
    """Fetch at ``first`` above the position ``expected``: sought back, then fetched at ``first`` again."""
    guard.polled()
    assert guard.start(tp, offsets(first, first + 1)) is None
    guard.sought({tp: expected})
    guard.polled()
    return guard.start(tp, offsets(first, first + 1))


def test_offsets_below_the_log_start_are_counted_as_deleted_and_warned_of(caplog):
    """The position fell out of the log (retention ran while the daemon was down): the records between were lost,
    which is worth an alert, unlike offsets that never held a record."""
    tp = ("t", 0)
    skipped: list[tuple[str, int]] = []
    guard = PositionGuard({tp: 100}, on_skip=lambda reason, n: skipped.append((reason, n)),
                          log_start=lambda _tp: 160)
    with caplog.at_level("WARNING", logger="lifelong.daemon"):
        assert _confirmed_gap(guard, tp, 100, 160) == 0  # the client came back at the log start: learned on
    assert skipped == [("deleted", 60)] and guard.deleted_offsets == 60 and guard.skipped_offsets == 0
    assert guard.positions[tp] == 162
    assert any("100 to 159 were deleted" in r.message and "60 records lost" in r.message for r in caplog.records)


def test_a_client_that_came_back_above_the_log_start_is_sought_to_it():
    """auto_offset_reset: latest, after the position fell out of range, resets the client to the log's end: the
    records between the log start and there still exist and must be learned, not skipped with the deleted."""
    tp = ("t", 0)
    skipped: list[tuple[str, int]] = []
    guard = PositionGuard({tp: 100}, on_skip=lambda reason, n: skipped.append((reason, n)),
                          log_start=lambda _tp: 160)
    guard.polled()
    assert guard.runs([("t", 0, offsets(500, 501))])[1] == {tp: 100}  # above: seek back first
    guard.sought({tp: 100})
    guard.polled()
    accepted, seeks = guard.runs([("t", 0, offsets(500, 501))])  # the client reset to the end again
    assert seeks == {tp: 160} and len(accepted[tp]) == 0  # to the log start, not past what it holds
    assert skipped == [("deleted", 60)] and guard.positions[tp] == 160
    guard.sought(seeks)
    guard.polled()
    assert guard.start(tp, offsets(160, 161)) == 0 and guard.positions[tp] == 162
    assert skipped == [("deleted", 60)]  # nothing more counted


def test_a_gap_above_the_log_start_holds_no_record_and_an_unread_log_start_changes_nothing(caplog):
    tp = ("t", 0)
    skipped: list[tuple[str, int]] = []
    guard = PositionGuard({tp: 100}, on_skip=lambda reason, n: skipped.append((reason, n)), log_start=lambda _tp: 40)
    assert _confirmed_gap(guard, tp, 100, 103) == 0
    assert skipped == [("no_record", 3)]
    unread = PositionGuard({tp: 100}, log_start=lambda _tp: None)  # the cluster did not answer
    with caplog.at_level("INFO", logger="lifelong.daemon"):
        assert _confirmed_gap(unread, tp, 100, 103) == 0
    assert unread.skipped_offsets == 3 and unread.deleted_offsets == 0
    assert any("the log start could not be read" in r.message for r in caplog.records)


def test_the_daemon_reads_the_log_start_from_the_cluster_and_a_failure_is_none():
    d = daemon({})
    asked: list[set] = []
    d.read_log_starts = lambda partitions: asked.append(set(partitions)) or {("t", 0): 7}
    assert d._log_start(("t", 0)) == 7 and asked == [{("t", 0)}]

    def unreachable(_partitions):
        raise ConnectionError("broker down")

    d.read_log_starts = unreachable
    assert d._log_start(("t", 0)) is None
