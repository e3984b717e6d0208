"""Shared fixtures: a real embedded Kafka-protocol broker (Tansu), topics, and a test-friendly KafkaConfig.

``broker`` is per test (memory storage only grows, and fault tests kill it); ``shared_broker`` is per module
for tests that only use their own topics. ``make_topic(partitions)`` creates a uniquely named topic;
``kafka_config(bootstrap, topic, ...)`` returns a KafkaConfig with short group timeouts (a group join waits
about half of ``session_timeout_ms``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lifelong.config import KafkaConfig
from lifelong.stream.admin import create_topic
from lifelong.stream.broker import EmbeddedBroker

TEST_KAFKA = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000, "poll_timeout_ms": 5000}


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh broker for one test; killed at the end (memory storage has nothing to flush)."""
    b = EmbeddedBroker().start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture(scope="module")
def shared_broker() -> Iterator[EmbeddedBroker]:
    """One broker for a whole module: cheaper, for tests that use their own topics and never stop it."""
    b = EmbeddedBroker().start()
    try:
        yield b
    finally:
        b.kill()


def _broker_for(request: pytest.FixtureRequest) -> EmbeddedBroker:
    for name in ("broker", "shared_broker"):
        if name in request.fixturenames:
            return request.getfixturevalue(name)
    return request.getfixturevalue("shared_broker")


@pytest.fixture
def make_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    """``make_topic(partitions=1, name=None) -> name``: create a topic on the test's broker (``broker`` when
    the test uses it, else ``shared_broker``)."""

    def _make(partitions: int = 1, name: str | None = None) -> str:
        b = _broker_for(request)
        topic = name or unique_name("topic")
        create_topic(b.bootstrap, topic, partitions)
        return topic

    return _make


@pytest.fixture
def kafka_config() -> Callable[..., KafkaConfig]:
    """``kafka_config(bootstrap, topic, **overrides)``: KafkaConfig with test timeouts and a unique group."""

    def _make(bootstrap: str, topic: str | list[str], **overrides: Any) -> KafkaConfig:
        topics = [topic] if isinstance(topic, str) else topic
        values: dict[str, Any] = {
            "bootstrap_servers": [bootstrap],
            "topics": topics,
            "group_id": unique_name("group"),
            **TEST_KAFKA,
        }
        values.update(overrides)
        return KafkaConfig(**values)

    return _make
