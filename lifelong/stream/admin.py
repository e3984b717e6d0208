"""Topic administration: the daemon's questions to the cluster on one kept client (:class:`ClusterAdmin`), and
one-shot helpers for tools and tests, among them creating a topic with an explicit partition count (auto-created
topics get the broker's default, 4 on Tansu, which makes per-partition order and key placement hard to reason
about)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import TopicAlreadyExistsError

from lifelong.config import KafkaConfig
from lifelong.stream.kafka_options import admin_kwargs

__all__ = ["ClusterAdmin", "TopicInfo", "create_topic", "describe_topics", "list_topics", "partitions_for",
           "topic_ids", "wait_for_topic"]

#: What a broker without topic IDs (Kafka before 2.8) answers in their place.
NO_TOPIC_ID = "00000000-0000-0000-0000-000000000000"


def _admin(bootstrap_servers: str | Iterable[str], **client_kwargs: Any) -> KafkaAdminClient:
    servers = [bootstrap_servers] if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    return KafkaAdminClient(**{"client_id": "lifelong-admin", **client_kwargs, "bootstrap_servers": servers})


class TopicInfo(NamedTuple):
    partitions: int
    topic_id: str | None  # None from a broker without topic IDs (Kafka before 2.8)


def _topic_infos(described: Iterable[dict[str, Any]], names: Iterable[str]) -> dict[str, TopicInfo]:
    """What kafka-python's ``describe_topics`` answered of ``names``, without the topics it answered with an
    error code (an unknown topic, on the brokers that do not raise for one)."""
    wanted, out = set(names), {}
    for item in described:
        name, topic_id = item.get("name") or item.get("topic"), item.get("topic_id")
        if name in wanted and not item.get("error_code"):
            known = str(topic_id) if topic_id and str(topic_id) != NO_TOPIC_ID else None
            out[name] = TopicInfo(len(item.get("partitions") or []), known)
    return out


class ClusterAdmin:
    """The questions a daemon asks the cluster (topic IDs every 15 s, missing topics, dead-letter topics, the log
    start of a partition whose records start above the position) on one
    admin client with ``cfg``'s servers and security settings, every request bounded by ``timeout_ms``.

    Why one, kept: a new client per question costs a connection and its own round trips
    (benchmarks/admin_questions.py on the embedded broker: 10.9 ms per topic-ID question against 2.8 ms on a
    client already open, 3.8x), and with SASL_SSL a TLS handshake and an authentication each time. It is opened
    at the first question; a question that fails closes it, so the next one opens a fresh client (after an
    outage the cluster may be another one). Idle, its IO thread costs no measurable CPU. Not thread-safe: one
    caller (the daemon's main loop)."""

    def __init__(self, cfg: KafkaConfig, timeout_ms: int = 5000) -> None:
        self.cfg, self.timeout_ms = cfg, timeout_ms
        self._client: KafkaAdminClient | None = None

    @property
    def open(self) -> bool:
        return self._client is not None

    @contextlib.contextmanager
    def _session(self) -> Iterator[KafkaAdminClient]:
        if self._client is None:
            kwargs = admin_kwargs(self.cfg, request_timeout_ms=self.timeout_ms)
            self._client = _admin(kwargs.pop("bootstrap_servers"), **kwargs)
        try:
            yield self._client
        except Exception:
            self.close()
            raise

    def list_topics(self) -> set[str]:
        with self._session() as admin:
            return set(admin.list_topics())

    def missing_topics(self, topics: Iterable[str]) -> set[str]:
        """Those of ``topics`` the cluster does not have (or does not show these credentials)."""
        return set(topics) - self.list_topics()

    def describe_topics(self, topics: Iterable[str]) -> dict[str, TopicInfo]:
        """Partition count and topic ID of each of ``topics`` the cluster has (topics it lacks are left out)."""
        with self._session() as admin:
            present = sorted(set(admin.list_topics()) & set(topics))  # describing a missing topic raises on some
            described = admin.describe_topics(present) if present else []
        return _topic_infos(described, present)

    def topic_ids(self, topics: Iterable[str]) -> dict[str, str | None]:
        """Kafka's topic ID of each of ``topics`` the cluster has: a UUID that a topic deleted and created again
        under the same name does not keep (None from a broker without topic IDs, Kafka before 2.8). Topics the
        cluster lacks are left out."""
        return {topic: info.topic_id for topic, info in self.describe_topics(topics).items()}

    def log_start_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The earliest offset each partition still holds (its log start): offsets below it were deleted
        (retention, a delete-records request). A partition the cluster does not know raises."""
        specs = {TopicPartition(topic, partition): OffsetSpec.EARLIEST for topic, partition in partitions}
        if not specs:
            return {}
        with self._session() as admin:
            found = admin.list_partition_offsets(specs, timeout_ms=self.timeout_ms)
        return {(tp.topic, tp.partition): int(answer.offset) for tp, answer in found.items()}

    def create_missing_topics(self, topics: Iterable[str], *, create: bool = True) -> tuple[set[str], set[str]]:
        """Of ``topics``, those the cluster lacks, created with the broker's default partitions and replication
        unless ``create`` is False: returns (created, still missing). A creation the cluster refuses raises its
        error (no permission, a policy): the caller says what that means."""
        with self._session() as admin:
            missing = set(topics) - set(admin.list_topics())
            if not missing or not create:
                return set(), missing
            with contextlib.suppress(TopicAlreadyExistsError):  # another member of the group created it meanwhile
                admin.create_topics({topic: {"num_partitions": -1, "replication_factor": -1}
                                     for topic in sorted(missing)}, timeout_ms=self.timeout_ms)
            return missing, set()

    def close(self) -> None:
        """Close the client (a close that fails changes nothing for the caller); the next question opens one."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> ClusterAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_topics(bootstrap_servers: str | Iterable[str], **client_kwargs: Any) -> set[str]:
    admin = _admin(bootstrap_servers, **client_kwargs)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def describe_topics(cfg: KafkaConfig, topics: Iterable[str], timeout_ms: int = 5000) -> dict[str, TopicInfo]:
    """:meth:`ClusterAdmin.describe_topics` on a client of its own."""
    with ClusterAdmin(cfg, timeout_ms) as admin:
        return admin.describe_topics(topics)


def topic_ids(cfg: KafkaConfig, topics: Iterable[str], timeout_ms: int = 5000) -> dict[str, str | None]:
    """:meth:`ClusterAdmin.topic_ids` on a client of its own."""
    with ClusterAdmin(cfg, timeout_ms) as admin:
        return admin.topic_ids(topics)


def partitions_for(bootstrap_servers: str | Iterable[str], topic: str, **client_kwargs: Any) -> int | None:
    """Number of partitions of ``topic``, or None when it does not exist."""
    admin = _admin(bootstrap_servers, **client_kwargs)
    try:
        described = admin.describe_topics([topic])
    except Exception:  # an unknown topic raises on some brokers, returns an error code on others
        return None
    finally:
        admin.close()
    info = _topic_infos(described, [topic]).get(topic)
    return (info.partitions or None) if info is not None else None


def create_topic(bootstrap_servers: str | Iterable[str], topic: str, partitions: int = 1, *,
                 exist_ok: bool = True, configs: dict[str, str] | None = None, **client_kwargs: Any) -> bool:
    """Create ``topic`` with ``partitions`` partitions; False when it already existed (and ``exist_ok``)."""
    admin = _admin(bootstrap_servers, **client_kwargs)
    try:
        spec: dict[str, Any] = {"num_partitions": partitions, "replication_factor": 1}
        if configs:
            spec["configs"] = configs
        try:
            admin.create_topics({topic: spec}, timeout_ms=10_000)
        except TopicAlreadyExistsError:
            if not exist_ok:
                raise
            return False
        return True
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def wait_for_topic(bootstrap_servers: str | Iterable[str], topic: str, timeout_s: float = 10.0,
                   **client_kwargs: Any) -> None:
    """Block until ``topic`` is listed by the broker (metadata can lag a creation briefly)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if topic in list_topics(bootstrap_servers, **client_kwargs):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic!r} did not appear within {timeout_s} s")
