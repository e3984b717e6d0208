"""Each configured detector fires soon after an abrupt switch and stays quiet on a stationary stream.

Parameters and error rates were chosen from 100-200 seeds per case (no false alarm, every switch found, delays well
under the bounds asserted here); the tests run a few fixed seeds of the same streams.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lifelong.config import DriftConfig

sys.path.insert(0, str(Path(__file__).parent))
from drift_streams import make_stream, run_monitor  # noqa: E402

# (detector, signal, parameters, stream kind, length, switch, max delay in events)
CASES = [
    ("DDM", "error", {"warm_start": 500, "drift_threshold": 5.0}, "error", 4000, 2000, 600),
    ("EDDM", "error", {"warm_start": 300, "alpha": 0.85, "beta": 0.7}, "error_high", 4000, 2000, 1500),
    ("HDDMA", "error", {"drift_confidence": 1e-5}, "error", 4000, 2000, 400),
    ("HDDMW", "error", {}, "error", 4000, 2000, 300),
    ("FHDDM", "error", {}, "error", 4000, 2000, 300),
    ("ADWIN", "error", {}, "error", 4000, 2000, 300),
    ("PageHinkley", "error", {}, "error", 4000, 2000, 400),
    ("ADWIN", "loss", {}, "loss", 4000, 2000, 300),
    ("PageHinkley", "loss", {}, "loss", 4000, 2000, 300),
    ("KSWIN", "loss", {"alpha": 1e-6, "window_size": 200, "stat_size": 60}, "loss", 2000, 1000, 300),
    ("ADWIN", "input", {"clock": 4}, "input", 4000, 2000, 800),
    ("PageHinkley", "input", {"threshold": 10.0}, "input", 4000, 2000, 400),
    ("KSWIN", "input", {"input": "projection", "dims": 4, "block": 4, "alpha": 1e-6}, "input", 2000, 1000, 300),
    ("DDM", "class_error", {"warm_start": 300, "drift_threshold": 5.0}, "class_error", 4000, 2000, 600),
    ("HDDMW", "class_error", {}, "class_error", 4000, 2000, 300),
]


@pytest.mark.parametrize(("detector", "signal", "params", "kind", "n", "switch", "bound"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_fires_after_switch_and_not_on_stationary(detector: str, signal: str, params: dict, kind: str, n: int,
                                                  switch: int, bound: int) -> None:
    cfg = DriftConfig(detectors=[{"detector": detector, "signal": signal, **params}], min_events_between=0)
    seeds = (0, 1) if detector == "KSWIN" else (0, 1, 2)
    for seed in seeds:
        drifting = run_monitor(cfg, make_stream(kind, seed, n, switch), seed=seed)
        positions = [d.position for d in drifting]
        assert positions, f"seed {seed}: no detection after the switch at {switch}"
        assert positions[0] >= switch, f"seed {seed}: false alarm at {positions[0]} before the switch"
        assert positions[0] - switch <= bound, f"seed {seed}: delay {positions[0] - switch} > {bound}"
        assert all(d.signal == signal and d.algorithm == detector and not d.warning for d in drifting)
        stationary = run_monitor(cfg, make_stream(kind, 1000 + seed, n, None), seed=seed)
        assert stationary == [], f"seed {seed}: false alarms at {[d.position for d in stationary]}"


def test_class_error_names_the_class_that_drifted() -> None:
    cfg = DriftConfig(detectors=[{"detector": "HDDMW", "signal": "class_error"}], min_events_between=0)
    detections = run_monitor(cfg, make_stream("class_error", 3, 4000, 2000))
    assert detections and {d.cls for d in detections} == {1}
    assert detections[0].channel is None


def test_input_detection_names_a_shifted_feature() -> None:
    cfg = DriftConfig(detectors=[{"detector": "PageHinkley", "signal": "input", "threshold": 10.0}],
                      min_events_between=0)
    detections = run_monitor(cfg, make_stream("input", 4, 4000, 2000))
    assert detections and {d.channel for d in detections} <= {0, 1, 2}


def test_input_signal_sees_the_change_before_the_error_rate_moves() -> None:
    """Inputs move, labels still follow the old error rate: only the input detector can notice."""
    cfg = DriftConfig(detectors=[{"detector": "PageHinkley", "signal": "input", "threshold": 10.0},
                                 {"detector": "HDDMW", "signal": "error"}], min_events_between=0)
    detections = run_monitor(cfg, make_stream("input", 5, 4000, 2000))
    assert [d.detector for d in detections] and {d.detector for d in detections} == {"PageHinkley/input"}


def test_warning_zone_is_reported_before_the_drift_when_asked() -> None:
    spec = {"detector": "DDM", "signal": "error", "warm_start": 500, "drift_threshold": 5.0}
    stream = make_stream("error", 0, 4000, 2000)
    with_warnings = run_monitor(DriftConfig(detectors=[spec], min_events_between=0, warnings=True), stream)
    without = run_monitor(DriftConfig(detectors=[spec], min_events_between=0), stream)
    warnings = [d for d in with_warnings if d.warning]
    drifts = [d for d in with_warnings if not d.warning]
    assert warnings and drifts
    assert [d.position for d in drifts] == [d.position for d in without]
    assert warnings[0].position <= drifts[0].position
    assert all(not d.warning for d in without)
