"""Seeded synthetic streams with one abrupt switch, for the drift tests (not a test module itself)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lifelong.config import DriftConfig
from lifelong.drift import Detection, DriftMonitor

FEATURES = 6
CLASSES = 3


@dataclass
class Stream:
    x: np.ndarray
    y: np.ndarray
    correct: np.ndarray
    losses: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def make_stream(kind: str, seed: int, n: int, switch: int | None) -> Stream:
    """``switch=None``: stationary. Kinds: error (10% -> 50% errors), error_high (30% -> 90%), loss (mean 0.3 ->
    1.5), input (three features move by 2 standard deviations), class_error (class 1's errors 10% -> 70%),
    all (error, loss and input at once)."""
    rng = np.random.default_rng(seed)
    after = np.zeros(n, dtype=bool) if switch is None else np.arange(n) >= switch
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, n)
    p_error = np.full(n, 0.1)
    losses = rng.exponential(0.3, n)
    if kind == "error":
        p_error[after] = 0.5
    elif kind == "error_high":
        p_error[:] = 0.3
        p_error[after] = 0.9
    elif kind == "loss":
        losses = np.where(after, rng.exponential(1.5, n), losses)
    elif kind == "input":
        x[after, :3] += 2.0
    elif kind == "class_error":
        p_error[after & (y == 1)] = 0.7
    elif kind == "all":
        p_error[after] = 0.5
        losses = np.where(after, rng.exponential(1.5, n), losses)
        x[after, :3] += 2.0
    else:
        raise ValueError(kind)
    correct = rng.random(n) >= p_error
    return Stream(x, y, correct, losses)


def run_monitor(cfg: DriftConfig, stream: Stream, *, batch: int = 64, seed: int = 0,
                monitor: DriftMonitor | None = None, start: int = 0) -> list[Detection]:
    """Feed ``stream[start:]`` in micro-batches; every reported detection, in order."""
    monitor = monitor or DriftMonitor(cfg, num_features=FEATURES, max_classes=CLASSES, seed=seed)
    out: list[Detection] = []
    for lo in range(start, len(stream), batch):
        hi = min(lo + batch, len(stream))
        out += monitor.update(stream.x[lo:hi], stream.y[lo:hi], stream.correct[lo:hi], stream.losses[lo:hi], lo)
    return out
