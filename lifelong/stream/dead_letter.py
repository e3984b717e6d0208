"""Dead letters: each bad record goes to ``<topic><suffix>`` (``.dlq`` by default) as it came, with why.

The dead-letter record keeps the original key, value and headers, and adds headers ``reason``,
``source_topic``, ``source_partition`` and ``source_offset`` (ASCII). An original header with one of those
names is kept as ``original.<name>``. ``flush()`` raises :class:`DeadLetterError` when any write since the
previous flush failed: the caller must then not commit offsets past those records (they would be lost).

A record too large for the dead-letter topic (the producer's ``max_request_size``, the topic's
``max.message.bytes``) would fail for ever, and hold every checkpoint back with it. Its dead letter goes without
the original key, value and headers, and with a header ``omitted`` that gives their sizes: the record itself is
still at ``source_topic``/``source_partition``/``source_offset``.

The producer is not idempotent: an idempotent kafka-python producer stays dead after a broker restart, and a
duplicate dead letter is harmless.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable

from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from lifelong.config import KafkaConfig
from lifelong.stream.producer import StreamProducer
from lifelong.stream.records import BadRecord, RawRecord

__all__ = ["DeadLetterError", "DeadLetterWriter", "dead_letter_headers"]

OWN_HEADERS = ("reason", "source_topic", "source_partition", "source_offset", "omitted")
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)  # the client's own check, or the broker's

log = logging.getLogger(__name__)


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
    if bad.payload_omitted:
        headers = list(rec.headers)
    else:
        headers = [(f"original.{k}" if k in OWN_HEADERS else k, v) for k, v in rec.headers]
    headers += [
        ("reason", bad.reason.encode()),
        ("source_topic", rec.topic.encode()),
        ("source_partition", str(rec.partition).encode()),
        ("source_offset", str(rec.offset).encode()),
    ]
    return headers


def without_payload(bad: BadRecord) -> BadRecord:
    """``bad`` with its key, value and headers left out, and an ``omitted`` header that gives their sizes: the dead
    letter of a record too large for the dead-letter topic."""
    rec = bad.record
    sizes = (f"key {len(rec.key or b'')} bytes, value {len(rec.value or b'')} bytes, {len(rec.headers)} headers "
             f"({sum(len(k) + len(v or b'') for k, v in rec.headers)} bytes): too large for the dead-letter topic; "
             "the record is at its source offset")
    return BadRecord(RawRecord(rec.topic, rec.partition, rec.offset, None, b"", (("omitted", sizes.encode()),),
                               rec.timestamp_ms), bad.reason, payload_omitted=True)


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
        self.written = 0  # dead letters confirmed
        self.omitted = 0  # of those, sent without their payload (too large for the dead-letter topic)

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
            self._pending.append(self._send(producer, item))
        return len(items)

    def _send(self, producer: StreamProducer, item: BadRecord) -> tuple[BadRecord, object]:
        """(the letter, its future, or the error that kept it from being sent); one too large for the producer
        is sent without its payload at once."""
        rec = item.record
        try:
            return item, producer.send(self.topic_for(rec.topic), rec.value, key=rec.key,
                                       headers=dead_letter_headers(item))
        except TOO_LARGE as exc:
            return (item, exc) if item.payload_omitted else self._send(producer, without_payload(item))
        except Exception as exc:  # noqa: BLE001 - e.g. buffer full / closed: surfaced by flush()
            return item, exc

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
        # letters the broker refused as too large for the topic: sent again without their payload
        refused = [i for i, (item, future) in enumerate(pending) if not isinstance(future, BaseException)
                   and future.is_done and future.failed() and isinstance(future.exception, TOO_LARGE)  # type: ignore[attr-defined]
                   and not item.payload_omitted]
        if refused:
            for i in refused:
                pending[i] = self._send(producer, without_payload(pending[i][0]))
            with contextlib.suppress(Exception):
                producer.flush(timeout_s)
        failed: list[BadRecord] = []
        errors: list[BaseException] = []
        omitted: list[BadRecord] = []  # arrived without their payload
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
            elif item.payload_omitted:
                omitted.append(item)
        producer.take_errors()
        ok = len(pending) - len(failed)
        self.written += ok
        if omitted:  # one line per flush: a flood of huge records must not flood the log
            self.omitted += len(omitted)
            rec = omitted[0].record
            log.warning("%d dead letter(s) sent without the record's key, value and headers, too large for the "
                        "dead-letter topic; the first, %s/%d@%d (%s), to %s: %s", len(omitted), rec.topic,
                        rec.partition, rec.offset, omitted[0].reason, self.topic_for(rec.topic),
                        dict(rec.headers)["omitted"].decode())
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
