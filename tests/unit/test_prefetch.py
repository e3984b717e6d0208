"""PrefetchingConsumer's threading contract, with a scripted in-memory consumer (the broker tests are in
tests/integration/test_prefetch_daemon.py): every client call on the fetch thread, events in order with
batches, no stale rows after a revocation or a seek, commits waited for, errors handed to the caller."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import pytest

from lifelong.stream.codecs import decode_records, get_codec
from lifelong.stream.consumer import RebalanceEvent
from lifelong.stream.prefetch import Prefetched, PrefetchingConsumer, filter_batch, partition_owner
from lifelong.stream.records import RawRecord

CODEC = get_codec("f32")


def record(partition: int, offset: int, label: int = 1, topic: str = "t") -> RawRecord:
    value, _ = CODEC.encode(np.full(4, offset, dtype=np.float32), label)
    return RawRecord(topic, partition, offset, None, value)


def decode(records: list[RawRecord]):
    return decode_records(records, CODEC, num_features=4, max_classes=10)


class ScriptedConsumer:
    """Plays a script of (records, events) per poll; remembers every call and the thread it came from."""

    def __init__(self, script: list[tuple[list[RawRecord], list[RebalanceEvent]]], held: set | None = None):
        self.script = deque(script)
        self.held = set(held if held is not None else {("t", 0), ("t", 1)})
        self.calls: list[tuple[str, int]] = []
        self.committed: dict = {}
        self.sought: dict = {}
        self._events: list[RebalanceEvent] = []
        self.poll_gate = threading.Event()
        self.poll_gate.set()

    def _note(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def poll(self, timeout_ms: int | None = None) -> list[RawRecord]:
        self._note("poll")
        self.poll_gate.wait()
        if not self.script:
            time.sleep(0.005)
            return []
        records, events = self.script.popleft()
        for event in events:
            if event.kind == "assigned":
                self.held |= set(event.partitions)
            else:
                self.held -= set(event.partitions)
        self._events.extend(events)
        if isinstance(records, Exception):
            raise records
        return list(records)

    def drain_events(self) -> list[RebalanceEvent]:
        self._note("drain_events")
        out, self._events = self._events, []
        return out

    def assignment(self) -> set:
        self._note("assignment")
        return set(self.held)

    def connected(self) -> bool:
        self._note("connected")
        return True

    def commit(self, offsets, timeout_ms=None):
        self._note("commit")
        todo = {tp: o for tp, o in offsets.items() if tp in self.held}
        self.committed.update(todo)
        return todo

    def seek(self, offsets) -> None:
        self._note("seek")
        self.sought.update(offsets)

    def lag(self) -> dict:
        self._note("lag")
        return {tp: 0 for tp in self.held}

    def close(self) -> None:
        self._note("close")


def collect(consumer: PrefetchingConsumer, n: int, timeout: float = 5.0) -> list:
    """Poll until ``n`` records came; events are returned in place, as ('events', list)."""
    out: list = []
    got = 0
    deadline = time.monotonic() + timeout
    while got < n and time.monotonic() < deadline:
        fetched = consumer.poll(200)
        if fetched.events:
            out.append(("events", consumer.drain_events()))
        if fetched:
            out.append(fetched)
            got += len(fetched)
    return out


def test_every_client_call_runs_on_the_fetch_thread() -> None:
    fake = ScriptedConsumer([([record(0, i) for i in range(3)], [])])
    with PrefetchingConsumer([lambda: fake], depth=2, decode=decode) as consumer:
        assert len(collect(consumer, 3)[0]) == 3
        consumer.commit({("t", 0): 3})
        consumer.seek({("t", 0): 1})
        assert consumer.lag() == {("t", 0): 0, ("t", 1): 0}
        assert consumer.assignment() == {("t", 0), ("t", 1)}
    main = threading.get_ident()
    threads = {ident for _, ident in fake.calls}
    assert main not in threads and len(threads) == 1
    assert fake.calls[-1][0] == "close"
    assert fake.committed == {("t", 0): 3} and fake.sought == {("t", 0): 1}


def test_batches_arrive_decoded_and_in_order_with_events() -> None:
    assign = RebalanceEvent("assigned", frozenset({("t", 2)}))
    fake = ScriptedConsumer([
        ([record(0, 0), record(1, 0)], []),
        ([record(0, 1)], [assign]),
        ([record(0, 2)], []),
    ])
    with PrefetchingConsumer([lambda: fake], depth=4, decode=decode) as consumer:
        items = collect(consumer, 4)
    kinds = ["events" if isinstance(i, tuple) else "batch" for i in items]
    assert kinds == ["batch", "events", "batch", "batch"]
    assert items[1][1] == [assign]
    first = items[0]
    assert isinstance(first, Prefetched) and first.batch is not None
    assert first.batch.x[:, 0].tolist() == [0.0, 0.0] and first.batch.next_offsets == {("t", 0): 1, ("t", 1): 1}
    assert [r.offset for i in items[2:] for r in i.records] == [1, 2]


def test_revocation_drops_queued_rows_of_revoked_partitions() -> None:
    fake = ScriptedConsumer([
        ([record(0, 0), record(1, 0)], []),
        ([record(1, 1)], []),
        ([], [RebalanceEvent("revoked", frozenset({("t", 1)}))]),
        ([record(0, 1)], []),
    ])
    with PrefetchingConsumer([lambda: fake], depth=8, decode=decode) as consumer:
        deadline = time.monotonic() + 5
        while fake.script and time.monotonic() < deadline:  # let the worker queue everything first
            time.sleep(0.01)
        time.sleep(0.05)
        items = collect(consumer, 2)
    seen = [(r.partition, r.offset) for i in items if not isinstance(i, tuple) for r in i.records]
    assert seen == [(0, 0), (0, 1)]  # (1, 0) and (1, 1) were queued before the revocation: dropped
    events = [i for i in items if isinstance(i, tuple)]
    assert events and events[0][1][0].kind == "revoked"
    first = items[0]
    assert len(first.batch) == 1 and first.batch.next_offsets == {("t", 0): 1}


def test_seek_drops_queued_rows_of_that_partition() -> None:
    fake = ScriptedConsumer([([record(0, i)], []) for i in range(5)])
    with PrefetchingConsumer([lambda: fake], depth=10, decode=decode) as consumer:
        deadline = time.monotonic() + 5
        while fake.script and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        consumer.seek({("t", 0): 2})  # returns once the worker sought and purged
        assert consumer.poll(100).records == []
    assert fake.sought == {("t", 0): 2}


def test_commit_is_served_while_the_queue_is_full() -> None:
    fake = ScriptedConsumer([([record(0, i)], []) for i in range(20)])
    with PrefetchingConsumer([lambda: fake], depth=1, decode=decode) as consumer:
        time.sleep(0.1)  # the worker fills the queue and waits for room
        assert consumer.commit({("t", 0): 1, ("t", 9): 4}, timeout_ms=2000) == {("t", 0): 1}
        assert [r.offset for r in consumer.poll(1000).records] == [0]


def test_factory_error_is_raised_by_the_constructor() -> None:
    def broken():
        raise ConnectionError("no broker")

    with pytest.raises(ConnectionError, match="no broker"):
        PrefetchingConsumer([broken], depth=2)


def test_poll_error_reaches_the_caller_and_fetching_goes_on() -> None:
    fake = ScriptedConsumer([(RuntimeError("fetch failed"), []), ([record(0, 0)], [])])
    with PrefetchingConsumer([lambda: fake], depth=2, decode=decode) as consumer:
        with pytest.raises(RuntimeError, match="fetch failed"):
            consumer.poll(2000)
        assert [r.offset for r in consumer.poll(3000).records] == [0]


def test_several_workers_keep_per_partition_order_and_split_commits() -> None:
    fakes = [ScriptedConsumer([([record(p, i) for i in range(j * 5, j * 5 + 5)], []) for j in range(4)],
                              held={("t", p)}) for p in (0, 1)]
    factories = [lambda f=f: f for f in fakes]
    with PrefetchingConsumer(factories, depth=2, decode=decode) as consumer:
        items = collect(consumer, 40)
        assert consumer.commit({("t", 0): 20, ("t", 1): 20}) == {("t", 0): 20, ("t", 1): 20}
    for p in (0, 1):
        offsets = [r.offset for i in items for r in i.records if r.partition == p]
        assert offsets == list(range(20))
    assert fakes[0].committed == {("t", 0): 20} and fakes[1].committed == {("t", 1): 20}


def test_filter_batch_keeps_rows_bad_records_and_next_offsets_aligned() -> None:
    records = [record(0, 0), record(1, 0), RawRecord("t", 0, 1, None, b"junk"), record(0, 2)]
    batch = decode(records)
    kept = [r for r in records if r.partition == 0]
    small = filter_batch(batch, kept)
    assert small.offsets.tolist() == [0, 2] and small.x[:, 0].tolist() == [0.0, 2.0]
    assert [b.record.offset for b in small.bad] == [1]
    assert small.next_offsets == {("t", 0): 3}


def test_partition_owner_is_stable_and_spreads() -> None:
    owners = [partition_owner(("events", p), 3) for p in range(12)]
    assert owners == [partition_owner(("events", p), 3) for p in range(12)]
    assert sorted(set(owners)) == [0, 1, 2]


def test_lag_does_not_hold_the_loop_while_the_worker_is_busy() -> None:
    fake = ScriptedConsumer([])
    fake.poll_gate.clear()  # the worker sits inside poll, as in a long group join
    with PrefetchingConsumer([lambda: fake], depth=2) as consumer:
        time.sleep(0.05)
        start = time.monotonic()
        assert consumer.lag(timeout_s=0.2) == {}
        assert time.monotonic() - start < 1.0
        fake.poll_gate.set()
        assert consumer.lag() == {("t", 0): 0, ("t", 1): 0}


def test_decode_failure_hands_raw_records_to_the_caller() -> None:
    def broken(_records):
        raise ValueError("codec bug")

    fake = ScriptedConsumer([([record(0, 0)], [])])
    with PrefetchingConsumer([lambda: fake], depth=2, decode=broken) as consumer:
        fetched = consumer.poll(2000)
    assert [r.offset for r in fetched.records] == [0] and fetched.batch is None


def test_a_dead_fetch_thread_is_raised_by_poll() -> None:
    fake = ScriptedConsumer([([42], [])])  # not a record: the worker loop fails, a bug rather than a broker error
    with PrefetchingConsumer([lambda: fake], depth=2) as consumer:
        time.sleep(0.1)
        with pytest.raises(RuntimeError, match="fetch thread 0 stopped"):
            consumer.poll(100)


def test_a_seek_served_late_by_a_worker_without_the_partition_keeps_the_owners_new_rows() -> None:
    """A seek goes to every worker; the owner seeks and fetches again while another worker is still busy. When
    that worker serves the seek later, the owner's re-fetched rows must stay (seen with confluent-kafka on
    the real broker: the second worker's purge dropped them, and the partition stalled)."""
    owner = ScriptedConsumer([], held={("t", 0)})
    other = ScriptedConsumer([], held={("t", 1)})
    with PrefetchingConsumer([lambda: owner, lambda: other], depth=10, decode=decode) as consumer:
        other.poll_gate.clear()  # the other worker sits in a poll and serves the seek only once released
        time.sleep(0.05)
        done = threading.Thread(target=consumer.seek, args=({("t", 0): 3},))
        done.start()
        deadline = time.monotonic() + 5
        while not owner.sought and time.monotonic() < deadline:
            time.sleep(0.005)
        owner.script.append(([record(0, 3), record(0, 4)], []))  # the owner fetches from the new position
        while owner.script and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        other.poll_gate.set()
        done.join(5)
        assert not done.is_alive()
        items = collect(consumer, 2, timeout=2)
    assert [r.offset for i in items for r in i.records] == [3, 4]
    assert other.sought == {("t", 0): 3}  # it was asked too, and held nothing of it
