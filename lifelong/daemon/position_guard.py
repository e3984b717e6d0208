"""Which fetched records the learner takes next: the daemon's own position per partition, kept exact.

The daemon does not trust the client's position. It keeps its own (``positions``, the next offset to learn per
partition) and checks every fetch against it, one partition's run of offsets at a time:

* offsets below the position were learned already (before a restart or a rebalance): dropped. Such a run with no
  seek of ours to explain it means the log itself went back (a topic re-created, a broker that lost its data, the
  stream fed again from its start): the guard warns once, tells ``on_rewind``, and goes on dropping up to the
  position, for it cannot tell a copy of what it learned from new records at the same offsets (the daemon
  can: a re-created topic has another topic ID, lifelong.daemon.topic_identity);
* a run that starts above the position means either the client jumped (a fetch that raced a rebalance or a
  seek) or the offsets between hold no record. The guard cannot tell the two apart from one fetch, so it asks
  for a seek back to the position. When the first fetch after that seek starts at the very offset that caused
  it, the broker has said twice that there is nothing in between, and the run is learned: a transactional
  producer's commit markers take an offset each, compaction removes records, and retention can delete a
  checkpoint's offset. Any other seek (a resume on assignment) vouches for nothing: kafka-python 3 was seen
  to return, right after a seek to a checkpoint's offset, records it had fetched before it, 47 offsets on;
* before such a gap is taken as empty, the partition's log start is asked for (``log_start``, the cluster's
  earliest offset): offsets below it were deleted (retention, a delete-records request) before they were
  learned. Those are counted apart, ``deleted``, and warned of, for records were lost; and where the client
  came back above the log start (``auto_offset_reset: latest`` after the position fell out of range), the
  partition is sought to the log start, so the records still there are learned, not skipped with the rest;
* gaps inside one run are offsets without records too: a fetch returns a partition's records in log order.

"After the seek" is counted in polls: a seek issued while the records of poll k are handled applies from poll
k + 1 on.

The guard knows nothing of the client: it returns the seeks to issue, and the daemon reports them back through
:meth:`PositionGuard.sought`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from lifelong.stream.records import Coordinates, RawRecord, TopicPartition

__all__ = ["SKIP_REASONS", "PositionGuard"]

log = logging.getLogger("lifelong.daemon")

NEVER = 1 << 62  # above every offset: a partition none of whose records are learned

#: Why offsets are not learned: fetched again below the position, found to hold no record, or deleted from the
#: log before they were learned (lost).
SKIP_REASONS = ("already_learned", "no_record", "deleted")


class PositionGuard:
    """Per-partition positions, and the seeks that check a run that starts above one."""

    def __init__(self, positions: Mapping[TopicPartition, int] | None = None,
                 on_skip: Callable[[str, int], None] | None = None,
                 on_rewind: Callable[[TopicPartition], None] | None = None,
                 log_start: Callable[[TopicPartition], int | None] | None = None) -> None:
        self.positions: dict[TopicPartition, int] = dict(positions or {})
        self.skipped_offsets = 0  # offsets found to hold no record, since start
        self.deleted_offsets = 0  # offsets deleted from the log before they were learned, since start
        self._log_start = log_start  # the partition's earliest offset now (None: not known)
        self.already_learned = 0  # records fetched again below the position and dropped, since start
        self._on_skip = on_skip  # (reason in SKIP_REASONS, how many offsets): a metric, say
        self._on_rewind = on_rewind  # a partition whose log went back: check whether its topic was re-created
        self._rewound: set[TopicPartition] = set()  # partitions warned of as gone back, until they pass the position
        self._polls = 0
        self._asked: dict[TopicPartition, int] = {}  # seeks back asked for: the first offset that caused each
        # partition -> (offset sought, poll count at the seek, first offset of the run that made the guard seek)
        self._sought: dict[TopicPartition, tuple[int, int, int | None]] = {}

    # ---- what the daemon tells the guard -------------------------------------------------------------------
    def polled(self) -> None:
        """A poll of the consumer begins: seeks issued before it apply to what it returns."""
        self._polls += 1

    def sought(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The consumer was told to fetch these partitions from these offsets next (a seek back that
        :meth:`start` asked for keeps what it needs to confirm a gap)."""
        for tp, offset in offsets.items():
            asked = self._asked.pop(tp, None)
            self._sought[tp] = (int(offset), self._polls, asked if asked is not None and asked > offset else None)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked or lost: their positions and pending seeks no longer hold."""
        for tp in partitions:
            self.positions.pop(tp, None)
            self._sought.pop(tp, None)
            self._asked.pop(tp, None)
            self._rewound.discard(tp)

    # ---- what the guard decides ----------------------------------------------------------------------------
    def start(self, tp: TopicPartition, offsets: np.ndarray) -> int | None:
        """Index of the first offset to learn in ``offsets`` (one partition's run from one fetch, ascending);
        ``len(offsets)`` when all were learned already; None when the partition must be sought back to its
        position first. Moves the position past the run it accepts."""
        first, expected = int(offsets[0]), self.positions.get(tp)
        seek = self._sought.get(tp)
        after_seek = seek is not None and seek[1] < self._polls
        if after_seek:
            del self._sought[tp]
        if expected is None or first == expected:
            start = 0
        elif first < expected:
            start = int(np.searchsorted(offsets, expected))
            self._skipped("already_learned", start)
            if seek is None and tp not in self._rewound:
                self._rewound.add(tp)
                log.warning("%s[%d]: records from offset %d again, below the position %d learned up to, and no seek "
                            "of ours explains it: the log went back (topic re-created, broker data lost, stream fed "
                            "again?). Offsets below %d are taken as learned and dropped, unless the topic's ID says "
                            "it was created again: a copy of the stream cannot be told from new records at the same "
                            "offsets", tp[0], tp[1], first, expected, expected)
                if self._on_rewind is not None:
                    self._on_rewind(tp)
        elif after_seek and seek[0] == expected and seek[2] == first:
            log_start = self._log_start(tp) if self._log_start is not None else None
            if log_start is not None and log_start > expected:
                log_start = min(log_start, first)
                log.warning("%s[%d]: offsets %d to %d were deleted from the log (retention, or a delete-records "
                            "request) before they were learned: %d records lost; learning on from %d", tp[0], tp[1],
                            expected, log_start - 1, log_start - expected, log_start)
                self._skipped("deleted", log_start - expected)
                self.positions[tp] = expected = log_start
                if first > log_start:  # the client came back above what the log still holds: fetch that too
                    self._asked[tp] = first
                    return None
            if first > expected:
                why = "transaction markers, compaction" + ("" if log_start is not None else
                                                           " or retention; the log start could not be read")
                log.info("%s[%d]: offsets %d to %d hold no record (%s): learning on from %d", tp[0], tp[1],
                         expected, first - 1, why, first)
                self._skipped("no_record", first - expected)
            start = 0
        else:
            self._asked[tp] = first
            return None
        if start < len(offsets):
            last = int(offsets[-1])
            inside = last - int(offsets[start]) + 1 - (len(offsets) - start)  # offsets without records in the run
            self._skipped("no_record", inside)
            self.positions[tp] = last + 1
            self._rewound.discard(tp)
        return start

    def _skipped(self, reason: str, count: int) -> None:
        """Count ``count`` offsets not learned for ``reason`` (one of SKIP_REASONS), here and in ``on_skip``."""
        if not count:
            return
        if reason == "already_learned":
            self.already_learned += count
        elif reason == "deleted":
            self.deleted_offsets += count
        else:
            self.skipped_offsets += count
        if self._on_skip is not None:
            self._on_skip(reason, count)

    def records(self, records: list[RawRecord]) -> tuple[list[RawRecord], dict[TopicPartition, int]]:
        """The records to learn, in their order, and the seeks to issue (partition -> position)."""
        accepted, seeks = self.runs(Coordinates.of(records).runs)
        # what a run keeps is a suffix, and a partition's offsets ascend: keep each record from its run's first
        first = {tp: int(offsets[0]) if len(offsets) else NEVER for tp, offsets in accepted.items()}
        kept = [r for r in records if r.offset >= first[(r.topic, r.partition)]]
        return (records if len(kept) == len(records) else kept), seeks

    def runs(self, runs: Iterable[tuple[str, int, np.ndarray]]
             ) -> tuple[dict[TopicPartition, np.ndarray], dict[TopicPartition, int]]:
        """:meth:`records` on a fetch's coordinates: the offsets to learn per partition, and the seeks."""
        accepted: dict[TopicPartition, np.ndarray] = {}
        seeks: dict[TopicPartition, int] = {}
        for topic, partition, offsets in runs:
            tp = (topic, partition)
            start = self.start(tp, offsets)
            if start is None:
                seeks[tp], accepted[tp] = self.positions[tp], offsets[:0]
            else:
                accepted[tp] = offsets[start:]
        return accepted, seeks
