"""Reactions seen on a real Learner: boundaries reach the plugins (EWC consolidates, LwF snapshots), the learning
rate is boosted and then restored, optimizer state is cleared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lifelong.config import DriftConfig, ReactionSpec
from lifelong.drift import Detection, DriftMonitor, Reactor
from lifelong.learner import Learner
from lifelong.models import build_model
from lifelong.strategies.base import Plugin
from lifelong.strategies.ewc import EWC
from lifelong.strategies.lwf import LwF


class BoundaryCounter(Plugin):
    """An EWC-like stub: counts consolidations."""

    name = "counter"

    def __init__(self) -> None:
        self.consolidations = 0

    def on_boundary(self, learner: Learner) -> None:
        self.consolidations += 1


def concept_stream(seed: int, n: int, switch: int) -> tuple[np.ndarray, np.ndarray]:
    """Label = sign of the first feature; after ``switch`` the labels are swapped (an abrupt real drift)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    y[switch:] = 1 - y[switch:]
    return x, y


def make_learner(plugins: list[Plugin], lr: float = 0.01) -> Learner:
    torch.manual_seed(0)
    model = build_model("mlp", [4], max_classes=2, hidden=[16])
    return Learner(model, torch.optim.Adam(model.parameters(), lr=lr), plugins, batch_size=32)


REACTIONS = [ReactionSpec(name="boundary"), ReactionSpec(name="lr_boost", factor=4, events=320),
             ReactionSpec(name="reset_optimizer"), ReactionSpec(name="alert")]


def test_reactions_reach_the_learner_and_its_plugins() -> None:
    counter, ewc, lwf = BoundaryCounter(), EWC(lam=1.0), LwF()
    learner = make_learner([counter, ewc, lwf])
    cfg = DriftConfig(detectors=[{"detector": "HDDMW"}], reactions=REACTIONS, min_events_between=1000)
    monitor = DriftMonitor(cfg, num_features=4, max_classes=2, seed=0)
    reactor = Reactor(cfg.reactions)
    x, y = concept_stream(0, 4000, 2000)
    lrs, drifts, boost_seen = [], [], []
    for lo in range(0, len(y), 32):
        result = learner.process(x[lo:lo + 32], y[lo:lo + 32])
        detections = monitor.update(x[lo:lo + 32], y[lo:lo + 32], result.correct, result.losses, lo)
        if detections:
            assert learner.optimizer.state, "Adam has moments before the reset"
            assert drifts or (not ewc.anchor and lwf.teacher is None), "nothing consolidated before a drift"
            done = reactor.apply(detections, learner)
            assert done == ["boundary", "lr_boost(factor=4.0, events=320)", "reset_optimizer", "alert"]
            assert not learner.optimizer.state, "reset_optimizer clears Adam's moments"
            assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.04)
            assert ewc.anchor and lwf.teacher is not None, "EWC consolidated, LwF took its snapshot"
            drifts += detections
            boost_seen.append(learner.events_seen)
        lrs.append((learner.events_seen, learner.optimizer.param_groups[0]["lr"]))
    assert len(drifts) >= 1 and all(d.position >= 2000 for d in drifts)
    assert drifts[0].position - 2000 < 300
    assert counter.consolidations == learner.boundaries == len(drifts) == reactor.counts["boundary"]
    boosted_at = boost_seen[0]
    boosted = [lr for seen, lr in lrs if boosted_at <= seen < boosted_at + 320]
    restored = [lr for seen, lr in lrs if boosted_at + 320 <= seen < (boost_seen[1:] or [10**9])[0]]
    assert boosted and all(lr == pytest.approx(0.04) for lr in boosted)
    assert restored and all(lr == pytest.approx(0.01) for lr in restored)


def test_boundary_is_skipped_when_boundaries_do_not_come_from_drift() -> None:
    counter = BoundaryCounter()
    learner = make_learner([counter])
    learner.process(*concept_stream(1, 64, 64))
    reactor = Reactor(REACTIONS, boundary_from_drift=False)
    done = reactor.apply([Detection("HDDMW/error", "HDDMW", "error", position=64)], learner)
    assert counter.consolidations == 0 and learner.boundaries == 0
    assert "boundary" not in done and learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.04)


def test_warnings_and_empty_lists_trigger_nothing() -> None:
    counter = BoundaryCounter()
    learner = make_learner([counter])
    reactor = Reactor(REACTIONS)
    assert reactor.apply([], learner) == []
    assert reactor.apply([Detection("DDM/error", "DDM", "error", position=5, warning=True)], learner) == []
    assert counter.consolidations == 0 and learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_several_drifts_in_one_batch_react_once() -> None:
    counter = BoundaryCounter()
    learner = make_learner([counter])
    detections = [Detection("a", "DDM", "error", position=5), Detection("b", "ADWIN", "loss", position=9)]
    Reactor([ReactionSpec(name="boundary")]).apply(detections, learner)
    assert counter.consolidations == 1


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "lr_boost", "factr": 2}, r"^drift\.reactions\[1\]\.factr: unknown parameter of lr_boost"),
    ({"name": "lr_boost", "factor": -1}, r"^drift\.reactions\[1\]\.factor: must be > 0"),
    ({"name": "lr_boost", "events": 2.5}, r"^drift\.reactions\[1\]\.events: expected int"),
    ({"name": "boundary", "now": True}, r"^drift\.reactions\[1\]\.now: unknown parameter of boundary"),
])
def test_bad_reaction_parameters_name_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reactor([ReactionSpec(name="alert"), ReactionSpec(**spec)])
