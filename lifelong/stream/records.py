"""Plain record types shared by the stream layer and the daemon (numpy only: no Kafka, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as fetched from Kafka, before any decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be used, and why; it goes to the dead-letter topic as it came."""

    record: RawRecord
    reason: str


@dataclass(slots=True)
class DecodedBatch:
    """Good records of one poll as arrays, in fetch order, plus the bad ones.

    ``x`` has shape (n, *feature_shape), float32; ``y`` is int64. ``topics``/``partitions``/``offsets`` say where
    each row came from; ``next_offsets`` is the offset to commit per partition once this batch's effect is durable
    (it covers bad records too, so a dead-lettered record is never fetched again).
    """

    x: np.ndarray
    y: np.ndarray
    topics: list[str]
    partitions: np.ndarray
    offsets: np.ndarray
    bad: list[BadRecord] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def total(self) -> int:
        """Good plus bad records."""
        return len(self) + len(self.bad)
