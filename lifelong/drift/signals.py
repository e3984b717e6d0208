"""The signals a drift detector watches, extracted from one micro-batch as per-detector value streams.

Each signal turns a batch (inputs, labels, correctness, losses) into *channels*: ``(key, offsets, values)`` where
``key`` picks the detector (None for a single one, the true class for ``class_error``, the feature or projected
dimension for ``input``), ``offsets`` are the rows of the batch at which each value becomes known and ``values`` are
plain Python numbers in stream order. The monitor feeds them to river one by one, so a detection's stream position is
``batch position + offset``.

Every signal gives the same values however the stream is cut into micro-batches: the input signal carries the rows
of an unfinished block over to the next batch, and projects with ``numpy.einsum`` (its own loops, one dot product
per row) rather than BLAS, whose blocking makes a row's result depend on how many rows come with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Channel = tuple[int | None, np.ndarray, list[Any]]


class ErrorSignal:
    """0/1 prediction error per sample (1 = wrong), or 1 = correct for detectors that fire on a drop (FHDDM)."""

    name = "error"

    def __init__(self, *, feed_correct: bool = False):
        self.feed_correct = feed_correct

    def values(self, correct: np.ndarray) -> np.ndarray:
        return (correct if self.feed_correct else ~correct).astype(np.int64)

    def channels(self, x: np.ndarray, y: np.ndarray, correct: np.ndarray, losses: np.ndarray) -> Iterator[Channel]:
        yield None, np.arange(len(correct)), self.values(correct).tolist()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ClassErrorSignal(ErrorSignal):
    """The error stream split by true label: one detector per class sees only that class's samples.

    A drift confined to one class (its inputs moved, or its label now means something else) is diluted in the
    overall error rate by the classes that did not change; per class it stands out. Labels outside
    ``[0, max_classes)`` are ignored (the daemon dead-letters them anyway).
    """

    name = "class_error"

    def __init__(self, max_classes: int, *, feed_correct: bool = False):
        super().__init__(feed_correct=feed_correct)
        self.max_classes = max_classes

    def channels(self, x: np.ndarray, y: np.ndarray, correct: np.ndarray, losses: np.ndarray) -> Iterator[Channel]:
        values = self.values(correct)
        for cls in np.unique(y).tolist():
            if 0 <= cls < self.max_classes:
                offsets = np.flatnonzero(y == cls)
                yield int(cls), offsets, values[offsets].tolist()


class LossSignal:
    """Per-sample loss of the prediction made before training; non-finite losses (nothing learned yet) are skipped."""

    name = "loss"

    def channels(self, x: np.ndarray, y: np.ndarray, correct: np.ndarray, losses: np.ndarray) -> Iterator[Channel]:
        losses = np.asarray(losses, dtype=np.float64)
        offsets = np.flatnonzero(np.isfinite(losses))
        yield None, offsets, losses[offsets].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class InputSignal:
    """Statistics of the inputs alone, so a shift in the features is seen before (or without) labels showing it.

    ``mean``: every feature is a channel; ``projection``: each sample is projected on ``dims`` seeded Gaussian
    directions (scaled by 1/sqrt(num_features)), a channel each, a cheap summary for KSWIN's distribution test. Either
    way the values are averaged over consecutive blocks of ``block`` samples (``block=1``: per sample); a block's value
    is known at its last sample, which is the offset reported.
    """

    name = "input"

    def __init__(self, num_features: int, *, reduce: str = "mean", dims: int = 4, block: int | None = None,
                 seed: int = 0):
        if reduce not in ("mean", "projection"):
            raise ValueError(f"unknown input reduction {reduce!r}")
        self.num_features = num_features
        self.reduce = reduce
        self.block = block if block is not None else (32 if reduce == "mean" else 1)
        self.seed = seed
        self.projection: np.ndarray | None = None
        if reduce == "projection":
            rng = np.random.default_rng(seed)
            self.projection = rng.standard_normal((num_features, dims)) / np.sqrt(num_features)
        self.width = num_features if self.projection is None else dims
        self._carry = np.zeros((0, self.width), dtype=np.float64)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Rows as float64 (mean) or projected (projection); one row's result never depends on the other rows."""
        rows = np.asarray(x).reshape(len(x), -1).astype(np.float64)
        if rows.shape[1] != self.num_features:
            raise ValueError(f"input signal: expected {self.num_features} features, got {rows.shape[1]}")
        if self.projection is None:
            return rows
        return np.einsum("nf,fk->nk", rows, self.projection, optimize=False)

    def channels(self, x: np.ndarray, y: np.ndarray, correct: np.ndarray, losses: np.ndarray) -> Iterator[Channel]:
        rows = np.concatenate([self._carry, self.transform(x)])
        carried = len(self._carry)
        complete = len(rows) // self.block
        self._carry = rows[complete * self.block:].copy()
        if complete == 0:
            return
        means = rows[: complete * self.block].reshape(complete, self.block, self.width).sum(axis=1) / self.block
        offsets = np.arange(1, complete + 1) * self.block - 1 - carried
        for channel in range(self.width):
            yield channel, offsets, means[:, channel].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {"carry": self._carry.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        carry = np.asarray(state.get("carry", []), dtype=np.float64).reshape(-1, self.width)
        if len(carry) >= self.block:
            raise ValueError(f"input signal: {len(carry)} carried rows for blocks of {self.block}")
        self._carry = carry


Signal = ErrorSignal | ClassErrorSignal | LossSignal | InputSignal
