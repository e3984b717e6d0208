"""The fetch process's wire format: messages round-trip with their arrays out of band, writable, and an
exception that cannot be pickled still arrives as its text."""

from __future__ import annotations

import multiprocessing as mp
import threading

import numpy as np

from lifelong.stream.fetch_process import _recv, _send
from lifelong.stream.prefetch import Prefetched
from lifelong.stream.records import BadRecord, Coordinates, DecodedBatch, RawRecord


def receive(conn) -> tuple:
    """_recv on a thread: a megabyte does not fit the pipe, so the sender needs a reader running."""
    out: list[tuple] = []
    thread = threading.Thread(target=lambda: out.append(_recv(conn)))
    thread.start()
    return thread, out


def test_batch_round_trip_keeps_arrays_writable():
    here, there = mp.Pipe()
    thread, out = receive(there)
    x = np.random.default_rng(0).random((300, 784), dtype=np.float32)
    records = [RawRecord("t", 0, i, None, b"v") for i in range(301)]
    batch = DecodedBatch(x=x, y=np.arange(300) % 10, topics=["t"] * 300, partitions=np.zeros(300, np.int32),
                         offsets=np.arange(300, dtype=np.int64), bad=[BadRecord(records[-1], "empty_value")],
                         next_offsets={("t", 0): 301})
    _send(here, ("batch", Prefetched([], batch, coords=Coordinates.of(records)), ({("t", 0)}, True)))
    thread.join(timeout=30)
    kind, got, state = out[0]
    assert kind == "batch" and state == ({("t", 0)}, True)
    np.testing.assert_array_equal(got.batch.x, x)
    assert got.batch.x.flags.writeable  # torch.as_tensor needs no copy and warns about nothing
    assert got.batch.bad[0].record.value == b"v" and len(got) == 301
    np.testing.assert_array_equal(got.coords.runs[0][2], np.arange(301))


def test_unpicklable_exception_arrives_as_text():
    class Local(Exception):  # defined in a function: pickle cannot find it by name
        pass

    here, there = mp.Pipe()
    _send(here, ("error", Local("broker gone"), (set(), False)))
    kind, exc, _ = _recv(there)
    assert kind == "error" and isinstance(exc, RuntimeError) and "broker gone" in str(exc)
