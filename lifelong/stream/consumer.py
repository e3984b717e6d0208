"""The consumer: kafka-python underneath, raw records out, explicit offsets in, rebalances to the caller.

Design points (DESIGN.md has the measurements):

- No deserializer and no auto-commit: decoding happens in application code (a bad record must reach the
  dead-letter topic, not raise inside the client) and offsets are committed only once their effect is durable.
- Rebalance callbacks run on kafka-python 3's IO thread, where a blocking call (a commit) raises. The listener
  here only records :class:`RebalanceEvent` objects; the daemon's main loop drains and acts on them.
- A group join takes about half of ``session_timeout_ms``, and a ``poll()`` shorter than that abandons the
  join every time. Until the member is stable, ``poll`` therefore waits at least ``session_timeout_ms``.
- ``cfg.assign``: a single instance takes every partition of its topics with ``assign()`` and still commits
  under ``group_id`` (no join delay, no rebalances).
- ``lag()`` is the standard high-water mark minus position (the client's, which counts the transaction markers
  it steps over). On Tansu the high-water mark is wrong (last batch's base offset + 1), so the figure is only
  indicative there; on Kafka it is exact.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.structs import MemberState

from lifelong.config import KafkaConfig
from lifelong.stream.kafka_options import consumer_kwargs
from lifelong.stream.records import RawRecord
from lifelong.stream.socket_reads import set_recv_chunk

__all__ = ["RebalanceEvent", "StreamConsumer", "open_consumer"]

log = logging.getLogger(__name__)

TP = tuple[str, int]
Kind = Literal["assigned", "revoked", "lost"]


@dataclass(frozen=True, slots=True)
class RebalanceEvent:
    """Partitions assigned, revoked (a clean rebalance) or lost (evicted: do not commit them)."""

    kind: Kind
    partitions: frozenset[TP]

    def __iter__(self):  # ``kind, partitions = event`` works too
        return iter((self.kind, self.partitions))

    def __getitem__(self, index: int) -> Any:
        return (self.kind, self.partitions)[index]


def drain_events(queue: deque[RebalanceEvent], positions: dict[TP, int]) -> list[RebalanceEvent]:
    """The events ``queue`` holds, oldest first (a client thread may append meanwhile); the read positions of
    partitions revoked or lost are forgotten: they are no longer this consumer's to report."""
    events: list[RebalanceEvent] = []
    while True:
        try:
            events.append(queue.popleft())
        except IndexError:
            break
    for event in events:
        if event.kind != "assigned":
            for tp in event.partitions:
                positions.pop(tp, None)
    return events


class _Listener(ConsumerRebalanceListener):
    """Records events only: runs on kafka-python's IO thread, where blocking calls fail."""

    def __init__(self, sink: deque[RebalanceEvent]) -> None:
        self._sink = sink

    def _push(self, kind: Kind, partitions: Iterable[TopicPartition]) -> None:
        parts = frozenset((tp.topic, tp.partition) for tp in partitions)
        if parts or kind == "assigned":
            self._sink.append(RebalanceEvent(kind, parts))

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._push("revoked", revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._push("assigned", assigned)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self._push("lost", lost)


def _tp(key: TP | TopicPartition) -> TopicPartition:
    return key if isinstance(key, TopicPartition) else TopicPartition(key[0], int(key[1]))


class StreamConsumer:
    """Consume ``cfg.topics`` as raw records; commit and seek explicit offsets by ``(topic, partition)``.

    Example::

        consumer = StreamConsumer(settings.kafka)
        records = consumer.poll()                 # list[RawRecord]
        for event in consumer.drain_events():     # RebalanceEvent("assigned", {("t", 0)}), ...
            ...
        consumer.commit({("t", 0): records[-1].offset + 1})
    """

    def __init__(self, cfg: KafkaConfig, **overrides: Any) -> None:
        self.cfg = cfg
        self._events: deque[RebalanceEvent] = deque()
        self._positions: dict[TP, int] = {}
        self._lock = threading.Lock()
        set_recv_chunk(cfg.recv_chunk_bytes)
        self._consumer = KafkaConsumer(**consumer_kwargs(cfg, **overrides))
        self._assigned_topics: set[str] = set()
        self._next_assign_check = 0.0
        if cfg.assign:
            self._try_assign()
        else:
            self._consumer.subscribe(topics=list(cfg.topics), listener=_Listener(self._events))

    # ---- assignment ----------------------------------------------------------------------------------------
    def _try_assign(self) -> None:
        """Assign every partition of every topic whose metadata is known; retried on later polls."""
        wanted: set[TopicPartition] = set(self._consumer.assignment())
        for topic in self.cfg.topics:
            parts = self._consumer.partitions_for_topic(topic)
            if parts:
                wanted.update(TopicPartition(topic, p) for p in parts)
        current = set(self._consumer.assignment())
        if wanted != current:
            self._consumer.assign(sorted(wanted))
            added = frozenset((tp.topic, tp.partition) for tp in wanted - current)
            self._events.append(RebalanceEvent("assigned", added))
        self._assigned_topics = {tp.topic for tp in wanted}
        self._next_assign_check = time.monotonic() + (1.0 if self._missing_topics() else 30.0)

    def _missing_topics(self) -> set[str]:
        return set(self.cfg.topics) - self._assigned_topics

    def assignment(self) -> set[TP]:
        """The partitions this consumer holds now."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def stable(self) -> bool:
        """True once the group join finished (always True with ``assign``)."""
        if self.cfg.assign:
            return bool(self._consumer.assignment())
        return self._consumer.group_metadata().state == MemberState.STABLE

    def connected(self) -> bool:
        """Whether a broker connection is up (readiness)."""
        client = getattr(self._consumer, "_client", None)
        if client is None:  # pragma: no cover - kafka-python internals moved
            return True
        try:
            nodes = [getattr(n, "node_id", getattr(n, "nodeId", None)) for n in client.cluster.brokers()]
            return any(client.connected(node) for node in nodes if node is not None)
        except Exception:  # noqa: BLE001 - internals differ across versions: do not fail readiness on them
            return True

    # ---- the data path -------------------------------------------------------------------------------------
    def poll(self, timeout_ms: int | None = None) -> list[RawRecord]:
        """Up to ``max_poll_records`` records, in offset order within each partition.

        While the group join is still under way the wait is at least ``session_timeout_ms`` (see module doc).
        """
        timeout = self.cfg.poll_timeout_ms if timeout_ms is None else int(timeout_ms)
        if self.cfg.assign:
            if time.monotonic() >= self._next_assign_check:
                self._try_assign()
            if not self._consumer.assignment():
                time.sleep(min(timeout, 1000) / 1000)
                return []
        elif not self.stable():
            timeout = max(timeout, self.cfg.session_timeout_ms)
        fetched = self._consumer.poll(timeout_ms=timeout)
        out: list[RawRecord] = []
        for tp, batch in fetched.items():
            if not batch:
                continue
            topic, partition = tp.topic, tp.partition
            out.extend(
                RawRecord(topic, partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
                for r in batch
            )
            self._positions[(topic, partition)] = batch[-1].offset + 1
        return out

    def drain_events(self) -> list[RebalanceEvent]:
        """Rebalance events since the last call, oldest first."""
        return drain_events(self._events, self._positions)

    # ---- offsets -------------------------------------------------------------------------------------------
    def commit(self, offsets: Mapping[TP, int], timeout_ms: int | None = None) -> dict[TP, int]:
        """Commit ``offsets`` (the next offset to read, per partition) under ``group_id``; blocks.

        Partitions no longer assigned are left out (their new owner commits them); returns what was committed.
        Raises kafka-python's errors (e.g. CommitFailedError after a rebalance) for the caller to handle.
        """
        held = self.assignment()
        todo = {tp: int(off) for tp, off in offsets.items() if tp in held}
        if not todo:
            return {}
        self._consumer.commit({_tp(tp): OffsetAndMetadata(off, "", -1) for tp, off in todo.items()},
                              timeout_ms=timeout_ms)
        return todo

    def seek(self, offsets: Mapping[TP, int]) -> None:
        """Fetch from these offsets next (assigned partitions only; others are ignored)."""
        held = self.assignment()
        for tp, offset in offsets.items():
            if tp in held:
                self._consumer.seek(_tp(tp), int(offset))
                self._positions[tp] = int(offset)

    def seek_to_beginning(self, partitions: Iterable[TP] | None = None) -> None:
        parts = [_tp(tp) for tp in (partitions if partitions is not None else self.assignment())]
        self._consumer.seek_to_beginning(*parts)
        for tp in parts:
            self._positions.pop((tp.topic, tp.partition), None)

    def committed(self, partitions: Iterable[TP] | None = None) -> dict[TP, int | None]:
        """The group's committed offset per partition (None when nothing was committed)."""
        parts = list(partitions) if partitions is not None else sorted(self.assignment())
        return {tp: self._consumer.committed(_tp(tp)) for tp in parts}

    def position(self, partition: TP) -> int | None:
        """Next offset this consumer will return for ``partition`` (None before the first fetch)."""
        if partition in self._positions:
            return self._positions[partition]
        with contextlib.suppress(Exception):
            return self._consumer.position(_tp(partition), timeout_ms=1000)
        return None

    def lag(self) -> dict[TP, int]:
        """High-water mark minus position, per assigned partition with both known (indicative on Tansu).

        The position is the client's where it is ahead of the last record returned: kafka-python steps over a
        transaction's commit marker without returning it, so the last record's offset + 1 would leave a
        caught-up partition of a transactional topic at a lag of 1 for ever."""
        out: dict[TP, int] = {}
        for tp in self._consumer.assignment():
            key = (tp.topic, tp.partition)
            try:
                high = self._consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - revoked between the two calls
                continue
            pos = self._positions.get(key)
            if high is None or pos is None:
                continue
            with contextlib.suppress(Exception):  # known already: no request, no wait (timeout 0)
                pos = max(pos, int(self._consumer.position(tp, timeout_ms=0) or 0))
            out[key] = max(0, int(high) - int(pos))
        return out

    def close(self) -> None:
        """Leave the group (triggers a rebalance for the others) and close connections; commits nothing."""
        with contextlib.suppress(Exception):
            self._consumer.close(autocommit=False, timeout_ms=5000)

    def __enter__(self) -> StreamConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_consumer(cfg: KafkaConfig, **overrides: Any) -> Any:
    """The consumer ``cfg.client`` names: kafka-python (StreamConsumer) or confluent (same interface)."""
    if cfg.client == "confluent":
        from lifelong.stream.confluent_consumer import ConfluentStreamConsumer

        return ConfluentStreamConsumer(cfg, **overrides)
    return StreamConsumer(cfg, **overrides)
