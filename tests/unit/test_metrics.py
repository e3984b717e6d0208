"""Exporter and windows: counters add up, gauges follow the window, the HTTP endpoints answer as documented."""

import urllib.error
import urllib.request

import numpy as np
import pytest

from lifelong.metrics.exporter import DaemonMetrics, Health, MetricsServer
from lifelong.metrics.window import PerClassWindows, RingWindow


def test_ring_window_keeps_last_values():
    window = RingWindow(4)
    window.extend(np.array([0, 0, 0, 0, 1, 1]))
    assert window.mean() == pytest.approx(0.5)
    window.extend(np.ones(10))
    assert window.mean() == 1.0
    state = window.state_dict()
    other = RingWindow(4)
    other.load_state_dict(state)
    other.extend(np.zeros(2))
    window.extend(np.zeros(2))
    assert other.mean() == window.mean() == 0.5


@pytest.mark.parametrize("size", [3, 5, 8])
def test_ring_window_restored_at_another_size_keeps_the_newest_values(size):
    """metrics.window changed between two runs: the saved ring is re-laid, newest values kept (it crashed)."""
    saved, seen = RingWindow(5), list(range(12))
    saved.extend(np.asarray(seen, dtype=float))  # wrapped: holds 7..11, oldest not at index 0
    window = RingWindow(size)
    window.load_state_dict(saved.state_dict())
    kept = seen[-min(size, 5):]
    assert len(window) == len(kept) and window.mean() == pytest.approx(np.mean(kept))
    window.extend(np.array([100.0, 200.0]))
    assert window.mean() == pytest.approx(np.mean((kept + [100, 200])[-size:]))


def test_ring_window_partial_and_wrapping_matches_numpy():
    rng = np.random.default_rng(0)
    window, seen = RingWindow(50), []
    for _ in range(30):
        chunk = rng.random(rng.integers(1, 20))
        window.extend(chunk)
        seen.extend(chunk)
        assert window.mean() == pytest.approx(np.mean(seen[-50:]))


def test_per_class_windows():
    windows = PerClassWindows(3, 10)
    windows.update(np.array([0, 0, 1, 2, 2]), np.array([True, False, True, False, False]))
    assert windows.accuracy(0) == 0.5
    assert windows.accuracy(1) == 1.0
    assert windows.accuracy(2) == 0.0


def test_counters_and_gauges():
    metrics = DaemonMetrics(max_classes=3, window=100)
    assert metrics.value("lifelong_predictions_total", {"class": "2"}) == 0
    labels = np.array([0, 1, 1, 2])
    metrics.observe_batch(labels, np.array([True, True, False, True]), np.array([0.1, 0.2, 2.0, 0.3]), 0.01)
    total = sum(metrics.value("lifelong_predictions_total", {"class": str(c)}) for c in range(3))
    assert total == 4
    assert metrics.value("lifelong_predictions_correct_total", {"class": "1"}) == 1
    assert metrics.value("lifelong_class_accuracy_ratio", {"class": "1"}) == 0.5
    assert metrics.value("lifelong_accuracy_ratio") == 0.75
    assert metrics.value("lifelong_loss") == pytest.approx(0.65)
    assert metrics.value("lifelong_train_step_seconds_count") == 1
    metrics.observe_dead_letters(["invalid_json", "invalid_json", "non_finite"])
    assert metrics.value("lifelong_dead_letter_total", {"reason": "invalid_json"}) == 2
    assert metrics.value("lifelong_events_total", {"outcome": "dead_letter"}) == 3


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_http_endpoints():
    metrics, health = DaemonMetrics(2), Health(timeout_s=0.5)
    server = MetricsServer(metrics, health, port=0).start()
    try:
        code, body = fetch(server.url + "/metrics")
        assert code == 200
        assert 'lifelong_predictions_total{class="1"} 0.0' in body
        assert fetch(server.url + "/readyz")[0] == 503
        health.set_ready(True)
        assert fetch(server.url + "/readyz")[0] == 200
        health.beat()
        assert fetch(server.url + "/livez")[0] == 200
        import time

        time.sleep(0.6)
        assert fetch(server.url + "/livez")[0] == 503
        assert fetch(server.url + "/nope")[0] == 404
    finally:
        server.stop()


def test_reason_and_detector_series_exist_from_the_start():
    metrics = DaemonMetrics(2, dead_letter_reasons=("invalid_json", "non_finite"), detectors=("ADWIN/error",))
    assert metrics.value("lifelong_dead_letter_total", {"reason": "non_finite"}) == 0
    assert metrics.value("lifelong_drift_detected_total", {"detector": "ADWIN/error"}) == 0
