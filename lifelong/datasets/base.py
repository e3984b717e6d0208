"""The in-memory dataset every source returns, and the seeded split helpers they share.

Kept numpy-only on purpose: ``lifelong feed`` and the stream layer load data without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)  # arrays: compare by identity, not elementwise
class Dataset:
    """Train and test arrays of one labelled dataset.

    ``x_*`` are float32 of shape ``(n, *feature_shape)`` (images keep their ``(H, W)``; tables are ``(d,)``),
    scaled to [0, 1] where the source has a natural range; ``y_*`` are int64 class indices in
    ``[0, num_classes)``. ``class_names[i]`` is the original label of class ``i`` when the source had names.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise TypeError(f"{self.name}: x_{split} must be float32 and y_{split} int64")
            if len(x) != len(y):
                raise ValueError(f"{self.name}: {len(x)} x_{split} rows but {len(y)} labels")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"{self.name}: train and test feature shapes differ")

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample (without the batch axis)."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        """Number of floats in one flattened sample."""
        return int(np.prod(self.feature_shape, dtype=np.int64))

    def limited(self, limit: int | None, seed: int = 0) -> Dataset:
        """A seeded random subset of at most ``limit`` train and ``limit`` test samples (demos, tests)."""
        if limit is None:
            return self
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(self.y_train))[:limit])
        te = np.sort(rng.permutation(len(self.y_test))[:limit])
        return Dataset(self.name, self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te],
                       self.num_classes, self.class_names, self.feature_names)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/test index split; both halves keep their original order (deterministic)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    if n_test >= n:
        raise ValueError(f"cannot split {n} samples into train and test")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def encode_labels(raw: np.ndarray) -> tuple[np.ndarray, int, tuple[str, ...] | None]:
    """Map arbitrary labels to int64 ``0..k-1``.

    Non-negative integer labels (and booleans) are kept as they are so class 3 stays class 3; anything else
    (strings, floats, negative numbers) is indexed in sorted order and the originals become ``class_names``.
    """
    raw = np.asarray(raw)
    if raw.dtype == bool:
        return raw.astype(np.int64), 2, None
    if raw.dtype.kind in "iu" and (raw.size == 0 or raw.min() >= 0):
        return raw.astype(np.int64), int(raw.max()) + 1 if raw.size else 0, None
    if raw.dtype.kind == "f" and raw.size and np.all(raw == np.round(raw)) and raw.min() >= 0:
        return raw.astype(np.int64), int(raw.max()) + 1, None
    names, codes = np.unique(raw.astype(str), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), len(names), tuple(str(n) for n in names)


def from_arrays(name: str, x: np.ndarray, y: np.ndarray, *, test_fraction: float, seed: int,
                x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
                feature_names: tuple[str, ...] | None = None) -> Dataset:
    """Build a Dataset from raw arrays: labels encoded jointly, a seeded test split when none is given."""
    x = np.asarray(x, dtype=np.float32)
    if x_test is None or y_test is None:
        tr, te = split_indices(len(x), test_fraction, seed)
        x, x_test = x[tr], x[te]
        y, y_test = np.asarray(y)[tr], np.asarray(y)[te]
    y_all, k, names = encode_labels(np.concatenate([np.asarray(y), np.asarray(y_test)]))
    n_train = len(x)
    return Dataset(name, np.ascontiguousarray(x), y_all[:n_train],
                   np.ascontiguousarray(np.asarray(x_test, dtype=np.float32)), y_all[n_train:],
                   k, names, feature_names)
