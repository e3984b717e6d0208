"""Fetch and decode on background threads while the learner trains: a drop-in for the daemon's consumer.

Why: the Kafka client and the learner each keep one core busy; run in turn, each waits for the other. The C
parts of a fetch (socket reads, CRC32C, decompression) and the numpy decode release the GIL, as do torch's
kernels, so a fetch thread overlaps most of its work with the learner's.

How it keeps the daemon's guarantees:

- kafka-python is not thread-safe, so each underlying consumer is built, polled, committed, sought and closed on
  its own thread; the main loop sends ``commit``/``seek``/``lag`` requests and waits for their result.
- A bounded channel holds at most ``depth`` decoded batches per worker; rebalance events travel in the same
  channel, so the main loop sees them in order with the batches. When partitions are revoked or lost, rows of
  those partitions still queued are dropped (the main loop commits what it learned; the new owner resumes
  there). A ``seek`` drops the queued rows of the partitions it moves, so no stale row follows it.
- Several workers (``workers > 1``) each own a disjoint set of partitions (group members, or a stable hash of
  the partition in ``assign`` mode), so per-partition order holds; a commit or seek goes to every worker and each
  applies the partitions it holds.

Example::

    consumer = PrefetchingConsumer([lambda: StreamConsumer(cfg)], depth=2,
                                   decode=lambda recs: decode_records(recs, "f32", num_features=784))
    fetched = consumer.poll(1000)          # Prefetched: fetched.records (raw) and fetched.batch (decoded)
    consumer.commit({("t", 0): fetched.records[-1].offset + 1})
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lifelong.stream.records import Coordinates, DecodedBatch, RawRecord, TopicPartition, select_rows

__all__ = ["FetcherStopped", "Prefetched", "PrefetchingConsumer", "open_stream", "partition_owner",
           "subset_consumer"]

log = logging.getLogger(__name__)

Decoder = Callable[[list[RawRecord]], DecodedBatch]
Factory = Callable[[], Any]


class FetcherStopped(RuntimeError):
    """A fetch thread or process is gone (a bug, or the process was killed): the consumer must be rebuilt."""


@dataclass(slots=True)
class Prefetched:
    """One fetch: the raw records (for the position guard and dead letters) and their decoded batch."""

    records: list[RawRecord]
    batch: DecodedBatch | None = None
    events: bool = False  # a rebalance came before the next batch: drain_events() has it
    coords: Coordinates | None = None  # instead of ``records`` (from a fetch process): see ``Coordinates``

    def __len__(self) -> int:
        return len(self.coords) if self.coords is not None else len(self.records)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self):
        return iter(self.records)

    def without(self, partitions: set[TopicPartition]) -> Prefetched:
        """The same fetch without the rows of ``partitions``."""
        if self.coords is not None and self.batch is not None:
            keep = np.ones(len(self.batch), dtype=bool)
            for tp, rows in self.batch.partition_rows().items():
                if tp in partitions:
                    keep &= ~rows
            bad = [b for b in self.batch.bad if (b.record.topic, b.record.partition) not in partitions]
            return Prefetched([], select_rows(self.batch, keep, bad), coords=self.coords.without(partitions))
        return self.select(lambda r: (r.topic, r.partition) not in partitions)

    def select(self, keep: Callable[[RawRecord], bool]) -> Prefetched:
        """The records ``keep`` accepts, and the decoded rows and bad records that came from them."""
        records = [r for r in self.records if keep(r)]
        if len(records) == len(self.records):
            return self
        return Prefetched(records, filter_batch(self.batch, records) if self.batch is not None else None)


def filter_batch(batch: DecodedBatch, records: Iterable[RawRecord]) -> DecodedBatch:
    """Rows of ``batch`` whose (topic, partition, offset) is among ``records``; ``next_offsets`` follows them."""
    wanted = {(r.topic, r.partition, r.offset) for r in records}
    keep = np.fromiter(((t, p, o) in wanted for t, p, o in zip(batch.topics, batch.partitions.tolist(),
                                                                 batch.offsets.tolist(), strict=True)),
                       dtype=bool, count=len(batch))
    bad = [b for b in batch.bad if (b.record.topic, b.record.partition, b.record.offset) in wanted]
    return select_rows(batch, keep, bad)


def partition_owner(tp: TopicPartition, workers: int) -> int:
    """Which of ``workers`` fetches ``tp`` in assign mode: stable across restarts and topic growth."""
    return (zlib.crc32(tp[0].encode()) + int(tp[1])) % workers


def subset_consumer(cfg: Any, index: int, workers: int, **overrides: Any) -> Any:
    """A consumer of ``cfg.client`` in ``assign`` mode holding only the partitions :func:`partition_owner`
    gives worker ``index`` (its assignment step, with the owner filter)."""
    if not cfg.assign:
        raise ValueError("subset_consumer needs kafka.assign: true (group members split partitions themselves)")

    def mine(tp: TopicPartition) -> bool:
        return partition_owner(tp, workers) == index

    if cfg.client == "confluent":
        return _confluent_subset(cfg, mine, **overrides)
    return _kafka_python_subset(cfg, mine, **overrides)


def _kafka_python_subset(cfg: Any, mine: Callable[[TopicPartition], bool], **overrides: Any) -> Any:
    from kafka import TopicPartition as KafkaTP

    from lifelong.stream.consumer import RebalanceEvent, StreamConsumer

    class _Subset(StreamConsumer):
        def _try_assign(self) -> None:
            wanted = set(self._consumer.assignment())
            for topic in self.cfg.topics:
                wanted.update(KafkaTP(topic, p) for p in self._consumer.partitions_for_topic(topic) or ()
                              if mine((topic, p)))
            current = set(self._consumer.assignment())
            if wanted != current:
                self._consumer.assign(sorted(wanted))
                added = frozenset((tp.topic, tp.partition) for tp in wanted - current)
                self._events.append(RebalanceEvent("assigned", added))
            self._assigned_topics = {t for t in self.cfg.topics if self._consumer.partitions_for_topic(t)}
            self._next_assign_check = time.monotonic() + (1.0 if self._missing_topics() else 30.0)

    return _Subset(cfg, **overrides)


def _confluent_subset(cfg: Any, mine: Callable[[TopicPartition], bool], **overrides: Any) -> Any:
    from confluent_kafka import OFFSET_INVALID, KafkaException
    from confluent_kafka import TopicPartition as ConfluentTP

    from lifelong.stream.confluent_consumer import ConfluentStreamConsumer
    from lifelong.stream.consumer import RebalanceEvent

    class _Subset(ConfluentStreamConsumer):
        def _try_assign(self) -> None:
            wanted = set(self._assigned)
            try:
                meta = self._consumer.list_topics(timeout=5)
            except KafkaException:
                meta = None
            known = set()
            for topic in self.cfg.topics:
                info = meta.topics.get(topic) if meta is not None else None
                if info is not None and info.error is None:
                    known.add(topic)
                    wanted.update((topic, p) for p in info.partitions if mine((topic, p)))
            added = wanted - self._assigned
            if added:
                self._consumer.assign([ConfluentTP(t, p, OFFSET_INVALID) for t, p in sorted(wanted)])
                self._assigned = wanted
                self._events.append(RebalanceEvent("assigned", frozenset(added)))
            self._next_assign_check = time.monotonic() + (1.0 if set(self.cfg.topics) - known else 30.0)

    return _Subset(cfg, **overrides)


@dataclass
class _Request:
    fn: Callable[[Any], Any]
    future: Future = field(default_factory=Future)
    purge: set[TopicPartition] | None = None  # rows to drop from the channel once fn ran


class _Channel:
    """Bounded FIFO of ("batch", Prefetched) / ("events", list) / ("error", exc); only batches count."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: deque[tuple[str, Any]] = deque()
        self._batches = 0
        self.cond = threading.Condition()

    def full(self) -> bool:
        return self._batches >= self.capacity

    def put(self, kind: str, item: Any) -> None:
        with self.cond:
            self._items.append((kind, item))
            self._batches += kind == "batch"
            self.cond.notify_all()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            kind, item = self._items.popleft()
            self._batches -= kind == "batch"
            self.cond.notify_all()
            return kind, item

    def purge(self, partitions: set[TopicPartition]) -> int:
        """Drop queued rows of ``partitions``; returns how many records went."""
        dropped = 0
        with self.cond:
            kept: deque[tuple[str, Any]] = deque()
            for kind, item in self._items:
                if kind == "batch":
                    smaller = item.without(partitions)
                    dropped += len(item) - len(smaller)
                    if not smaller:
                        self._batches -= 1
                        continue
                    item = smaller
                kept.append((kind, item))
            self._items = kept
            self.cond.notify_all()
        return dropped

    def wait_space(self, timeout: float) -> None:
        with self.cond:
            if self.full():
                self.cond.wait(timeout)


class _Worker(threading.Thread):
    """Owns one consumer: polls, decodes, publishes; runs the main loop's requests between polls."""

    def __init__(self, owner: PrefetchingConsumer, index: int, factory: Factory) -> None:
        super().__init__(name=f"lifelong-fetch-{index}", daemon=True)
        self.owner = owner
        self.index = index
        self.factory = factory
        self.requests: deque[_Request] = deque()
        self.ready: Future = Future()
        self.assignment: set[TopicPartition] = set()
        self.connected = True
        self.consumer: Any = None
        self.died: BaseException | None = None

    def submit(self, request: _Request) -> Future:
        self.requests.append(request)
        with self.owner.channel.cond:
            self.owner.channel.cond.notify_all()
        return request.future

    def _serve(self) -> None:
        while self.requests:
            request = self.requests.popleft()
            try:
                result = request.fn(self.consumer)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                request.future.set_exception(exc)
                continue
            if request.purge:
                # only rows this worker fetched: a seek is broadcast, and a worker that does not hold the
                # partition may serve it after the owner has sought and queued the re-fetched rows
                held = request.purge & self._held()
                if held:
                    self.owner.channel.purge(held)
            request.future.set_result(result)
        self._snapshot()

    def _held(self) -> set[TopicPartition]:
        """The partitions this worker's consumer holds now (its last snapshot where the client cannot say)."""
        try:
            return set(self.consumer.assignment())
        except Exception:  # noqa: BLE001 - the snapshot is the best this worker knows
            return set(self.assignment)

    def _snapshot(self) -> None:
        with contextlib.suppress(Exception):
            self.assignment = set(self.consumer.assignment())
        with contextlib.suppress(Exception):
            self.connected = bool(getattr(self.consumer, "connected", lambda: True)())

    def run(self) -> None:
        try:
            self.consumer = self.factory()
        except BaseException as exc:  # noqa: BLE001 - the constructor's error goes to the caller
            self.ready.set_exception(exc)
            return
        self._snapshot()
        self.ready.set_result(True)
        owner, channel = self.owner, self.owner.channel
        try:
            while not owner.closing.is_set():
                self._serve()
                if channel.full():
                    channel.wait_space(0.05)
                    continue
                try:
                    records = self.consumer.poll(owner.fetch_timeout_ms)
                    events = self.consumer.drain_events()
                except Exception as exc:  # noqa: BLE001 - the main loop counts it and carries on
                    channel.put("error", exc)
                    owner.closing.wait(0.5)
                    continue
                self._snapshot()
                if events:
                    gone = {tp for event in events if event.kind != "assigned" for tp in event.partitions}
                    if gone:
                        channel.purge(gone)
                    channel.put("events", events)
                if not records:
                    continue
                held = self.assignment
                fetched = Prefetched(list(records)).select(lambda r, held=held: (r.topic, r.partition) in held)
                if fetched and owner.decode is not None:
                    try:
                        fetched.batch = owner.decode(fetched.records)
                    except Exception:  # noqa: BLE001 - the main loop decodes them itself and sees the error
                        log.exception("decode failed on the fetch thread; the main loop will decode this batch")
                if fetched:
                    channel.put("batch", fetched)
        except BaseException as exc:  # a bug, not a broker error: the main loop raises it from poll()
            self.died = exc
            log.exception("fetch thread %d stopped", self.index)
        finally:
            self._serve()
            with contextlib.suppress(Exception):
                self.consumer.close()
            while self.requests:  # nobody will run these any more
                self.requests.popleft().future.set_exception(RuntimeError("consumer closed"))


class FetcherGroup:
    """What the thread and process fetchers share: members (``fetchers()``) with ``assignment``/``connected``
    as of their last report, so the main loop asks every turn without a round trip."""

    _events: deque[Any]  # rebalance events handed over by poll(), for drain_events()

    def fetchers(self) -> Sequence[Any]:
        raise NotImplementedError

    def _deliver(self, kind: str, value: Any) -> Prefetched:
        """What poll() returns for one queued item: a batch; an empty fetch flagging events; or the error."""
        if kind == "batch":
            return value
        if kind == "events":
            self._events.extend(value)
            return Prefetched([], events=True)
        raise value  # "error": what a fetcher's poll raised

    def drain_events(self) -> list[Any]:
        """Rebalance events the fetchers saw, oldest first, in order with the batches."""
        out = list(self._events)
        self._events.clear()
        return out

    def has_events(self) -> bool:
        return bool(self._events)

    def assignment(self) -> set[TopicPartition]:
        """Partitions held, as of each member's last report."""
        out: set[TopicPartition] = set()
        for member in self.fetchers():
            out |= member.assignment
        return out

    def connected(self) -> bool:
        return any(member.connected for member in self.fetchers())

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrefetchingConsumer(FetcherGroup):
    """The daemon's consumer interface over one or more consumers running on their own threads.

    ``factories``: one callable per worker, called on that worker's thread, returning a StreamConsumer-like
    object (poll, drain_events, commit, seek, assignment, lag, close). ``depth``: decoded batches buffered per
    worker. ``decode``: turns a list of records into a DecodedBatch on the worker (None: leave it to the caller).
    Raises the first factory's error (e.g. broker unreachable) from the constructor.
    """

    def __init__(self, factories: Sequence[Factory], depth: int = 2, decode: Decoder | None = None,
                 fetch_timeout_ms: int = 200, request_timeout_s: float = 60.0) -> None:
        if not factories:
            raise ValueError("PrefetchingConsumer needs at least one consumer factory")
        self.decode = decode
        self.fetch_timeout_ms = int(fetch_timeout_ms)
        self.request_timeout_s = request_timeout_s
        self.channel = _Channel(max(1, depth) * len(factories))
        self.closing = threading.Event()
        self._events: deque[Any] = deque()
        self.workers = [_Worker(self, i, f) for i, f in enumerate(factories)]
        for worker in self.workers:
            worker.start()
        try:
            for worker in self.workers:
                worker.ready.result(timeout=request_timeout_s)
        except BaseException:
            self.close()
            raise

    # ---- the data path -------------------------------------------------------------------------------------
    def poll(self, timeout_ms: int | None = None) -> Prefetched:
        """The next fetched batch, waiting up to ``timeout_ms``; empty (with ``events`` set) when a rebalance
        comes first, so the caller drains events before any later batch."""
        timeout = (timeout_ms if timeout_ms is not None else 1000) / 1000
        item = self.channel.get(timeout)
        if item is None:
            for worker in self.workers:
                if worker.died is not None:
                    raise FetcherStopped(f"fetch thread {worker.index} stopped: {worker.died!r}") from worker.died
            return Prefetched([])
        return self._deliver(*item)

    # ---- requests run on the workers' threads ---------------------------------------------------------------
    def _broadcast(self, fn: Callable[[Any], Any], purge: set[TopicPartition] | None = None,
                   timeout_s: float | None = None) -> list[Any]:
        """Run ``fn(consumer)`` on every worker's thread, in order with its earlier requests; wait for all.

        Raises TimeoutError past ``timeout_s`` (a worker inside a long group-join poll); the request still runs
        later, before any newer one, so a late commit never overtakes a newer one."""
        futures = [w.submit(_Request(fn, purge=purge)) for w in self.workers if w.is_alive()]
        if not futures:
            raise RuntimeError("consumer closed")
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.request_timeout_s)
        return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]

    def commit(self, offsets: Mapping[TopicPartition, int], timeout_ms: int | None = None,
               ) -> dict[TopicPartition, int]:
        """Commit on the workers' threads (each commits the partitions it holds) and wait for them all."""
        todo = dict(offsets)
        wait = None if timeout_ms is None else timeout_ms / 1000 + self.fetch_timeout_ms / 1000 + 1.0
        merged: dict[TopicPartition, int] = {}
        for result in self._broadcast(lambda c: c.commit(todo, timeout_ms=timeout_ms), timeout_s=wait):
            merged.update(result or {})
        return merged

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Seek on the owning workers and drop queued rows of those partitions; returns once done."""
        todo = dict(offsets)
        self._broadcast(lambda c: c.seek(todo), purge=set(todo))

    def lag(self, timeout_s: float = 5.0) -> dict[TopicPartition, int]:
        """Per-partition lag from every worker; {} when a worker is busy longer (a group join): the gauge
        just keeps its last value, the loop is not held up."""
        merged: dict[TopicPartition, int] = {}
        try:
            results = self._broadcast(lambda c: c.lag(), timeout_s=timeout_s)
        except TimeoutError:
            return {}
        for result in results:
            merged.update(result or {})
        return merged

    def committed(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int | None]:
        parts = list(partitions) if partitions is not None else None
        merged: dict[TopicPartition, int | None] = {}
        for worker in self.workers:
            held = sorted(worker.assignment if parts is None else set(parts) & worker.assignment)
            if held:
                merged.update(worker.submit(_Request(lambda c, h=held: c.committed(h))).result(
                    timeout=self.request_timeout_s))
        return merged

    def fetchers(self) -> Sequence[Any]:
        return self.workers

    def close(self) -> None:
        """Stop the workers; each closes its own consumer (commits nothing)."""
        self.closing.set()
        with self.channel.cond:
            self.channel.cond.notify_all()
        for worker in self.workers:
            if worker.is_alive() and worker is not threading.current_thread():
                worker.join(timeout=15.0)


def open_stream(cfg: Any, *, prefetch: int = 0, workers: int = 1, decode: Decoder | None = None,
                process: bool = False, shared_memory: bool = True, gc_freeze: bool = True,
                reuse_memory: bool = True, **overrides: Any) -> Any:
    """The daemon's consumer: the configured client as is (``prefetch=0``), or behind fetch threads.

    ``workers > 1`` runs that many consumers: group members splitting the partitions (group mode), or
    kafka-python consumers assigned disjoint partitions by :func:`partition_owner` (``cfg.assign``).
    ``process``: the fetch threads run in a child process (lifelong.stream.fetch_process), off the caller's
    GIL; ``decode`` must then be picklable, ``shared_memory`` says how decoded features come back, and
    ``gc_freeze`` whether each child freezes its heap once its client is up (lifelong.heap), ``reuse_memory``
    whether it keeps its large fetch buffers for reuse (lifelong.stream.allocator).
    """
    from lifelong.stream.consumer import open_consumer

    if prefetch <= 0:
        if workers > 1:
            raise ValueError("fetch_workers > 1 needs prefetch > 0")
        return open_consumer(cfg, **overrides)
    if process:
        from lifelong.stream.fetch_process import ProcessPrefetchingConsumer

        return ProcessPrefetchingConsumer(cfg, depth=prefetch, workers=workers, decode=decode,
                                          shared_memory=shared_memory, gc_freeze=gc_freeze,
                                          reuse_memory=reuse_memory, **overrides)
    if workers <= 1:
        factories: list[Factory] = [lambda: open_consumer(cfg, **overrides)]
    elif cfg.assign:
        factories = [lambda i=i: subset_consumer(cfg, i, workers, **overrides) for i in range(workers)]
    else:
        factories = [lambda: open_consumer(cfg, **overrides) for _ in range(workers)]
    return PrefetchingConsumer(factories, depth=prefetch, decode=decode)
