"""Sliding windows over the last N events, for the human-facing accuracy and loss gauges.

Rates for alerting are derived in PromQL from the monotonic counters; these windows exist so a dashboard (or a
person with curl) sees "accuracy over the last 1,000 events" without any query language.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RingWindow:
    """Mean of the last ``size`` values, updated in O(batch) with a numpy ring buffer.

    >>> w = RingWindow(3)
    >>> w.extend(np.array([1.0, 0.0, 1.0, 1.0]))
    >>> round(w.mean(), 3)
    0.667
    """

    def __init__(self, size: int):
        self.size = size
        self._values = np.zeros(size, dtype=np.float64)
        self._next = 0
        self._count = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()[-self.size :]
        n = values.shape[0]
        end = self._next + n
        if end <= self.size:
            self._values[self._next : end] = values
        else:
            split = self.size - self._next
            self._values[self._next :] = values[:split]
            self._values[: n - split] = values[split:]
        self._next = end % self.size
        self._count = min(self.size, self._count + n)

    def __len__(self) -> int:
        return self._count

    def mean(self) -> float:
        if self._count == 0:
            return float("nan")
        # Until the window first fills, values sit at indices [0, count): the ring has not wrapped yet.
        return float(self._values[: self._count].mean())

    def state_dict(self) -> dict[str, Any]:
        return {"values": self._values.copy(), "next": self._next, "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore, into this window's size: a window saved at another ``metrics.window`` keeps its newest
        values (a ring of another length written in place would index past its end)."""
        values = np.asarray(state["values"], dtype=np.float64)
        count, start = int(state["count"]), int(state["next"])
        oldest_first = values[:count] if count < values.shape[0] else np.roll(values, -start)
        self._values = np.zeros(self.size, dtype=np.float64)
        self._next = self._count = 0
        self.extend(oldest_first)


class PerClassWindows:
    """One RingWindow of 0/1 correctness per class, fed by true label."""

    def __init__(self, num_classes: int, size: int):
        self.windows = [RingWindow(size) for _ in range(num_classes)]

    def update(self, labels: np.ndarray, correct: np.ndarray) -> None:
        for cls in np.unique(labels):
            self.windows[int(cls)].extend(correct[labels == cls])

    def accuracy(self, cls: int) -> float:
        return self.windows[cls].mean()

    def state_dict(self) -> dict[str, Any]:
        return {"windows": [w.state_dict() for w in self.windows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for window, sub in zip(self.windows, state["windows"], strict=True):
            window.load_state_dict(sub)
