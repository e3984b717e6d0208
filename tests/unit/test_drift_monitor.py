"""DriftMonitor against river itself, across micro-batch sizes and across a checkpoint restore."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lifelong.config import DriftConfig
from lifelong.drift import DriftMonitor, detector_seed
from lifelong.drift.detectors import DETECTORS, feeds_correct
from lifelong.drift.signals import InputSignal

sys.path.insert(0, str(Path(__file__).parent))
from drift_streams import CLASSES, FEATURES, Stream, make_stream, run_monitor  # noqa: E402


def river_positions(spec: dict, stream: Stream, seed: int = 0) -> list[tuple[int, int | None]]:
    """The same detector run directly in river over the same signal: (position, class or channel) per flag."""
    name, signal = spec["detector"], spec.get("signal", "error")
    params = {k: v for k, v in spec.items() if k not in ("detector", "signal", "input", "dims", "block")}
    channels: list[tuple[int | None, np.ndarray, np.ndarray]] = []
    error = (~stream.correct).astype(int)
    if feeds_correct(name):
        error = 1 - error
    if signal == "error":
        channels = [(None, np.arange(len(stream)), error)]
    elif signal == "class_error":
        channels = [(c, np.flatnonzero(stream.y == c), error[stream.y == c]) for c in range(CLASSES)]
    elif signal == "loss":
        channels = [(None, np.arange(len(stream)), stream.losses)]
    else:
        reduce = spec.get("input", "mean")
        block = spec.get("block", 32 if reduce == "mean" else 1)
        z = InputSignal(FEATURES, reduce=reduce, dims=spec.get("dims", 4), block=1,
                        seed=detector_seed(seed, 0, None)).transform(stream.x)
        m = len(z) // block
        means = z[: m * block].reshape(m, block, -1).sum(axis=1) / block
        ends = np.arange(1, m + 1) * block - 1
        channels = [(j, ends, means[:, j]) for j in range(z.shape[1])]
    out = []
    for key, positions, values in channels:
        kwargs = dict(params)
        if "seed" in DETECTORS[name].__init__.__code__.co_varnames and "seed" not in kwargs:
            kwargs["seed"] = detector_seed(seed, 0, key)
        det = DETECTORS[name](**kwargs)
        for pos, value in zip(positions.tolist(), values.tolist(), strict=True):
            det.update(value)
            if det.drift_detected:
                out.append((pos, key))
    return sorted(out)


SPECS = [
    {"detector": "DDM"},
    {"detector": "EDDM"},
    {"detector": "HDDMA"},
    {"detector": "HDDMW", "two_sided_test": True},
    {"detector": "FHDDM"},
    {"detector": "ADWIN", "clock": 1},
    {"detector": "PageHinkley", "signal": "loss", "threshold": 20.0},
    {"detector": "KSWIN", "signal": "loss", "alpha": 1e-4},
    {"detector": "DDM", "signal": "class_error"},
    {"detector": "ADWIN", "signal": "input", "clock": 1, "block": 8},
    {"detector": "KSWIN", "signal": "input", "input": "projection", "dims": 3, "block": 2, "alpha": 1e-3},
]


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s['detector']}-{s.get('signal', 'error')}" for s in SPECS])
def test_positions_equal_a_direct_river_run(spec: dict) -> None:
    n = 1200 if spec["detector"] == "KSWIN" else 3000
    stream = make_stream("all", 7, n, n // 2)
    if spec.get("signal") == "class_error":
        stream = make_stream("class_error", 7, n, n // 2)
    expected = river_positions(spec, stream)
    assert expected, "the stream should make river fire at least once"
    cfg = DriftConfig(detectors=[spec], min_events_between=0)
    for batch in (1, 37, 256) if n <= 1200 else (1, 37, 256, n):
        found = sorted((d.position, d.cls if d.cls is not None else d.channel)
                       for d in run_monitor(cfg, stream, batch=batch))
        assert found == expected, f"batch {batch}"


FULL = DriftConfig(
    detectors=[
        {"detector": "DDM", "warm_start": 100},
        {"detector": "HDDMW", "signal": "class_error"},
        {"detector": "ADWIN", "signal": "loss"},
        {"detector": "PageHinkley", "signal": "input", "threshold": 10.0, "block": 7},
        {"detector": "KSWIN", "signal": "input", "input": "projection", "dims": 2, "block": 5, "alpha": 1e-4},
        {"detector": "FHDDM", "name": "fast"},
    ],
    min_events_between=0,
    warnings=True,
    accuracy_window=300,
)


def _keys(detections: list) -> list[tuple]:
    return [(d.detector, d.position, d.warning, d.cls, d.channel, d.accuracy_before) for d in detections]


@pytest.mark.parametrize("codec", ["json", "torch"])
def test_restored_monitor_fires_exactly_where_an_uninterrupted_one_does(codec: str) -> None:
    stream = make_stream("all", 11, 3000, 1500)
    uninterrupted = run_monitor(FULL, stream, batch=50)
    assert {d.detector for d in uninterrupted if d.position >= 1500 and not d.warning} >= {
        "DDM/error", "ADWIN/loss", "PageHinkley/input", "KSWIN/input", "fast"}

    first = DriftMonitor(FULL, num_features=FEATURES, max_classes=CLASSES, seed=0)
    before = run_monitor(FULL, stream.__class__(stream.x[:1203], stream.y[:1203], stream.correct[:1203],
                                                stream.losses[:1203]), batch=50, monitor=first)
    state = first.state_dict()
    if codec == "json":
        state = json.loads(json.dumps(state, allow_nan=False))
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    second = DriftMonitor(FULL, num_features=FEATURES, max_classes=CLASSES, seed=0)
    second.load_state_dict(state)
    after = run_monitor(FULL, stream, batch=50, monitor=second, start=1203)
    assert _keys(before + after) == _keys(uninterrupted)
    assert second.counts == {label: sum(1 for d in uninterrupted if d.detector == label and not d.warning)
                             for label in second.counts}


def test_restore_skips_a_detector_whose_config_changed() -> None:
    stream = make_stream("error", 2, 1000, None)
    cfg = DriftConfig(detectors=[{"detector": "ADWIN"}, {"detector": "DDM"}])
    monitor = DriftMonitor(cfg, num_features=FEATURES, max_classes=CLASSES, seed=0)
    run_monitor(cfg, stream, monitor=monitor)
    changed = DriftConfig(detectors=[{"detector": "ADWIN", "delta": 0.01}, {"detector": "DDM"}])
    restored = DriftMonitor(changed, num_features=FEATURES, max_classes=CLASSES, seed=0)
    restored.load_state_dict(monitor.state_dict())
    assert restored.watches[0].detectors == {}
    assert restored.watches[1].detectors[None]._p.n == 1000


def test_merging_reports_drifts_at_least_min_events_between_apart() -> None:
    specs = [{"detector": "ADWIN", "clock": 1}, {"detector": "HDDMW"}, {"detector": "ADWIN", "signal": "loss"},
             {"detector": "HDDMW", "signal": "class_error"}]
    stream = make_stream("all", 3, 6000, 3000)
    raw = run_monitor(DriftConfig(detectors=specs, min_events_between=0), stream)
    monitor = DriftMonitor(DriftConfig(detectors=specs, min_events_between=800), num_features=FEATURES,
                           max_classes=CLASSES)
    merged = run_monitor(monitor.cfg, stream, monitor=monitor)
    assert len(raw) > len(merged) >= 1
    positions = [d.position for d in merged]
    assert all(b - a >= 800 for a, b in zip(positions, positions[1:], strict=False))
    assert {(d.detector, d.position) for d in merged} <= {(d.detector, d.position) for d in raw}
    assert sum(monitor.counts.values()) == len(raw)
    assert sum(monitor.suppressed.values()) == len(raw) - len(merged)


def test_reset_detectors_is_independent_of_micro_batching() -> None:
    cfg = DriftConfig(detectors=[{"detector": "ADWIN", "clock": 1}, {"detector": "PageHinkley", "signal": "loss"}],
                      reactions=[{"name": "reset_detectors"}], min_events_between=0)
    stream = make_stream("all", 5, 3000, 1500)
    runs = [[(d.detector, d.position) for d in run_monitor(cfg, stream, batch=b)] for b in (1, 64, 3000)]
    assert runs[0] and runs[0] == runs[1] == runs[2]
    # after the first drift every detector restarts, so the second one cannot fire on the same evidence
    plain = run_monitor(DriftConfig(detectors=cfg.detectors, min_events_between=0), stream)
    assert runs[0] != [(d.detector, d.position) for d in plain]


def test_log_lines_give_accuracy_before_and_after(caplog: pytest.LogCaptureFixture) -> None:
    stream = make_stream("error", 8, 4000, 2000)
    cfg = DriftConfig(detectors=[{"detector": "HDDMW"}], min_events_between=5000, accuracy_window=500,
                      reactions=[{"name": "boundary"}, {"name": "alert"}])
    with caplog.at_level(logging.INFO, logger="lifelong.drift"):
        detections = run_monitor(cfg, stream, batch=64)
    assert len(detections) == 1
    p = detections[0].position
    detected = [r for r in caplog.records if r.getMessage().startswith("drift detected")]
    recovered = [r for r in caplog.records if r.getMessage().startswith("drift recovery")]
    assert len(detected) == 1 and len(recovered) == 1
    fields = detected[0].drift
    assert fields["position"] == p and fields["signal"] == "error" and fields["detector"] == "HDDMW/error"
    assert fields["reactions"] == "boundary,alert"
    assert fields["accuracy_before"] == pytest.approx(stream.correct[p - 499:p + 1].mean())
    assert recovered[0].drift["accuracy_after"] == pytest.approx(stream.correct[p + 1:p + 501].mean())
    assert detections[0].accuracy_after == recovered[0].drift["accuracy_after"]
    assert f"position={p}" in detected[0].getMessage()


def test_config_errors_name_the_key_path() -> None:
    with pytest.raises(ValueError, match=r"^drift\.detectors\[1\]\.delt: unknown parameter of ADWIN"):
        DriftMonitor(DriftConfig(detectors=[{"detector": "DDM"}, {"detector": "ADWIN", "delt": 0.1}]),
                     num_features=2, max_classes=2)
    with pytest.raises(ValueError, match=r"^drift\.detectors\[0\]: EDDM\(alpha=0\.5, beta=0\.9\)"):
        DriftMonitor(DriftConfig(detectors=[{"detector": "EDDM", "alpha": 0.5, "beta": 0.9}]),
                     num_features=2, max_classes=2)
    with pytest.raises(ValueError, match="0/1 stream"):
        DriftConfig(detectors=[{"detector": "DDM", "signal": "loss"}])
    with pytest.raises(ValueError, match="only apply to signal input"):
        DriftConfig(detectors=[{"detector": "ADWIN", "signal": "loss", "block": 4}])
    with pytest.raises(ValueError, match="unique"):
        DriftConfig(detectors=[{"detector": "ADWIN"}, {"detector": "ADWIN", "delta": 0.1}])


def test_batch_arrays_must_line_up() -> None:
    monitor = DriftMonitor(DriftConfig(detectors=[{"detector": "DDM"}]), num_features=2, max_classes=2)
    with pytest.raises(ValueError, match="differ in length"):
        monitor.update(np.zeros((3, 2)), np.zeros(3, int), np.ones(2, bool), np.zeros(3), 0)


def test_an_empty_batch_changes_nothing() -> None:
    cfg = DriftConfig(detectors=[{"detector": "ADWIN", "signal": "input"}, {"detector": "DDM"}])
    monitor = DriftMonitor(cfg, num_features=FEATURES, max_classes=CLASSES)
    before = json.dumps(monitor.state_dict())
    assert monitor.update(np.zeros((0, FEATURES)), np.zeros(0, int), np.zeros(0, bool), np.zeros(0), 10) == []
    assert json.dumps(monitor.state_dict()) == before
