"""The embedded broker: starts on a free port, speaks Kafka, stops, comes back (empty) on the same port."""

from __future__ import annotations

import socket

import pytest

from lifelong.stream.admin import create_topic, list_topics, partitions_for
from lifelong.stream.broker import BrokerError, EmbeddedBroker

pytestmark = pytest.mark.integration


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_broker_starts_creates_topics_and_restarts_on_same_port() -> None:
    with EmbeddedBroker() as broker:
        host, port = broker.bootstrap.rsplit(":", 1)
        assert int(port) == broker.port > 0
        assert create_topic(broker.bootstrap, "three", 3) is True
        assert create_topic(broker.bootstrap, "three", 3) is False
        assert partitions_for(broker.bootstrap, "three") == 3
        assert partitions_for(broker.bootstrap, "missing") is None

        broker.kill()
        assert not broker.is_running()
        assert not _accepts(host, int(port))

        broker.start()
        assert broker.port == int(port)
        assert _accepts(host, int(port))
        assert "three" not in list_topics(broker.bootstrap)  # memory storage: an outage forgets everything
    assert not broker.is_running()


def test_broker_reports_a_port_in_use_with_its_output() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        broker = EmbeddedBroker(port=taken, start_timeout_s=5)
        with pytest.raises(BrokerError) as err:
            broker.start()
        assert str(taken) in str(err.value)
        assert not broker.is_running()
