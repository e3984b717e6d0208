"""DriftMonitor: river detectors on the configured signals, fed sample by sample in stream order.

The daemon calls ``update`` after every ``Learner.process`` with the batch and what the learner made of it. Each
configured detector gets its signal's values one at a time, exactly as a direct river loop over the same values
would, so a detection's position is the one river itself would report (tests and ``benchmarks/drift.py`` check
this). Detections are then merged: a drift closer than ``min_events_between`` to the last reported one (from any
detector or class) is counted but not reported, so one concept change triggers one reaction.

``reset_detectors`` in the configured reactions is carried out here, at the detection's own position (every
detector restarts from the next sample), not after the batch: that keeps detections independent of how the
stream happens to be cut into micro-batches. The other reactions belong to :class:`lifelong.drift.reactions.Reactor`.

Each reported detection is logged once, as a structured line (``extra={"drift": {...}}``) with the accuracy over the
``accuracy_window`` events before it; when that many events have passed after it, a second line gives the accuracy
after, so the log shows whether the model recovered.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from river.base import DriftDetector

from lifelong.config import DetectorSpec, DriftConfig
from lifelong.drift import snapshot
from lifelong.drift.detectors import build_detector, check_params, detector_class, feeds_correct
from lifelong.drift.signals import ClassErrorSignal, ErrorSignal, InputSignal, LossSignal, Signal

log = logging.getLogger("lifelong.drift")

STATE_VERSION = 1
MAX_PENDING = 64


@dataclass
class Detection:
    """One drift (or warning-zone entry) reported by the monitor.

    ``detector`` is the configured label (``name``, else ``<river class>/<signal>``): unique per monitor, it is the
    ``detector`` label of ``lifelong_drift_detected_total``. ``algorithm`` is the river class. ``position`` is the
    stream index of the sample at which river raised the flag. ``cls`` is the true class for ``class_error``,
    ``channel`` the feature or projected dimension for ``input``.
    """

    detector: str
    algorithm: str
    signal: str
    position: int
    warning: bool = False
    cls: int | None = None
    channel: int | None = None
    timestamp: float = 0.0
    accuracy_before: float | None = None
    accuracy_after: float | None = None

    def fields(self) -> dict[str, Any]:
        return asdict(self)


def detector_seed(seed: int, index: int, key: int | None) -> int:
    """The seed of detector ``index`` for channel ``key`` (KSWIN), unless its spec sets one: fixed and documented."""
    return seed + 1000 * index + (0 if key is None else key + 1)


class _Watch:
    """One DetectorSpec: its signal and its detectors (one per channel), warning zones and counters."""

    def __init__(self, spec: DetectorSpec, index: int, *, num_features: int, max_classes: int, seed: int):
        self.spec = spec
        self.index = index
        self.label = spec.label
        self.path = f"drift.detectors[{index}]"
        self.params = spec.params()
        self.seed = seed
        detector_class(spec.detector, path=self.path)
        check_params(spec.detector, self.params, path=self.path)
        flip = feeds_correct(spec.detector)
        self.signal: Signal
        if spec.signal == "error":
            self.signal = ErrorSignal(feed_correct=flip)
        elif spec.signal == "class_error":
            self.signal = ClassErrorSignal(max_classes, feed_correct=flip)
        elif spec.signal == "loss":
            self.signal = LossSignal()
        else:
            self.signal = InputSignal(num_features, reduce=spec.input, dims=spec.dims, block=spec.block,
                                      seed=detector_seed(seed, index, None))
        self.detectors: dict[int | None, DriftDetector] = {}
        self.warning: set[int | None] = set()
        self.build(None if spec.signal in ("error", "loss") else 0)  # fail at start on bad parameter values

    def build(self, key: int | None) -> DriftDetector:
        return build_detector(self.spec.detector, self.params, path=self.path,
                              seed=detector_seed(self.seed, self.index, key))

    def detector(self, key: int | None) -> DriftDetector:
        det = self.detectors.get(key)
        if det is None:
            det = self.detectors[key] = self.build(key)
        return det

    def reset(self) -> None:
        self.detectors.clear()
        self.warning.clear()

    def fingerprint(self) -> str:
        return json.dumps([self.spec.model_dump(mode="json"), self.seed], sort_keys=True)

    def run(self, channels: list[tuple[int | None, np.ndarray, list[Any]]], start: int) -> list[tuple[int, int, bool]]:
        """Feed every value at batch offset >= ``start``; return (offset, key order, warning) for each flag."""
        fired: list[tuple[int, int, bool]] = []
        for key, offsets, values in channels:
            det = self.detector(key)
            first = int(np.searchsorted(offsets, start))
            has_warning = hasattr(det, "warning_detected")
            warned = key in self.warning
            update = det.update
            for offset, value in zip(offsets[first:].tolist(), values[first:], strict=True):
                update(value)
                if det.drift_detected:
                    fired.append((offset, -1 if key is None else key, False))
                    warned = False
                elif has_warning and det.warning_detected != warned:
                    warned = not warned
                    if warned:
                        fired.append((offset, -1 if key is None else key, True))
            if warned:
                self.warning.add(key)
            else:
                self.warning.discard(key)
        return fired


class DriftMonitor:
    """All configured detectors of one daemon; ``update`` after each micro-batch, ``state_dict`` in checkpoints.

    >>> from lifelong.config import DriftConfig
    >>> cfg = DriftConfig(detectors=[{"detector": "DDM", "signal": "error"}], min_events_between=0)
    >>> monitor = DriftMonitor(cfg, num_features=2, max_classes=2, seed=0)
    >>> correct = np.r_[np.ones(2000, bool), np.zeros(200, bool)]
    >>> x, y, losses = np.zeros((2200, 2)), np.zeros(2200, int), np.zeros(2200)
    >>> [(d.detector, d.position) for d in monitor.update(x, y, correct, losses, position=0)]
    [('DDM/error', 2000)]
    """

    def __init__(self, cfg: DriftConfig, *, num_features: int, max_classes: int, seed: int = 0):
        self.cfg = cfg
        self.num_features = num_features
        self.max_classes = max_classes
        self.seed = seed
        self.watches = [
            _Watch(spec, i, num_features=num_features, max_classes=max_classes, seed=seed)
            for i, spec in enumerate(cfg.detectors)
        ]
        self.reactions = [r.name for r in cfg.reactions]
        self.reset_on_drift = "reset_detectors" in self.reactions
        self.counts = {w.label: 0 for w in self.watches}
        self.suppressed = {w.label: 0 for w in self.watches}
        self.last_drift: int | None = None
        self.last_warning: int | None = None
        self._tail = np.zeros(0, dtype=bool)
        self._pending: list[dict[str, Any]] = []
        self._pending_objects: dict[int, Detection] = {}

    # ---- the stream ----------------------------------------------------------------------------------------
    def update(self, x: np.ndarray, y: np.ndarray, correct: np.ndarray, losses: np.ndarray, position: int,
               *, now: float | None = None) -> list[Detection]:
        """Feed one micro-batch whose first row is stream index ``position``; return the reported detections."""
        y = np.asarray(y)
        correct = np.asarray(correct, dtype=bool)
        n = len(y)
        if not (len(correct) == len(losses) == len(x) == n):
            raise ValueError(f"batch arrays differ in length: x {len(x)}, y {n}, correct {len(correct)}, "
                             f"losses {len(losses)}")
        if n == 0:
            return []
        now = time.time() if now is None else now
        channels = [list(w.signal.channels(x, y, correct, losses)) for w in self.watches]
        history = np.concatenate([self._tail, correct])
        reported: list[Detection] = []
        start = 0
        while start < n:
            fired = []
            for w, chans in zip(self.watches, channels, strict=True):
                fired += [(offset, w.index, order, warning) for offset, order, warning in w.run(chans, start)]
            fired.sort()
            reset_at = None
            for offset, index, order, warning in fired:
                if reset_at is not None and offset > reset_at:
                    break  # flags raised after the reset came from detectors that no longer exist
                w = self.watches[index]
                pos = position + offset
                if not warning:
                    self.counts[w.label] += 1
                    if self.last_drift is not None and pos - self.last_drift < self.cfg.min_events_between:
                        self.suppressed[w.label] += 1
                        continue
                    self.last_drift = pos
                elif not self.cfg.warnings or (
                    self.last_warning is not None and pos - self.last_warning < self.cfg.min_events_between
                ):
                    continue
                else:
                    self.last_warning = pos
                det = self._detection(w, pos, order, warning, now, history, len(self._tail) + offset + 1)
                reported.append(det)
                if not warning and self.reset_on_drift:
                    reset_at = offset
            if reset_at is None:
                break
            for w in self.watches:  # detections of later samples came from detectors that are now reset
                w.reset()
            start = reset_at + 1
        for det in reported:
            self._report(det)
        self._advance(correct, position)
        return reported

    def _detection(self, w: _Watch, pos: int, order: int, warning: bool, now: float, history: np.ndarray,
                   end: int) -> Detection:
        key = None if order < 0 else order
        window = history[max(0, end - self.cfg.accuracy_window):end]
        return Detection(
            detector=w.label, algorithm=w.spec.detector, signal=w.spec.signal, position=pos, warning=warning,
            cls=key if w.spec.signal == "class_error" else None,
            channel=key if w.spec.signal == "input" else None,
            timestamp=now, accuracy_before=float(window.mean()) if len(window) else None,
        )

    def _report(self, det: Detection) -> None:
        fields = det.fields()
        fields.pop("accuracy_after")
        if det.warning:
            log.info("drift warning %s", _kv(fields), extra={"drift": fields})
            return
        fields["reactions"] = ",".join(self.reactions)
        log.warning("drift detected %s", _kv(fields), extra={"drift": fields})
        pending = {**fields, "after_sum": 0, "after_count": 0}
        self._pending.append(pending)
        self._pending_objects[id(pending)] = det
        while len(self._pending) > MAX_PENDING:
            self._pending_objects.pop(id(self._pending.pop(0)), None)

    def _advance(self, correct: np.ndarray, position: int) -> None:
        """Accumulate the after-windows of earlier detections; keep the last ``accuracy_window`` flags."""
        window = self.cfg.accuracy_window
        n = len(correct)
        done = []
        for pending in self._pending:
            lo = max(pending["position"] + 1 - position, 0)
            hi = min(pending["position"] + window + 1 - position, n)
            if hi > lo:
                pending["after_sum"] += int(correct[lo:hi].sum())
                pending["after_count"] += hi - lo
            if position + n > pending["position"] + window:
                done.append(pending)
        for pending in done:
            self._pending.remove(pending)
            det = self._pending_objects.pop(id(pending), None)
            count = pending.pop("after_count")
            after = pending.pop("after_sum") / count if count else None
            fields = {**pending, "accuracy_after": after, "window": window}
            if det is not None:
                det.accuracy_after = after
            log.info("drift recovery %s", _kv(fields), extra={"drift": fields})
        self._tail = np.concatenate([self._tail, correct])[-window:]

    def reset_detectors(self) -> None:
        """Restart every detector (and its warning zone) from scratch; signals and counters are kept."""
        for w in self.watches:
            w.reset()

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain data only (JSON-able, ``torch.load(weights_only=True)``-able): see :mod:`lifelong.drift.snapshot`."""
        return {
            "version": STATE_VERSION,
            "watches": [
                {
                    "label": w.label,
                    "fingerprint": w.fingerprint(),
                    "detectors": [[key, snapshot.dump(det)] for key, det in w.detectors.items()],
                    "warning": sorted(k for k in w.warning if k is not None) + ([None] if None in w.warning else []),
                    "signal": w.signal.state_dict(),
                    "count": self.counts[w.label],
                    "suppressed": self.suppressed[w.label],
                }
                for w in self.watches
            ],
            "last_drift": self.last_drift,
            "last_warning": self.last_warning,
            "tail": self._tail.astype(int).tolist(),
            "pending": [dict(p) for p in self._pending],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore; a detector whose config changed since the checkpoint starts fresh (one log line says so)."""
        if int(state.get("version", 0)) != STATE_VERSION:
            raise ValueError(f"drift state version {state.get('version')!r}, expected {STATE_VERSION}")
        saved = {entry["label"]: entry for entry in state["watches"]}
        for w in self.watches:
            entry = saved.get(w.label)
            w.reset()
            if entry is None or entry["fingerprint"] != w.fingerprint():
                log.info("drift detector %s: not in the checkpoint or its config changed; starting fresh", w.label)
                continue
            for key, data in entry["detectors"]:
                det = snapshot.load(data)
                if not isinstance(det, detector_class(w.spec.detector, path=w.path)):
                    raise ValueError(f"{w.path}: checkpoint holds a {type(det).__name__}")
                w.detectors[None if key is None else int(key)] = det
            w.warning = {None if k is None else int(k) for k in entry["warning"]}
            w.signal.load_state_dict(entry["signal"])
            self.counts[w.label] = int(entry["count"])
            self.suppressed[w.label] = int(entry["suppressed"])
        self.last_drift = state["last_drift"]
        self.last_warning = state["last_warning"]
        self._tail = np.asarray(state["tail"], dtype=bool)[-self.cfg.accuracy_window:]
        self._pending = [dict(p) for p in state["pending"]]
        self._pending_objects = {}


def _kv(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        parts.append(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)
