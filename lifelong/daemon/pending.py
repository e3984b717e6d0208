"""Decoded records waiting to be learned, so micro-batches can have a fixed size whatever each poll returned.

Fixed-size micro-batches make training independent of how Kafka happened to split the stream into fetches: the
same records in the same order give the same weights, which is what lets a restarted daemon reproduce an
uninterrupted one. The buffer also tells which offset each partition may commit: the first record still pending.
"""

from __future__ import annotations

import numpy as np

from lifelong.stream.records import DecodedBatch, TopicPartition


class PendingRecords:
    """A FIFO of decoded rows with their partition and offset."""

    def __init__(self) -> None:
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._tp: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        self._partitions: list[TopicPartition] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _tp_index(self, tp: TopicPartition) -> int:
        if tp not in self._partitions:
            self._partitions.append(tp)
        return self._partitions.index(tp)

    def append(self, batch: DecodedBatch) -> None:
        if not len(batch):
            return
        index = np.empty(len(batch), dtype=np.int64)
        for tp, rows in batch.partition_rows().items():
            index[rows] = self._tp_index(tp)
        self._x.append(batch.x)
        self._y.append(batch.y)
        self._tp.append(index)
        self._offsets.append(np.asarray(batch.offsets, dtype=np.int64))
        self._count += len(batch)

    def _merge(self) -> None:
        if len(self._x) > 1:
            self._x = [np.concatenate(self._x)]
            self._y = [np.concatenate(self._y)]
            self._tp = [np.concatenate(self._tp)]
            self._offsets = [np.concatenate(self._offsets)]

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray, dict[TopicPartition, int]]:
        """The first ``n`` rows (features, labels) and, per partition, the offset after the last one taken."""
        self._merge()
        x, y, tp, offsets = self._x[0], self._y[0], self._tp[0], self._offsets[0]
        taken_tp, taken_offsets = tp[:n], offsets[:n]
        ends = {self._partitions[i]: int(taken_offsets[taken_tp == i].max()) + 1 for i in np.unique(taken_tp)}
        self._x, self._y, self._tp, self._offsets = [x[n:]], [y[n:]], [tp[n:]], [offsets[n:]]
        self._count -= min(n, len(y))
        return x[:n], y[:n], ends

    def first_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset of its oldest pending row (a commit must not go past it)."""
        out: dict[TopicPartition, int] = {}
        for tp, offsets in zip(self._tp, self._offsets, strict=True):
            for i in np.unique(tp):
                first = int(offsets[tp == i].min())
                key = self._partitions[i]
                out[key] = min(first, out.get(key, first))
        return out

    def drop(self, partitions: set[TopicPartition]) -> None:
        """Forget the rows of revoked or lost partitions."""
        drop_ids = [i for i, tp in enumerate(self._partitions) if tp in partitions]
        if not drop_ids or not self._count:
            return
        self._merge()
        keep = ~np.isin(self._tp[0], drop_ids)
        self._x, self._y = [self._x[0][keep]], [self._y[0][keep]]
        self._tp, self._offsets = [self._tp[0][keep]], [self._offsets[0][keep]]
        self._count = int(keep.sum())
