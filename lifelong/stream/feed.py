"""Produce arrays (a dataset or a scenario) into a Kafka topic: the source of every demo, test and benchmark.

Example::

    from lifelong.stream.feed import feed_arrays
    report = feed_arrays(x, y, topic="mnist", bootstrap_servers="127.0.0.1:9092", codec="f32", rate=2000)
    print(report.records, report.records_per_s)

The topic is created when missing with an explicit partition count (1 by default, so the stream's order is the
scenario's order and task boundaries fall at known offsets); an auto-created topic would get the broker's
default (4 on Tansu).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from kafka.errors import KafkaError

from lifelong.config import KafkaConfig
from lifelong.stream.admin import create_topic, partitions_for
from lifelong.stream.codecs import Codec, JsonCodec, get_codec
from lifelong.stream.kafka_options import common_kwargs
from lifelong.stream.producer import StreamProducer

__all__ = ["FeedError", "FeedReport", "feed_arrays"]

KeyMode = Literal["index", "label", "none"]


class FeedError(RuntimeError):
    """Some records could not be produced."""


@dataclass
class FeedReport:
    """What a feed did: how many records and bytes, how fast, into which partitions."""

    topic: str
    codec: str
    records: int
    bytes: int
    seconds: float
    partitions: int
    created_topic: bool
    keys: str
    rate_limit: float | None = None
    base_offset: int | None = None  # offset of the first record (its partition: base_partition)
    base_partition: int | None = None

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["records_per_s"] = self.records_per_s
        return out


def _key(mode: KeyMode, index: int, label: int) -> bytes | None:
    if mode == "index":
        return str(index).encode()
    if mode == "label":
        return str(label).encode()
    return None


def _admin_kwargs(cfg: KafkaConfig) -> dict[str, Any]:
    return {k: v for k, v in common_kwargs(cfg).items() if k not in {"bootstrap_servers", "client_id"}}


def ensure_topic(cfg: KafkaConfig, topic: str, partitions: int | None) -> tuple[bool, int]:
    """Create ``topic`` when missing (``partitions`` or 1); return (created, partition count)."""
    existing = partitions_for(cfg.bootstrap_servers, topic, **_admin_kwargs(cfg))
    if existing is not None:
        return False, existing
    count = partitions or 1
    created = create_topic(cfg.bootstrap_servers, topic, count, **_admin_kwargs(cfg))
    if not created:  # created by someone else in between
        return False, partitions_for(cfg.bootstrap_servers, topic, **_admin_kwargs(cfg)) or count
    return True, count


def feed_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    topic: str,
    bootstrap_servers: str | list[str] | None = None,
    kafka: KafkaConfig | None = None,
    codec: str | Codec = "f32",
    rate: float | None = None,
    keys: KeyMode = "index",
    partitions: int | None = None,
    progress: bool = True,
    start_index: int = 0,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 120.0,
) -> FeedReport:
    """Encode ``x[i], y[i]`` with ``codec`` and produce them, in order, into ``topic``.

    ``rate`` paces the stream in events per second (None: as fast as the producer goes). ``keys`` is the
    record key: the sample index (``start_index + i``), its label, or none. JSON records also carry ``"id"``.
    Raises FeedError when any record was not acknowledged.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
    if keys not in ("index", "label", "none"):
        raise ValueError(f"keys must be index, label or none, not {keys!r}")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (or None for as fast as possible)")
    if kafka is None:
        if bootstrap_servers is None:
            raise ValueError("give bootstrap_servers or a KafkaConfig")
        kafka = KafkaConfig(bootstrap_servers=bootstrap_servers)
    elif bootstrap_servers is not None:
        kafka = kafka.model_copy(update={"bootstrap_servers": KafkaConfig(
            bootstrap_servers=bootstrap_servers).bootstrap_servers})
    codec_obj = get_codec(codec) if isinstance(codec, str) else codec
    try:
        created, count = ensure_topic(kafka, topic, partitions)
        producer = StreamProducer(kafka)
    except KafkaError as exc:
        raise FeedError(f"cannot reach Kafka at {', '.join(kafka.bootstrap_servers)} ({exc}): is a broker running "
                        "there? (`lifelong broker` starts one)") from exc

    n = len(y)
    labels = np.asarray(y).astype(np.int64, copy=False)
    is_json = isinstance(codec_obj, JsonCodec)
    total_bytes = 0
    bar = _progress_bar(topic, n) if progress else None
    first: Any = None
    start = time.perf_counter()
    try:
        if bar is not None:
            bar[0].start()
        step = max(1, min(1000, n // 100 or 1))
        for i in range(n):
            label = int(labels[i])
            index = start_index + i
            if is_json:
                value, headers = codec_obj.encode(x[i], label, record_id=index)  # type: ignore[call-arg]
            else:
                value, headers = codec_obj.encode(x[i], label)
            future = producer.send(topic, value, key=_key(keys, index, label), headers=headers or None)
            if i == 0:
                first = future
            total_bytes += len(value)
            if rate is not None:
                ahead = start + (i + 1) / rate - time.perf_counter()
                if ahead > 0.001:
                    time.sleep(ahead)
            if (i + 1) % step == 0 or i + 1 == n:
                if bar is not None:
                    bar[0].update(bar[1], completed=i + 1)
                if on_progress is not None:
                    on_progress(i + 1)
        producer.flush(flush_timeout_s)
    finally:
        if bar is not None:
            bar[0].stop()
        errors = producer.take_errors()
        producer.close()
    seconds = time.perf_counter() - start
    if errors:
        raise FeedError(f"{len(errors)} of {n} records to {topic!r} failed; first: {errors[0]!r}")
    meta = first.get(timeout=1) if first is not None else None
    return FeedReport(topic=topic, codec=codec_obj.name, records=n, bytes=total_bytes, seconds=seconds,
                      partitions=count, created_topic=created, keys=keys, rate_limit=rate,
                      base_offset=getattr(meta, "offset", None),
                      base_partition=getattr(meta, "partition", None))


def _progress_bar(topic: str, total: int) -> tuple[Any, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn(f"[bold]feed[/bold] {topic}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        transient=False,
    )
    task = progress.add_task("feed", total=total)
    return progress, task
