"""DeadLetterWriter against a producer whose broker refuses large records (what Kafka does past a topic's
``max.message.bytes``; the embedded broker sets no such limit: tests/integration/test_dead_letter_too_large.py
covers the producer's own limit on the real broker)."""

from __future__ import annotations

import logging

import pytest
from kafka.errors import MessageSizeTooLargeError

from lifelong.config import KafkaConfig
from lifelong.stream.dead_letter import DeadLetterError, DeadLetterWriter
from lifelong.stream.records import BadRecord, RawRecord


class Answered:
    """A future already answered: acknowledged, or failed with ``exception``."""

    def __init__(self, exception: BaseException | None = None) -> None:
        self.is_done, self.exception = True, exception

    def failed(self) -> bool:
        return self.exception is not None


class LimitedBroker:
    """A producer whose broker refuses records over ``limit`` bytes (key + value + headers) when they arrive."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written: list[tuple[str, bytes | None, bytes | None, list]] = []

    def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: list | None = None) -> Answered:
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers or [])
        if size > self.limit:
            return Answered(MessageSizeTooLargeError(f"{size} bytes"))
        self.written.append((topic, value, key, list(headers or [])))
        return Answered()

    def flush(self, timeout_s: float | None = None) -> None:
        pass

    def take_errors(self) -> list[BaseException]:
        return []

    def close(self, timeout_s: float | None = None) -> None:
        pass


def bad(offset: int, value: bytes, key: bytes | None = None, headers: tuple = ()) -> BadRecord:
    return BadRecord(RawRecord("events", 0, offset, key, value, headers), "wrong_feature_count")


def test_a_letter_the_broker_refuses_as_too_large_goes_again_without_its_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = LimitedBroker(limit=4096)
    writer = DeadLetterWriter(KafkaConfig(), producer_factory=lambda: broker)
    writer.write([bad(7, b"\x00" * 10_000, key=b"k1", headers=(("trace", b"t-7"),)), bad(8, b"small")])
    with caplog.at_level(logging.WARNING, logger="lifelong.stream.dead_letter"):
        assert writer.flush() == 2
    assert (writer.written, writer.omitted) == (2, 1)  # counted once it arrived (the daemon's metric follows it)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "events/0@7" in said[0] and "value 10000 bytes" in said[0], said
    by_offset = {dict(h)["source_offset"]: (value, key, dict(h)) for _, value, key, h in broker.written}
    value, key, headers = by_offset[b"7"]
    assert value == b"" and key is None and "trace" not in headers
    assert headers["reason"] == b"wrong_feature_count" and headers["source_topic"] == b"events"
    assert headers["omitted"].startswith(b"key 2 bytes, value 10000 bytes, 1 headers (8 bytes)")
    assert by_offset[b"8"][0] == b"small" and "omitted" not in by_offset[b"8"][2]  # the small one whole


def test_many_letters_without_payload_in_one_flush_are_said_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    writer = DeadLetterWriter(KafkaConfig(), producer_factory=lambda: LimitedBroker(limit=4096))
    writer.write([bad(offset, b"\x00" * 10_000) for offset in range(50)])
    with caplog.at_level(logging.WARNING, logger="lifelong.stream.dead_letter"):
        assert writer.flush() == 50
    said = [r.getMessage() for r in caplog.records]
    assert writer.omitted == 50 and len(said) == 1 and said[0].startswith("50 dead letter(s)"), said


def test_a_letter_refused_even_without_its_payload_is_handed_back() -> None:
    broker = LimitedBroker(limit=10)  # not even the headers fit
    writer = DeadLetterWriter(KafkaConfig(), producer_factory=lambda: broker)
    writer.write(bad(7, b"\x00" * 100))
    with pytest.raises(DeadLetterError) as refused:
        writer.flush()
    assert [letter.record.offset for letter in refused.value.failed] == [7]
    assert refused.value.failed[0].payload_omitted and broker.written == []
    assert writer.omitted == 0  # not arrived: not counted
