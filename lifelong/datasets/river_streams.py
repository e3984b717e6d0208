"""river's synthetic streams and bundled datasets, turned into fixed-length float32 vectors.

river yields ``(dict, label)`` pairs whose values may be categorical (strings, or integers that code a
category such as Agrawal's ``car``). A neural network needs one float vector in a fixed feature order, so
:class:`DictEncoder` one-hot encodes categorical features, maps booleans to 0/1, and min-max scales numeric
ones to [0, 1], with the order and categories fitted once and reused (so several concepts of a drift stream
share one encoding).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lifelong.datasets.base import Dataset, encode_labels, split_indices

# Integer-coded categorical features of river's generators (ranges from river 0.26.1's sources).
KNOWN_CATEGORICAL: dict[str, dict[str, tuple[Any, ...]]] = {
    "Agrawal": {"elevel": tuple(range(5)), "car": tuple(range(1, 21)), "zipcode": tuple(range(9))},
    "STAGGER": {"size": (0, 1, 2), "color": (0, 1, 2), "shape": (0, 1, 2)},
}
DEFAULT_SYNTH_SAMPLES = 10_000


@dataclass
class DictEncoder:
    """Fixed feature order + per-feature encoding for dict samples; fit once, transform many.

    >>> enc = DictEncoder().fit([{"a": 1.0, "c": "red"}, {"a": 3.0, "c": "blue"}])
    >>> enc.feature_names
    ('a', 'c=blue', 'c=red')
    >>> enc.transform([{"a": 2.0, "c": "red"}]).tolist()
    [[0.5, 0.0, 1.0]]
    """

    categorical: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    scale: bool = True
    keys: list[Any] = field(default_factory=list, init=False)
    categories: dict[Any, tuple[Any, ...]] = field(default_factory=dict, init=False)
    low: dict[Any, float] = field(default_factory=dict, init=False)
    high: dict[Any, float] = field(default_factory=dict, init=False)

    def fit(self, samples: Iterable[Mapping[Any, Any]]) -> DictEncoder:
        seen: dict[Any, list[Any]] = {}
        for sample in samples:
            for key, value in sample.items():
                seen.setdefault(key, []).append(value)
        self.keys = list(seen)
        for key, values in seen.items():
            if str(key) in self.categorical:
                self.categories[key] = tuple(self.categorical[str(key)])
            elif any(isinstance(v, str) for v in values):
                self.categories[key] = tuple(sorted({str(v) for v in values if v is not None}))
            else:
                numbers = [float(v) for v in values if v is not None]
                self.low[key] = min(numbers) if numbers else 0.0
                self.high[key] = max(numbers) if numbers else 0.0
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for key in self.keys:
            if key in self.categories:
                names += [f"{key}={c}" for c in self.categories[key]]
            else:
                names.append(str(key))
        return tuple(names)

    def transform(self, samples: Sequence[Mapping[Any, Any]]) -> np.ndarray:
        """Encode samples as float32 rows; unseen categories and missing values become all-zero entries."""
        out = np.zeros((len(samples), len(self.feature_names)), dtype=np.float32)
        col = 0
        for key in self.keys:
            if key in self.categories:
                cats = self.categories[key]
                as_text = not all(isinstance(c, int | float) for c in cats)
                index = {(str(c) if as_text else c): i for i, c in enumerate(cats)}
                for row, sample in enumerate(samples):
                    value = sample.get(key)
                    hit = index.get(str(value) if as_text else value)
                    if hit is not None:
                        out[row, col + hit] = 1.0
                col += len(cats)
                continue
            column = np.array([float(sample.get(key) or 0.0) for sample in samples], dtype=np.float64)
            if self.scale:
                span = self.high[key] - self.low[key]
                column = np.clip((column - self.low[key]) / span, 0.0, 1.0) if span > 0 else column * 0.0
            out[:, col] = column
            col += 1
        return out


def _river() -> Any:
    import river.datasets  # river takes a while to import: only when a river source is used

    return river.datasets


def make_stream(name: str, *, seed: int = 0, **params: Any) -> Any:
    """Instantiate ``river.datasets.synth.<name>`` or ``river.datasets.<name>``, seeding it."""
    rd = _river()
    cls = getattr(rd.synth, name, None) or getattr(rd, name, None)
    if cls is None or not inspect.isclass(cls):
        synth = [n for n in dir(rd.synth) if n[:1].isupper()]
        raise ValueError(f"unknown river dataset {name!r}; synthetic streams: {', '.join(synth)}")
    accepted = inspect.signature(cls).parameters
    kwargs = dict(params)
    for offset, seed_name in enumerate(("seed", "seed_model", "seed_tree", "seed_sample")):
        if seed_name in accepted and seed_name not in kwargs:
            kwargs[seed_name] = seed + offset
    stream = cls(**kwargs)
    task = getattr(stream, "task", "")
    if "classification" not in task or "Multi-output" in task:
        raise ValueError(f"river {name} is a {task!r} dataset; lifelong needs single-label classification")
    if isinstance(stream, rd.base.RemoteDataset) and not stream.is_downloaded:
        raise ValueError(f"river {name} must be downloaded first (river fetches it from the network)")
    return stream


def is_synthetic(stream: Any) -> bool:
    return isinstance(stream, _river().base.SyntheticDataset)


def take(stream: Any, n: int | None) -> tuple[list[dict[Any, Any]], list[Any]]:
    """The first ``n`` samples of a stream (all of a finite dataset when ``n`` is None)."""
    xs: list[dict[Any, Any]] = []
    ys: list[Any] = []
    iterator: Iterator[Any] = iter(stream)
    for x, y in itertools.islice(iterator, n):
        xs.append(dict(x))
        ys.append(y)
    return xs, ys


def stream_num_classes(stream: Any, observed: int) -> int:
    declared = getattr(stream, "n_classes", None) or (2 if "Binary" in getattr(stream, "task", "") else 0)
    return max(int(declared), observed)


def encoder_for(name: str, scale: bool = True) -> DictEncoder:
    return DictEncoder(categorical=KNOWN_CATEGORICAL.get(name, {}), scale=scale)


def load_river(name: str, *, n: int | None = None, test_fraction: float = 0.2, seed: int = 0,
               scale: bool = True, params: Mapping[str, Any] | None = None) -> Dataset:
    """A river dataset as arrays: ``n`` samples of a synthetic stream (default 10,000) or a bundled file.

    The encoder's scaling is fitted on the training split only, so the test split is honestly held out.
    """
    stream = make_stream(name, seed=seed, **dict(params or {}))
    if n is None and is_synthetic(stream):
        n = DEFAULT_SYNTH_SAMPLES
    xs, ys = take(stream, n)
    tr, te = split_indices(len(xs), test_fraction, seed)
    encoder = encoder_for(name, scale).fit(xs[i] for i in tr)
    x = encoder.transform(xs)
    y, k, class_names = encode_labels(np.asarray(ys))
    return Dataset(f"river:{name}", x[tr], y[tr], x[te], y[te], stream_num_classes(stream, k), class_names,
                   encoder.feature_names)
