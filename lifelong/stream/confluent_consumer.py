"""The same consumer interface as :class:`lifelong.stream.consumer.StreamConsumer`, over confluent-kafka
(librdkafka): about 3x kafka-python's rate on 3 KB records. Selected with ``kafka.client: confluent``; needs
the ``fast`` extra (``pip install 'lifelong[fast]'``).

librdkafka runs rebalance callbacks inside ``consume()`` on the calling thread, so blocking work would be safe
there; they still only record :class:`RebalanceEvent` objects, so the daemon handles both clients alike.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from lifelong.config import KafkaConfig
from lifelong.stream.consumer import TP, Kind, RebalanceEvent, drain_events
from lifelong.stream.records import RawRecord

__all__ = ["ConfluentStreamConsumer", "confluent_config"]

log = logging.getLogger(__name__)


def confluent_config(cfg: KafkaConfig, **overrides: Any) -> dict[str, Any]:
    """librdkafka properties equivalent to :func:`lifelong.stream.kafka_options.consumer_kwargs`."""
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(cfg.bootstrap_servers),
        "client.id": "lifelong-consumer",
        "group.id": cfg.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": cfg.auto_offset_reset,
        "session.timeout.ms": cfg.session_timeout_ms,
        "heartbeat.interval.ms": cfg.heartbeat_interval_ms,
        "max.poll.interval.ms": cfg.max_poll_interval_ms,
        "fetch.max.bytes": cfg.fetch_max_bytes,
        "max.partition.fetch.bytes": cfg.max_partition_fetch_bytes,
        "receive.message.max.bytes": max(cfg.fetch_max_bytes + 1024 * 1024, 100_000_000),
        "reconnect.backoff.max.ms": cfg.reconnect_backoff_max_ms,
        # librdkafka stops fetching a partition for this long once its local queue passes queued.min.messages or
        # queued.max.messages.kbytes; its default of 1000 ms left a consumer that decodes a little slower than
        # the broker delivers idle most of the time (measured: 61,139 records/s at 0.47 of a core, against
        # 122,813/s at 10 ms on the same topic)
        "fetch.queue.backoff.ms": 10,
        "allow.auto.create.topics": False,
        "security.protocol": cfg.security_protocol.lower(),
    }
    if cfg.group_instance_id:
        conf["group.instance.id"] = cfg.group_instance_id
    if cfg.sasl_mechanism:
        conf["sasl.mechanism"] = cfg.sasl_mechanism
    if cfg.sasl_plain_username is not None:
        conf["sasl.username"] = cfg.sasl_plain_username
    if cfg.sasl_plain_password is not None:
        conf["sasl.password"] = cfg.sasl_plain_password.get_secret_value()
    for name, key in (("ssl_cafile", "ssl.ca.location"), ("ssl_certfile", "ssl.certificate.location"),
                      ("ssl_keyfile", "ssl.key.location")):
        value = getattr(cfg, name)
        if value is not None:
            conf[key] = str(value)
    if cfg.security_protocol in {"SSL", "SASL_SSL"}:
        conf["ssl.endpoint.identification.algorithm"] = "https" if cfg.ssl_check_hostname else "none"
    conf.update(overrides)
    return conf


class ConfluentStreamConsumer:
    """Drop-in for StreamConsumer: ``poll``, ``commit``, ``seek``, ``assignment``, ``committed``, ``lag``,
    ``drain_events``, ``close``."""

    def __init__(self, cfg: KafkaConfig, **overrides: Any) -> None:
        self.cfg = cfg
        self._events: deque[RebalanceEvent] = deque()
        self._positions: dict[TP, int] = {}
        self._assigned: set[TP] = set()
        self._consumer = Consumer(confluent_config(cfg, **overrides))
        self._next_assign_check = 0.0
        if cfg.assign:
            self._try_assign()
        else:
            self._consumer.subscribe(list(cfg.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_lost)

    # ---- rebalance callbacks (run inside consume()) -------------------------------------------------------
    def _push(self, kind: Kind, partitions: Iterable[TopicPartition]) -> None:
        parts = frozenset((tp.topic, tp.partition) for tp in partitions)
        if kind == "assigned":
            self._assigned |= parts
        else:
            self._assigned -= parts
        if parts or kind == "assigned":
            self._events.append(RebalanceEvent(kind, parts))

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._push("assigned", partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._push("revoked", partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._push("lost", partitions)

    def _try_assign(self) -> None:
        wanted = set(self._assigned)
        try:
            meta = self._consumer.list_topics(timeout=5)
        except KafkaException as exc:
            log.debug("metadata not available yet: %s", exc)
            meta = None
        if meta is not None:
            for topic in self.cfg.topics:
                info = meta.topics.get(topic)
                if info is not None and info.error is None:
                    wanted.update((topic, p) for p in info.partitions)
        added = wanted - self._assigned
        if added:
            # OFFSET_INVALID: start from the group's committed offset, else auto.offset.reset.
            self._consumer.assign([TopicPartition(t, p, OFFSET_INVALID) for t, p in sorted(wanted)])
            self._assigned = wanted
            self._events.append(RebalanceEvent("assigned", frozenset(added)))
        missing = set(self.cfg.topics) - {t for t, _ in wanted}
        self._next_assign_check = time.monotonic() + (1.0 if missing else 30.0)

    # ---- interface -----------------------------------------------------------------------------------------
    def assignment(self) -> set[TP]:
        return set(self._assigned)

    def stable(self) -> bool:
        return bool(self._assigned)

    def connected(self) -> bool:
        return True

    def poll(self, timeout_ms: int | None = None) -> list[RawRecord]:
        timeout = (self.cfg.poll_timeout_ms if timeout_ms is None else int(timeout_ms)) / 1000
        if self.cfg.assign and time.monotonic() >= self._next_assign_check:
            self._try_assign()
        # consume(n, t) waits until n messages or t: take what librdkafka has queued now, and block only
        # for the first message when nothing is (low latency at low rates, full batches at high ones).
        limit = self.cfg.max_poll_records
        messages = self._consumer.consume(num_messages=limit, timeout=0)
        if not messages:
            messages = self._consumer.consume(num_messages=1, timeout=timeout)
            if messages and limit > 1:
                messages += self._consumer.consume(num_messages=limit - 1, timeout=0)
        out: list[RawRecord] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
                continue
            ts_type, ts = msg.timestamp()
            out.append(RawRecord(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                                 tuple(msg.headers() or ()), ts if ts_type else None))
        for record in out:
            self._positions[(record.topic, record.partition)] = record.offset + 1
        return out

    def drain_events(self) -> list[RebalanceEvent]:
        return drain_events(self._events, self._positions)

    def commit(self, offsets: Mapping[TP, int], timeout_ms: int | None = None) -> dict[TP, int]:
        """Synchronous commit; librdkafka bounds it with its own request timeouts (``timeout_ms`` is accepted for
        interface parity)."""
        todo = {tp: int(off) for tp, off in offsets.items() if tp in self._assigned}
        if todo:
            self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in todo.items()],
                                  asynchronous=False)
        return todo

    def seek(self, offsets: Mapping[TP, int]) -> None:
        for tp, offset in offsets.items():
            if tp not in self._assigned:
                continue
            target = TopicPartition(tp[0], tp[1], int(offset))
            try:
                self._consumer.seek(target)
            except KafkaException:
                # librdkafka refuses to seek a partition it has not started fetching: re-assign at the offset.
                if self.cfg.assign:
                    current = [TopicPartition(t, p, OFFSET_INVALID)
                               for t, p in sorted(self._assigned) if (t, p) != tp]
                    self._consumer.assign([*current, target])
                else:
                    self._consumer.incremental_unassign([TopicPartition(tp[0], tp[1])])
                    self._consumer.incremental_assign([target])
            self._positions[tp] = int(offset)

    def committed(self, partitions: Iterable[TP] | None = None) -> dict[TP, int | None]:
        parts = list(partitions) if partitions is not None else sorted(self._assigned)
        if not parts:
            return {}
        result = self._consumer.committed([TopicPartition(t, p) for t, p in parts], timeout=10)
        return {(r.topic, r.partition): (r.offset if r.offset >= 0 else None) for r in result}

    def position(self, partition: TP) -> int | None:
        return self._positions.get(partition)

    def lag(self) -> dict[TP, int]:
        """High-water mark minus position; the client's position where it is ahead of the last message
        returned (librdkafka steps over transaction markers, as kafka-python does: see StreamConsumer.lag)."""
        out: dict[TP, int] = {}
        for tp in sorted(self._assigned):
            pos = self._positions.get(tp)
            if pos is None:
                continue
            with contextlib.suppress(KafkaException):
                ahead = self._consumer.position([TopicPartition(*tp)])[0].offset
                pos = max(pos, ahead) if ahead >= 0 else pos
            with contextlib.suppress(KafkaException):
                _low, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
                if high >= 0:
                    out[tp] = max(0, high - pos)
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._consumer.close()

    def __enter__(self) -> ConfluentStreamConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
