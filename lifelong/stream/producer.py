"""A thin producer over kafka-python: send raw bytes with headers, remember failures, recreate after outages.

kafka-python 3's producer is idempotent by default, and an idempotent producer stays dead after a broker
restart (``UnknownProducerIdError``); ``recreate()`` replaces the client. Producers that must survive outages
without a restart of their own (the dead-letter writer) pass ``enable_idempotence=False``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from lifelong.config import KafkaConfig
from lifelong.stream.kafka_options import producer_kwargs

__all__ = ["StreamProducer"]

Headers = Sequence[tuple[str, bytes]]


def _force_close(producer: KafkaProducer) -> None:
    """Stop the sender thread (it fails the batches it still holds), then close what is left."""
    sender = getattr(producer, "_sender", None)  # kafka-python internals: if they moved, leave the client be
    with contextlib.suppress(Exception):
        if sender is not None:
            sender.force_close()
            sender.join(2.0)
        producer.close(timeout=0)


class StreamProducer:
    """``send`` returns kafka-python's future; errors are also collected in ``errors`` for a caller that only
    checks after ``flush()`` (the feed, the dead-letter writer)."""

    def __init__(self, cfg: KafkaConfig, **overrides: Any) -> None:
        self.cfg = cfg
        self.overrides = overrides
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.sent = 0
        self._producer = self._create()

    def _create(self) -> KafkaProducer:
        return KafkaProducer(**producer_kwargs(self.cfg, **self.overrides))

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)

    def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Headers | None = None,
             partition: int | None = None) -> Any:
        """Queue one record; the returned future resolves to its RecordMetadata (or fails)."""
        future = self._producer.send(topic, value=value, key=key, headers=list(headers) if headers else None,
                                     partition=partition)
        future.add_errback(self._on_error)
        self.sent += 1
        return future

    def partitions_for(self, topic: str) -> set[int]:
        """Partition ids of ``topic`` (fetches metadata; auto-creates the topic when the broker allows it)."""
        return set(self._producer.partitions_for(topic) or ())

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued record is acknowledged or has failed."""
        self._producer.flush(timeout=timeout_s)

    def take_errors(self) -> list[BaseException]:
        """The send failures since the last call."""
        with self._lock:
            errors, self.errors = self.errors, []
        return errors

    def recreate(self) -> None:
        """Drop the client and make a new one (after a broker restart or a deleted topic)."""
        self.close(timeout_s=1)
        self._producer = self._create()

    def close(self, timeout_s: float | None = 5.0) -> None:
        """Close, waiting ``timeout_s`` for queued records; those still unsent then fail (their futures say so).

        kafka-python's ``close(timeout)`` raises KafkaTimeoutError from its flush when records are still queued
        (a broker gone) and never reaches its own force close: the client stayed open, its network thread ran on,
        and its ``__del__`` raised the same error at garbage collection. Here the sender is then closed by force
        (failing what it held) and the client closed after it."""
        try:
            self._producer.close(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - records still queued: abandon them
            _force_close(self._producer)

    def __enter__(self) -> StreamProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
