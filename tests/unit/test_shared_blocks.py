"""Shared-memory blocks between a fetch child and the daemon: copies out, reuse, limits, cleanup, fallback."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from lifelong.stream import shared_blocks
from lifelong.stream.shared_blocks import BlockPool, BlockReader, unlink_orphans


def _exists(name: str) -> bool:
    try:
        shared_blocks._attach(name).close()
    except FileNotFoundError:
        return False
    return True


def test_take_returns_a_writable_copy_that_outlives_the_block():
    pool, reader = BlockPool(limit=2), BlockReader()
    try:
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        ref = pool.put(x)
        assert ref is not None and ref.shape == (3, 4) and ref.dtype == "<f4"
        got = reader.take(ref)
        pool.give_back(ref.name)
        again = pool.put(np.zeros((3, 4), np.float32))  # the same block, overwritten
        assert again is not None and again.name == ref.name
        np.testing.assert_array_equal(got, x)  # the copy taken before is untouched
        got[0, 0] = -1.0  # and the parent's own to change
        assert reader.take(again).sum() == 0.0
    finally:
        reader.close()
        pool.close()


def test_at_most_limit_blocks_are_lent_and_a_bigger_batch_replaces_a_free_block():
    pool = BlockPool(limit=2)
    try:
        small = np.ones((4, 8), np.float32)
        a, b = pool.put(small), pool.put(small)
        assert a is not None and b is not None and a.name != b.name
        assert pool.all_lent() and pool.put(small) is None and pool.failed is None  # wait: not a failure
        pool.give_back(a.name)
        big = np.ones((2 * shared_blocks.GRAIN // 4,), np.float32)  # 2 MiB: more than the 1 MiB block
        c = pool.put(big)
        assert c is not None and c.name not in {a.name, b.name}
        assert not _exists(a.name)  # the outgrown block was unlinked to keep within the limit
        assert _exists(b.name) and _exists(c.name)
    finally:
        pool.close()
    assert not _exists(b.name) and not _exists(c.name)  # close unlinks every block, lent or free


def test_no_shared_memory_is_reported_not_raised(monkeypatch):
    def full(fd: int, offset: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    pool = BlockPool(limit=2)
    assert pool.put(np.ones((2, 2), np.float32)) is None
    assert isinstance(pool.failed, OSError) and pool.failed.errno == errno.ENOSPC
    pool.close()


def test_blocks_of_a_killed_child_are_unlinked_by_name():
    pool = BlockPool(limit=2)
    ref = pool.put(np.ones(3, np.float32))
    assert ref is not None and _exists(ref.name)
    assert unlink_orphans({ref.name}) == 1  # as the parent does for a child killed by a signal
    assert not _exists(ref.name)
    assert unlink_orphans({ref.name}) == 0  # already gone: nothing to do


@pytest.mark.parametrize("dtype", ["<f4", "<i8"])
def test_reader_keeps_a_few_blocks_mapped(dtype):
    pool, reader = BlockPool(limit=1), BlockReader(keep=1)
    try:
        first = pool.put(np.ones(4, dtype))
        assert first is not None
        reader.take(first)
        pool.give_back(first.name)
        second = pool.put(np.ones(shared_blocks.GRAIN, dtype))  # outgrows the only block: a new name
        assert second is not None and second.name != first.name
        np.testing.assert_array_equal(reader.take(second), np.ones(shared_blocks.GRAIN, dtype))
        assert list(reader._mapped) == [second.name]  # the outgrown block is unmapped
    finally:
        reader.close()
        pool.close()
