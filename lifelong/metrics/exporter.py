"""Prometheus metrics of the daemon (names and labels: see DESIGN.md) and the HTTP server that serves them.

One ``DaemonMetrics`` per process, on its own registry so tests can run several side by side. Per-class children
are created up front for every class below ``max_classes`` so each series starts at 0 and ``rate()`` works from the
first scrape. The same server answers ``/livez`` (the main loop iterated recently) and ``/readyz`` (model loaded
and partitions assigned).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from lifelong.metrics.window import PerClassWindows, RingWindow

TRAIN_STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DaemonMetrics:
    """Every metric the daemon exports, plus the sliding windows behind the ratio gauges."""

    def __init__(self, max_classes: int, window: int = 1000, registry: CollectorRegistry | None = None,
                 dead_letter_reasons: tuple[str, ...] = (), detectors: tuple[str, ...] = (),
                 offset_skip_reasons: tuple[str, ...] = (), topics: tuple[str, ...] = ()):
        self.registry = registry or CollectorRegistry()
        self.max_classes = max_classes
        r = self.registry
        self.events = Counter("lifelong_events", "Events handled, by outcome.", ["outcome"], registry=r)
        self.predictions = Counter("lifelong_predictions", "Prequential predictions, by true class.", ["class"],
                                   registry=r)
        self.correct = Counter("lifelong_predictions_correct", "Correct prequential predictions, by true class.",
                               ["class"], registry=r)
        self.class_accuracy = Gauge("lifelong_class_accuracy_ratio",
                                    "Prequential accuracy over the last window of each class's events.", ["class"],
                                    registry=r)
        self.accuracy = Gauge("lifelong_accuracy_ratio", "Prequential accuracy over the last window of events.",
                              registry=r)
        self.loss = Gauge("lifelong_loss", "Mean prequential cross-entropy over the last window of events.",
                          registry=r)
        self.drift = Counter("lifelong_drift_detected", "Drift detections, by detector.", ["detector"], registry=r)
        self.last_drift = Gauge("lifelong_last_drift_timestamp_seconds", "Unix time of the last drift detection.",
                                registry=r)
        self.train_step = Histogram("lifelong_train_step_seconds", "Wall time to train on one micro-batch.",
                                    buckets=TRAIN_STEP_BUCKETS, registry=r)
        self.lag = Gauge("lifelong_consumer_lag_messages", "Records behind the partition's end.",
                         ["topic", "partition"], registry=r)
        self.replay = Gauge("lifelong_replay_buffer_samples", "Samples held by the replay memory, by class.",
                            ["class"], registry=r)
        self.dead_letters = Counter("lifelong_dead_letter", "Records sent to the dead-letter topic, by reason.",
                                    ["reason"], registry=r)
        self.checkpoint_time = Gauge("lifelong_checkpoint_timestamp_seconds",
                                     "Unix time the daemon's state was last known durable: a checkpoint written, "
                                     "or the newest one found to hold all it has learned (an idle daemon).",
                                     registry=r)
        self.checkpoint_failures = Counter("lifelong_checkpoint_failures", "Checkpoints that could not be "
                                           "written (disk full or failing); their offsets were not committed.",
                                           registry=r)
        self.checkpoint_bytes = Gauge("lifelong_checkpoint_bytes", "Size of the last checkpoint file.", registry=r)
        self.skipped_steps = Counter("lifelong_skipped_steps", "Training steps skipped, by reason.", ["reason"],
                                     registry=r)
        self.boundaries = Counter("lifelong_boundaries", "Boundaries passed to the strategies, by source.",
                                  ["source"], registry=r)
        self.offsets_skipped = Counter(
            "lifelong_offsets_skipped", "Offsets fetched but not learned, by reason: already_learned (fetched again "
            "below the daemon's position: a restart, a rebalance, a log that went back), no_record (transaction "
            "markers, compaction) or deleted (below the log start: removed by retention or a delete-records request "
            "before they were learned; lost).", ["reason"], registry=r)
        self.dead_letter_payloads_omitted = Counter(
            "lifelong_dead_letter_payloads_omitted", "Dead letters sent without the record's key, value and headers "
            "(too large for the dead-letter topic; the record stays at its source offset).", registry=r)
        self.topic_recreations = Counter(
            "lifelong_topic_recreations", "Topics found deleted and created again (another topic ID): each new log "
            "is learned from its start.", ["topic"], registry=r)
        self.broker_errors = Counter("lifelong_broker_errors", "Kafka errors survived by retrying.", registry=r)
        self.fetcher_restarts = Counter("lifelong_fetcher_restarts", "Fetch processes or threads found dead and "
                                        "rebuilt at the learned positions.", registry=r)
        self.ready_gauge = Gauge("lifelong_ready", "1 while the daemon is ready (model loaded, partitions assigned).",
                                 registry=r)
        self.build = Info("lifelong_build", "Version, strategy and device of this daemon.", registry=r)

        for cls in range(max_classes):
            label = str(cls)
            self.predictions.labels(label)
            self.correct.labels(label)
            self.replay.labels(label).set(0)
        for outcome in ("trained", "dead_letter"):
            self.events.labels(outcome)
        for reason in ("non_finite", "oom"):
            self.skipped_steps.labels(reason)
        for reason in offset_skip_reasons:
            self.offsets_skipped.labels(reason)
        for reason in dead_letter_reasons:
            self.dead_letters.labels(reason)
        for detector in detectors:
            self.drift.labels(detector)
        for topic in topics:
            self.topic_recreations.labels(topic)
        # children looked up once: a labels() call per class per micro-batch cost ~2 us an event
        self._predicted = [self.predictions.labels(str(c)) for c in range(max_classes)]
        self._correct = [self.correct.labels(str(c)) for c in range(max_classes)]
        self._class_gauges: dict[int, Any] = {}  # created on a class's first event: no 0% for unseen classes
        self._trained = self.events.labels("trained")
        self._class_windows = PerClassWindows(max_classes, window)
        self._acc_window = RingWindow(window)
        self._loss_window = RingWindow(window)

    def set_build_info(self, version: str, strategy: str, device: str) -> None:
        self.build.info({"version": version, "strategy": strategy, "device": device})

    def observe_batch(self, labels: np.ndarray, correct: np.ndarray, losses: np.ndarray, train_seconds: float) -> None:
        """Count one micro-batch's prequential results and refresh the window gauges."""
        self._trained.inc(len(labels))
        counts = np.bincount(labels, minlength=self.max_classes)
        hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=self.max_classes)
        present = np.nonzero(counts)[0].tolist()
        for cls in present:
            self._predicted[cls].inc(int(counts[cls]))
            if hits[cls]:
                self._correct[cls].inc(int(hits[cls]))
        self._class_windows.update(labels, correct)
        for cls in present:
            gauge = self._class_gauges.get(cls)
            if gauge is None:
                gauge = self._class_gauges[cls] = self.class_accuracy.labels(str(cls))
            gauge.set(self._class_windows.accuracy(cls))
        self._acc_window.extend(correct)
        self.accuracy.set(self._acc_window.mean())
        finite = losses[np.isfinite(losses)]
        if finite.size:
            self._loss_window.extend(finite)
            self.loss.set(self._loss_window.mean())
        self.train_step.observe(train_seconds)

    def observe_dead_letters(self, reasons: list[str]) -> None:
        if reasons:
            self.events.labels("dead_letter").inc(len(reasons))
        for reason in reasons:
            self.dead_letters.labels(reason).inc()

    def observe_drift(self, detector: str, when: float | None = None) -> None:
        self.drift.labels(detector).inc()
        self.last_drift.set(when if when is not None else time.time())

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        for (topic, partition), value in lag.items():
            self.lag.labels(topic, str(partition)).set(value)

    def set_replay(self, samples_per_class: dict[int, int]) -> None:
        for cls, count in samples_per_class.items():
            self.replay.labels(str(cls)).set(count)

    @property
    def window_accuracy(self) -> float:
        return self._acc_window.mean()

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of a sample (tests and the summary line)."""
        result = self.registry.get_sample_value(name, labels or {})
        return float("nan") if result is None else float(result)

    # ---- state: counters and windows survive restarts so dashboards show no reset ----------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "class_windows": self._class_windows.state_dict(),
            "acc_window": self._acc_window.state_dict(),
            "loss_window": self._loss_window.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._class_windows.load_state_dict(state["class_windows"])
        self._acc_window.load_state_dict(state["acc_window"])
        self._loss_window.load_state_dict(state["loss_window"])
        if len(self._acc_window):
            self.accuracy.set(self._acc_window.mean())
        for cls in range(self.max_classes):
            if len(self._class_windows.windows[cls]):
                self.class_accuracy.labels(str(cls)).set(self._class_windows.accuracy(cls))


class Health:
    """Liveness (the loop iterated within ``timeout_s``) and readiness (set by the daemon)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._last_beat = time.monotonic()
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self._ready = ready
        self._reason = reason

    @property
    def live(self) -> bool:
        return time.monotonic() - self._last_beat < self.timeout_s

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def reason(self) -> str:
        return self._reason


class MetricsServer:
    """``/metrics``, ``/livez`` and ``/readyz`` on a background thread; other paths answer 404."""

    def __init__(self, metrics: DaemonMetrics, health: Health, host: str = "127.0.0.1", port: int = 9108):
        registry, state = metrics.registry, health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path == "/livez":
                    ok = state.live
                    self._send(200 if ok else 503, b"ok\n" if ok else b"main loop stalled\n")
                elif path == "/readyz":
                    ok = state.ready
                    self._send(200 if ok else 503, b"ok\n" if ok else f"not ready: {state.reason}\n".encode())
                else:
                    self._send(404, b"not found: try /metrics, /livez or /readyz\n")

            def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logs
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
