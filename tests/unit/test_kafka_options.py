"""KafkaConfig -> kafka-python keyword arguments: what every client gets, and that kafka-python takes it."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError

from lifelong.config import KafkaConfig
from lifelong.stream.kafka_options import admin_kwargs, consumer_kwargs, producer_kwargs


def test_every_client_bounds_its_bootstrap():
    """kafka-python's clients block up to bootstrap_timeout_ms (30 s by default) in their constructor: a stop
    request while the cluster is unreachable waited that long."""
    cfg = KafkaConfig(bootstrap_timeout_ms=1500)
    for kwargs in (consumer_kwargs(cfg), producer_kwargs(cfg), admin_kwargs(cfg)):
        assert kwargs["bootstrap_timeout_ms"] == 1500
    assert KafkaConfig().bootstrap_timeout_ms == 10_000


def test_kafka_python_takes_it_and_gives_up_on_an_unreachable_cluster():
    cfg = KafkaConfig(bootstrap_servers=["127.0.0.1:1"], bootstrap_timeout_ms=500)
    with pytest.raises(KafkaTimeoutError):
        KafkaConsumer(**consumer_kwargs(cfg))
