"""Drift end to end through the real embedded broker: records in, a concept switch detected where river detects it,
and the reactions carried out on the learner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from river.drift.binary import HDDMW

from lifelong.config import DriftConfig
from lifelong.drift import DriftMonitor, Reactor
from lifelong.learner import Learner
from lifelong.models import build_model
from lifelong.strategies.base import Plugin
from lifelong.stream.codecs import decode_records
from lifelong.stream.consumer import StreamConsumer
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N, SWITCH, BATCH = 6000, 3000, 32


class BoundaryCounter(Plugin):
    name = "counter"

    def __init__(self) -> None:
        self.calls = 0

    def on_boundary(self, learner: Learner) -> None:
        self.calls += 1


def consume(consumer: StreamConsumer, n: int, num_features: int):
    """Micro-batches of BATCH decoded rows, in offset order, until ``n`` rows came back."""
    xs, ys, taken, idle = [], [], 0, 0
    while taken < n:
        records = consumer.poll(2000)
        if not records:
            idle += 1
            assert idle < 15, f"no records after {taken} of {n}"
            continue
        decoded = decode_records(records, "json", num_features=num_features, max_classes=2)
        assert not decoded.bad
        xs.append(decoded.x)
        ys.append(decoded.y)
        taken += len(decoded)
    x, y = np.concatenate(xs), np.concatenate(ys)
    for lo in range(0, n, BATCH):
        yield x[lo:lo + BATCH], y[lo:lo + BATCH]


def test_switch_detected_as_river_does_and_reactions_applied(shared_broker, make_topic, kafka_config) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    y[SWITCH:] = 1 - y[SWITCH:]  # the labels' meaning flips: a real concept drift
    topic = make_topic(1)
    feed_arrays(x, y, topic=topic, bootstrap_servers=shared_broker.bootstrap, codec="json", progress=False)

    torch.manual_seed(0)
    counter = BoundaryCounter()
    model = build_model("mlp", [4], max_classes=2, hidden=[16])
    learner = Learner(model, torch.optim.Adam(model.parameters(), lr=0.01), [counter], batch_size=BATCH)
    cfg = DriftConfig(detectors=[{"detector": "HDDMW"}, {"detector": "FHDDM"}],
                      reactions=[{"name": "boundary"}, {"name": "lr_boost", "factor": 3, "events": 500},
                                 {"name": "reset_optimizer"}], min_events_between=1000)
    monitor = DriftMonitor(cfg, num_features=4, max_classes=2, seed=0)
    raw = DriftMonitor(cfg.model_copy(update={"min_events_between": 0}), num_features=4, max_classes=2, seed=0)
    reactor = Reactor(cfg.reactions)
    consumer = StreamConsumer(kafka_config(shared_broker.bootstrap, topic, assign=True))
    errors, reported, hddmw = [], [], []
    position = 0
    try:
        for xb, yb in consume(consumer, N, 4):
            result = learner.process(xb, yb)
            detections = monitor.update(xb, yb, result.correct, result.losses, position)
            if detections:
                reactor.apply(detections, learner)
                assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.03)
                assert not learner.optimizer.state
                reported += detections
            hddmw += [d.position for d in raw.update(xb, yb, result.correct, result.losses, position)
                      if d.detector == "HDDMW/error"]
            errors += (~result.correct).astype(int).tolist()
            position += len(yb)
    finally:
        consumer.close()

    assert reported, "the switch was not detected"
    assert all(d.position >= SWITCH for d in reported), "a drift reported before the switch"
    assert reported[0].position - SWITCH < 300
    assert counter.calls == learner.boundaries == len(reported)
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.01), "the boost ended"

    direct = HDDMW()
    river_fired = []
    for i, e in enumerate(errors):
        direct.update(e)
        if direct.drift_detected:
            river_fired.append(i)
    assert hddmw == river_fired and hddmw

    restored = DriftMonitor(cfg, num_features=4, max_classes=2, seed=0)
    restored.load_state_dict(json.loads(json.dumps(monitor.state_dict())))
    assert restored.last_drift == reported[-1].position
