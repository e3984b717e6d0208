"""PendingRecords: fixed-size micro-batches out of arbitrary fetches, and safe commit offsets."""

import numpy as np

from lifelong.daemon.pending import PendingRecords
from lifelong.stream.records import DecodedBatch


def batch(topic_parts, offsets):
    n = len(offsets)
    return DecodedBatch(x=np.arange(n, dtype=np.float32).reshape(n, 1) + offsets[0], y=np.zeros(n, dtype=np.int64),
                        topics=[t for t, _ in topic_parts], partitions=np.array([p for _, p in topic_parts]),
                        offsets=np.array(offsets))


def test_take_spans_fetches_and_reports_ends():
    pending = PendingRecords()
    pending.append(batch([("t", 0)] * 3, [10, 11, 12]))
    pending.append(batch([("t", 1), ("t", 0)], [5, 13]))
    assert len(pending) == 5
    assert pending.first_offsets() == {("t", 0): 10, ("t", 1): 5}
    x, y, ends = pending.take(4)
    assert x.ravel().tolist() == [10, 11, 12, 5]
    assert ends == {("t", 0): 13, ("t", 1): 6}
    assert pending.first_offsets() == {("t", 0): 13}
    assert len(pending) == 1


def test_drop_revoked_partition():
    pending = PendingRecords()
    pending.append(batch([("t", 0), ("t", 1), ("t", 0)], [1, 7, 2]))
    pending.drop({("t", 0)})
    assert len(pending) == 1
    assert pending.first_offsets() == {("t", 1): 7}
