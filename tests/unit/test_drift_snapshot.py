"""Plain-data detector snapshots: exact round trips for every river detector, and nothing but river comes out."""

from __future__ import annotations

import collections
import doctest
import json
import random

import numpy as np
import pytest

import lifelong.drift.detectors
import lifelong.drift.monitor
import lifelong.drift.reactions
import lifelong.drift.snapshot
from lifelong.drift import snapshot
from lifelong.drift.detectors import DETECTORS, build_detector, feeds_correct, is_binary


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_round_trip_continues_identically(name: str) -> None:
    rng = np.random.default_rng(1)
    values = np.r_[rng.random(800) < 0.1, rng.random(800) < 0.6].astype(int).tolist()
    if feeds_correct(name):
        values = [1 - v for v in values]
    if not is_binary(name):
        values = [v + float(rng.normal(0, 0.1)) for v in values]
    det = build_detector(name, {}, path="p", seed=3)
    for v in values[:700]:
        det.update(v)
    data = snapshot.dump(det)
    twin = snapshot.load(json.loads(json.dumps(data, allow_nan=False)))
    assert type(twin) is type(det)
    flags, twin_flags = [], []
    for v in values[700:]:
        det.update(v)
        twin.update(v)
        flags.append((det.drift_detected, getattr(det, "warning_detected", None)))
        twin_flags.append((twin.drift_detected, getattr(twin, "warning_detected", None)))
    assert any(f[0] for f in flags), "the stream should make the detector fire after the snapshot"
    assert twin_flags == flags


def test_shared_references_stay_shared() -> None:
    shared = collections.deque([1, 2], maxlen=5)
    rebuilt = snapshot.load(snapshot.dump({"a": shared, "b": shared, "r": random.Random(4)}))
    assert rebuilt["a"] is rebuilt["b"] and rebuilt["a"].maxlen == 5
    assert rebuilt["r"].random() == random.Random(4).random()


@pytest.mark.parametrize("node", [
    {"~object": "os:system", "attrs": {}, "id": 0},
    {"~object": "builtins:object", "attrs": {}, "id": 0},
    {"~object": "river.drift:ADWIN.__class__", "attrs": {}, "id": 0},
    {"~object": "riverx.evil:Thing", "attrs": {}, "id": 0},
    {"~object": "river.drift.adwin:DriftDetector", "attrs": {}, "id": 0},
    {"~native": "river.drift.page_hinkley:PageHinkley", "args": {"~tuple": []}, "state": {"~bytes": ""}, "id": 0},
    {"~method": "__init__"},
    {"~float": "1e999999"},
])
def test_refuses_anything_but_river(node: dict) -> None:
    with pytest.raises(ValueError):
        snapshot.load(node)


def test_refuses_to_save_foreign_objects() -> None:
    with pytest.raises(TypeError, match="not a river object"):
        snapshot.dump({"x": np.zeros(2)})


@pytest.mark.parametrize("module", [lifelong.drift.snapshot, lifelong.drift.detectors, lifelong.drift.monitor,
                                    lifelong.drift.reactions])
def test_docstring_examples(module) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
