"""The dead-letter topics, on the real broker: the daemon creates a missing one at start, before any bad record,
so a cluster that does not create topics on first write (``auto.create.topics.enable=false``, the usual production
setting) does not hold every checkpoint back at the first malformed record. With
``kafka.create_dead_letter_topics`` off, a missing one is said instead, once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import Running, daemon_settings, fed_topic

import lifelong.daemon.dead_letter_topics as dead_letter_topics
import lifelong.stream.admin as admin
from lifelong.daemon.service import Daemon
from lifelong.stream.admin import list_topics
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

N, FEATURES = 300, 16


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_missing_dead_letter_topic_is_created_at_start(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)  # good records only
    assert f"{topic}.dlq" not in list_topics(shared_broker.bootstrap)
    daemon = Daemon(daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES),
                    install_signal_handlers=False)
    with caplog.at_level(logging.INFO, logger="lifelong.daemon"), Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == N and daemon.stats.dead_letters == 0
    assert f"{topic}.dlq" in list_topics(shared_broker.bootstrap)
    assert len(messages(caplog, "created dead-letter topic")) == 1

    caplog.clear()  # a second start finds it there: nothing to create, nothing to say
    again = Daemon(daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES),
                   install_signal_handlers=False)
    with caplog.at_level(logging.INFO, logger="lifelong.daemon"), Running(again) as run:
        assert run.wait()
    assert not messages(caplog, "dead-letter topic")


def test_with_creation_off_a_missing_dead_letter_topic_is_said_once_and_left_alone(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    config = daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES,
                             kafka={"create_dead_letter_topics": False})
    daemon = Daemon(config, install_signal_handlers=False)
    with caplog.at_level(logging.WARNING, logger="lifelong.daemon"), Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == N
    said = messages(caplog, "not on the cluster (kafka.create_dead_letter_topics is off)")
    assert len(said) == 1 and f"{topic}.dlq" in said[0]
    assert f"{topic}.dlq" not in list_topics(shared_broker.bootstrap)


def test_a_creation_the_cluster_refuses_is_said_once_and_tried_again(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tansu has no ACLs: the refusal is the admin call's, as kafka-python raises it without CREATE permission."""
    from kafka.errors import TopicAuthorizationFailedError

    calls: list[set[str]] = []

    def refused(_admin: admin.ClusterAdmin, topics: set[str], **_: object) -> tuple[set[str], set[str]]:
        calls.append(set(topics))
        raise TopicAuthorizationFailedError("not authorized to create topics")

    monkeypatch.setattr(admin.ClusterAdmin, "create_missing_topics", refused)
    monkeypatch.setattr(dead_letter_topics, "RETRY_S", 0.3)
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    daemon = Daemon(daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES),
                    install_signal_handlers=False)
    with caplog.at_level(logging.ERROR, logger="lifelong.daemon"), Running(daemon) as run:
        assert run.wait()
    assert daemon.stats.events == N  # learning goes on meanwhile
    assert len(calls) >= 2 and calls[0] == {f"{topic}.dlq"}  # tried again
    said = messages(caplog, "could not be created")
    assert len(said) == 1 and "not authorized" in said[0], said
