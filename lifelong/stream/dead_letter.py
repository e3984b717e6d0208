"""Dead letters: each bad record goes to ``<topic><suffix>`` (``.dlq`` by default) as it came, with why.

The dead-letter record keeps the original key, value and headers, and adds headers ``reason``,
``source_topic``, ``source_partition`` and ``source_offset`` (ASCII). An original header with one of those
names is kept as ``original.<name>``. ``flush()`` raises :class:`DeadLetterError` when any write since the
previous flush failed: the caller must then not commit offsets past those records (they would be lost).

The producer is not idempotent: an idempotent kafka-python producer stays dead after a broker restart, and a
duplicate dead letter is harmless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from lifelong.config import KafkaConfig
from lifelong.stream.producer import StreamProducer
from lifelong.stream.records import BadRecord

__all__ = ["DeadLetterError", "DeadLetterWriter", "dead_letter_headers"]

OWN_HEADERS = ("reason", "source_topic", "source_partition", "source_offset")


class DeadLetterError(RuntimeError):
    """Some dead letters were not written; ``failed`` lists them."""

    def __init__(self, failed: list[BadRecord], errors: list[BaseException]) -> None:
        self.failed = failed
        self.errors = errors
        first = repr(errors[0]) if errors else "unknown error"
        super().__init__(f"{len(failed)} dead letters not written; first error: {first}")


def dead_letter_headers(bad: BadRecord) -> list[tuple[str, bytes]]:
    """The original headers (renamed on a clash) followed by ``reason`` and the record's source."""
    rec = bad.record
    headers = [(f"original.{k}" if k in OWN_HEADERS else k, v) for k, v in rec.headers]
    headers += [
        ("reason", bad.reason.encode()),
        ("source_topic", rec.topic.encode()),
        ("source_partition", str(rec.partition).encode()),
        ("source_offset", str(rec.offset).encode()),
    ]
    return headers


class DeadLetterWriter:
    """Writes bad records to their dead-letter topic; ``flush()`` says whether they all arrived."""

    def __init__(self, cfg: KafkaConfig, producer_factory: Callable[[], StreamProducer] | None = None,
                 ) -> None:
        self.cfg = cfg
        self.suffix = cfg.dead_letter_suffix
        self._factory = producer_factory or (
            lambda: StreamProducer(cfg, enable_idempotence=False, linger_ms=0))
        self._producer: StreamProducer | None = None
        self._pending: list[tuple[BadRecord, object]] = []
        self.written = 0

    def topic_for(self, source_topic: str) -> str:
        return f"{source_topic}{self.suffix}"

    def _get_producer(self) -> StreamProducer:
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def write(self, bad: BadRecord | Iterable[BadRecord]) -> int:
        """Queue one or more bad records (asynchronous; ``flush()`` to be sure); returns how many."""
        items = [bad] if isinstance(bad, BadRecord) else list(bad)
        if not items:
            return 0
        try:
            producer = self._get_producer()
        except Exception as exc:  # noqa: BLE001 - no producer (cluster unreachable): flush() reports them failed
            self._pending.extend((item, exc) for item in items)
            return len(items)
        for item in items:
            rec = item.record
            try:
                future = producer.send(self.topic_for(rec.topic), rec.value, key=rec.key,
                                       headers=dead_letter_headers(item))
            except Exception as exc:  # noqa: BLE001 - e.g. buffer full / closed: surfaced by flush()
                future = exc
            self._pending.append((item, future))
        return len(items)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every queued dead letter; raise DeadLetterError if any failed. Returns how many arrived.

        After a failure the producer is replaced, so the caller can retry the same records with ``write``.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            producer = self._get_producer()
        except Exception as exc:  # noqa: BLE001 - the caller must get every pending letter back to retry
            raise DeadLetterError([item for item, _ in pending], [exc]) from exc
        with contextlib.suppress(Exception):  # a flush timeout shows up as undone futures below
            producer.flush(timeout_s)
        failed: list[BadRecord] = []
        errors: list[BaseException] = []
        for item, future in pending:
            if isinstance(future, BaseException):
                failed.append(item)
                errors.append(future)
                continue
            if not future.is_done:  # type: ignore[attr-defined]
                failed.append(item)
                errors.append(TimeoutError(f"dead letter not acknowledged within {timeout_s} s"))
            elif future.failed():  # type: ignore[attr-defined]
                failed.append(item)
                errors.append(future.exception)  # type: ignore[attr-defined]
        producer.take_errors()
        ok = len(pending) - len(failed)
        self.written += ok
        if failed:
            self._recreate()
            raise DeadLetterError(failed, errors)
        return ok

    def _recreate(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout_s=1)
        self._producer = None

    def close(self, timeout_s: float = 5.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout_s=timeout_s)
            self._producer = None
