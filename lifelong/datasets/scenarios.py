"""Continual-learning scenarios: one ordered stream of samples plus where its tasks or concepts change.

``build_scenario(name, dataset=..., seed=...)`` builds ``plain``, ``split`` (class-incremental), ``permuted`` and
``rotated`` (domain-incremental) and ``drift`` (concept drift, abrupt or gradual). The result is deterministic
under the seed and carries a held-out test set per task, so the accuracy matrix of
:mod:`lifelong.metrics.continual` can be filled after each task. ``Scenario.to_json()`` is the boundaries file
that ``lifelong feed`` writes beside a run.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lifelong.datasets.base import Dataset
from lifelong.datasets.sources import load_dataset
from lifelong.datasets.transforms import permute_features, rotate_images

BoundaryKind = Literal["task", "drift"]


@dataclass(frozen=True)
class Boundary:
    """A change in the stream: ``position`` is the index of the first event of the new task or concept.

    ``width`` is the length of a gradual drift's transition window (0 for an abrupt change); ``task`` is the
    index of the task or concept that starts here. The first task starts at 0 and has no boundary.
    """

    position: int
    kind: BoundaryKind
    task: int
    description: str
    width: int = 0


@dataclass(eq=False)  # arrays: compare by identity, not elementwise
class Scenario:
    """An ordered training stream ``(x, y)`` with its task ids, boundaries and one test set per task."""

    name: str
    x: np.ndarray
    y: np.ndarray
    task: np.ndarray
    boundaries: list[Boundary]
    test_sets: list[tuple[np.ndarray, np.ndarray]]
    feature_shape: tuple[int, ...]
    num_classes: int
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    tasks_info: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def num_tasks(self) -> int:
        return len(self.test_sets)

    def task_starts(self) -> list[int]:
        """Index of the first event of each task (0 for the first)."""
        return [0] + [b.position for b in self.boundaries]

    def boundaries_json(self) -> dict[str, Any]:
        """What evaluation needs to know about the stream, as plain JSON types."""
        return _jsonable({
            "name": self.name,
            "dataset": self.dataset,
            "seed": self.seed,
            "params": self.params,
            "n": self.n,
            "num_tasks": self.num_tasks,
            "num_classes": self.num_classes,
            "feature_shape": list(self.feature_shape),
            "boundaries": [asdict(b) for b in self.boundaries],
            "tasks": self.tasks_info,
            "test_samples": [len(y) for _, y in self.test_sets],
        })

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.boundaries_json(), indent=indent)

    def write_boundaries(self, path: Path | str) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path


def read_boundaries(path: Path | str) -> tuple[dict[str, Any], list[Boundary]]:
    """Read a boundaries file written by :meth:`Scenario.write_boundaries`: (the whole document, boundaries)."""
    doc = json.loads(Path(path).read_text())
    return doc, [Boundary(**b) for b in doc["boundaries"]]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Dataset):
        return value.name
    return value


def _rng(seed: int, purpose: int) -> np.random.Generator:
    """Independent generators per purpose, so changing one parameter does not reshuffle everything else."""
    return np.random.default_rng([seed, purpose])


def _resolve(dataset: str | Dataset, seed: int, limit: int | None, cache_dir: Path | str | None) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset.limited(limit, seed)
    return load_dataset(dataset, cache_dir=cache_dir, seed=seed, limit=limit)


def _take(indices: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Shuffle ``indices`` and keep at most ``cap`` of them."""
    shuffled = indices[rng.permutation(len(indices))]
    return shuffled if cap is None else shuffled[:cap]


def _subset(indices: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``cap`` of ``indices``, chosen at random but kept in their original order (test sets)."""
    if cap is None or cap >= len(indices):
        return indices
    return np.sort(rng.choice(indices, size=cap, replace=False))


def _assemble(name: str, data: Dataset, x: np.ndarray, y: np.ndarray, sizes: list[int],
              test_sets: list[tuple[np.ndarray, np.ndarray]], descriptions: list[str], seed: int,
              params: dict[str, Any], tasks_info: list[dict[str, Any]]) -> Scenario:
    """Wrap a stream whose tasks follow each other (``sizes`` events each) and mark where each task starts."""
    if any(s == 0 for s in sizes):
        raise ValueError(f"{name}: a task has no samples ({sizes})")
    starts = np.cumsum([0] + sizes[:-1])
    boundaries = [Boundary(int(starts[t]), "task", t, descriptions[t]) for t in range(1, len(sizes))]
    return Scenario(
        name=name,
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=np.asarray(y, dtype=np.int64),
        task=np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
        boundaries=boundaries,
        test_sets=[(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)) for x, y in test_sets],
        feature_shape=data.feature_shape,
        num_classes=data.num_classes,
        seed=seed,
        params=params,
        dataset=data.name,
        tasks_info=tasks_info,
    )


def plain_scenario(data: Dataset, *, seed: int = 0, samples_per_task: int | None = None,
                   test_samples_per_task: int | None = None) -> Scenario:
    """The dataset shuffled as one task: the baseline stream without any change."""
    idx = _take(np.arange(len(data.y_train)), samples_per_task, _rng(seed, 1))
    te = _subset(np.arange(len(data.y_test)), test_samples_per_task, _rng(seed, 2))
    return _assemble("plain", data, data.x_train[idx], data.y_train[idx], [len(idx)],
                     [(data.x_test[te], data.y_test[te])], ["all classes"], seed,
                     {"samples_per_task": samples_per_task, "test_samples_per_task": test_samples_per_task},
                     [{"classes": sorted(np.unique(data.y_train[idx]).tolist())}])


def split_scenario(data: Dataset, *, seed: int = 0, tasks: int = 5, classes_per_task: int = 2,
                   shuffle_classes: bool = False, class_order: Sequence[int] | None = None,
                   samples_per_task: int | None = None, test_samples_per_task: int | None = None) -> Scenario:
    """Class-incremental split: task ``t`` holds classes ``order[t*k:(t+1)*k]`` (e.g. Split-MNIST 0-1, 2-3, ...).

    Labels keep their original values (class-IL: one head over all classes). The class order is 0, 1, 2, ...
    unless ``class_order`` is given or ``shuffle_classes`` draws one from the seed.
    """
    needed = tasks * classes_per_task
    if class_order is not None:
        order = [int(c) for c in class_order]
    elif shuffle_classes:
        order = _rng(seed, 3).permutation(data.num_classes).tolist()
    else:
        order = list(range(data.num_classes))
    if len(order) < needed or len(set(order)) != len(order) or not all(0 <= c < data.num_classes for c in order):
        raise ValueError(f"split needs {needed} distinct classes below {data.num_classes}, got order {order}")
    rng_train, rng_test = _rng(seed, 1), _rng(seed, 2)
    rows, test_sets, descriptions, info = [], [], [], []
    for t in range(tasks):
        classes = order[t * classes_per_task:(t + 1) * classes_per_task]
        tr = _take(np.flatnonzero(np.isin(data.y_train, classes)), samples_per_task, rng_train)
        te = _subset(np.flatnonzero(np.isin(data.y_test, classes)), test_samples_per_task, rng_test)
        rows.append(tr)
        test_sets.append((data.x_test[te], data.y_test[te]))
        descriptions.append(f"task {t}: classes {classes}")
        info.append({"task": t, "classes": classes})
    params = {"tasks": tasks, "classes_per_task": classes_per_task, "shuffle_classes": shuffle_classes,
              "class_order": order[:needed], "samples_per_task": samples_per_task,
              "test_samples_per_task": test_samples_per_task}
    order_all = np.concatenate(rows)
    return _assemble("split", data, data.x_train[order_all], data.y_train[order_all], [len(r) for r in rows],
                     test_sets, descriptions, seed, params, info)


def permutations_for(num_features: int, tasks: int, seed: int, identity_first: bool = True) -> list[np.ndarray]:
    """The feature permutation of each task of a permuted scenario (task 0 the identity by default)."""
    rng = _rng(seed, 4)
    perms = [rng.permutation(num_features) for _ in range(tasks)]
    if identity_first and perms:
        perms[0] = np.arange(num_features)
    return perms


Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _domain_tasks(name: str, data: Dataset, transforms: list[Transform], labels: list[str],
                  info: list[dict[str, Any]], seed: int, params: dict[str, Any], samples_per_task: int | None,
                  test_samples_per_task: int | None) -> Scenario:
    """Domain-incremental tasks: every task sees (a shuffle of) all the data through its own input transform.

    ``transform(x, rows)`` returns the transformed ``x[rows]``; the stream is written into one preallocated
    array (10 Permuted-MNIST tasks are 1.9 GB of float32: no extra concatenation copy).
    """
    rng_train, rng_test = _rng(seed, 1), _rng(seed, 2)
    per_task = len(data.y_train) if samples_per_task is None else min(samples_per_task, len(data.y_train))
    x = np.empty((per_task * len(transforms), *data.feature_shape), dtype=np.float32)
    y = np.empty(per_task * len(transforms), dtype=np.int64)
    test_sets = []
    for t, transform in enumerate(transforms):
        tr = _take(np.arange(len(data.y_train)), per_task, rng_train)
        te = _subset(np.arange(len(data.y_test)), test_samples_per_task, rng_test)
        x[t * per_task:(t + 1) * per_task] = transform(data.x_train, tr)
        y[t * per_task:(t + 1) * per_task] = data.y_train[tr]
        test_sets.append((transform(data.x_test, te), data.y_test[te]))
    params = {**params, "samples_per_task": samples_per_task, "test_samples_per_task": test_samples_per_task}
    return _assemble(name, data, x, y, [per_task] * len(transforms), test_sets, labels, seed, params, info)


def permuted_scenario(data: Dataset, *, seed: int = 0, tasks: int = 10, identity_first: bool = True,
                      samples_per_task: int | None = None, test_samples_per_task: int | None = None) -> Scenario:
    """Permuted (e.g. Permuted-MNIST): task ``t`` applies pixel permutation ``t`` to the whole dataset."""
    perms = permutations_for(data.num_features, tasks, seed, identity_first)
    transforms: list[Transform] = [lambda x, rows, p=p: permute_features(x, p, rows) for p in perms]
    labels = [f"task {t}: pixel permutation {t}" + (" (identity)" if t == 0 and identity_first else "")
              for t in range(tasks)]
    info = [{"task": t, "identity": bool(np.array_equal(p, np.arange(len(p))))} for t, p in enumerate(perms)]
    return _domain_tasks("permuted", data, transforms, labels, info, seed,
                         {"tasks": tasks, "identity_first": identity_first}, samples_per_task,
                         test_samples_per_task)


def rotated_scenario(data: Dataset, *, seed: int = 0, tasks: int = 5, angles: Sequence[float] | None = None,
                     max_angle: float = 180.0, samples_per_task: int | None = None,
                     test_samples_per_task: int | None = None) -> Scenario:
    """Rotated (e.g. Rotated-MNIST): task ``t`` rotates every image by ``angles[t]`` degrees.

    Default angles are evenly spaced in ``[0, max_angle)``: 0, 36, 72, 108, 144 for 5 tasks.
    """
    if len(data.feature_shape) != 2:
        raise ValueError(f"rotated needs 2-D images, {data.name} has feature shape {data.feature_shape}")
    chosen = [float(a) for a in angles] if angles is not None else \
        np.linspace(0.0, max_angle, tasks, endpoint=False).round(6).tolist()
    transforms: list[Transform] = [lambda x, rows, a=a: rotate_images(x[rows], a) for a in chosen]
    labels = [f"task {t}: rotated {a:g} degrees" for t, a in enumerate(chosen)]
    info = [{"task": t, "angle": a} for t, a in enumerate(chosen)]
    return _domain_tasks("rotated", data, transforms, labels, info, seed, {"tasks": len(chosen), "angles": chosen},
                         samples_per_task, test_samples_per_task)


def _split_positions(n: int, concepts: int, positions: Sequence[int] | None, width: int) -> list[int]:
    """The change positions (default: evenly spaced), checked so transition windows fit and do not overlap."""
    chosen = [int(p) for p in positions] if positions is not None else \
        [round(n * (k + 1) / concepts) for k in range(concepts - 1)]
    previous_end = 1  # the first concept gets at least one event
    for p in chosen:
        start = p - width // 2
        if start < previous_end or start + max(width, 1) > n:
            raise ValueError(f"drift positions {chosen} with width {width} overlap or leave the stream (n={n})")
        previous_end = start + max(width, 1)
    return chosen


def concept_schedule(n: int, positions: Sequence[int], width: int, rng: np.random.Generator) -> np.ndarray:
    """Concept index of each of ``n`` events.

    Abrupt (``width`` 0): concept ``k`` from ``positions[k-1]`` on. Gradual: around each position the new
    concept's share grows linearly from 0 to 1 over ``width`` events centred on it, each event drawing its
    concept at random (the usual gradual-drift model, e.g. Gama et al. 2014; river's ConceptDriftStream uses a
    sigmoid instead of a ramp).
    """
    index = np.arange(n)
    concept = np.zeros(n, dtype=np.int64)
    for p in positions:
        if width <= 0:
            concept += index >= p
            continue
        start = p - width // 2
        share = np.clip((index - start + 1) / (width + 1), 0.0, 1.0)
        concept += rng.random(n) < share
    return concept


def _concept_params(stream_name: str, concepts: int) -> list[dict[str, Any]]:
    """Default concepts of a river generator: its variant or classification function, else a new seed."""
    from lifelong.datasets.river_streams import make_stream

    accepted = inspect.signature(type(make_stream(stream_name, seed=0))).parameters
    for knob, count in (("variant", 4), ("classification_function", None)):
        if knob in accepted:
            limit = count or {"STAGGER": 3, "Sine": 4, "Mixed": 2, "Agrawal": 10}.get(stream_name, concepts)
            return [{knob: k % limit} for k in range(concepts)]
    return [{"seed_offset": 1000 * k} for k in range(concepts)]


def _river_drift(stream_name: str, *, n: int, concepts: list[dict[str, Any]], schedule: np.ndarray, seed: int,
                 test_samples_per_task: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]],
                                                      Dataset]:
    from lifelong.datasets.base import encode_labels
    from lifelong.datasets.river_streams import encoder_for, make_stream, stream_num_classes, take

    xs: list[list[dict[Any, Any]]] = []
    ys: list[list[Any]] = []
    test_x: list[list[dict[Any, Any]]] = []
    test_y: list[list[Any]] = []
    streams = []
    for k, params in enumerate(concepts):
        params = dict(params)
        offset = int(params.pop("seed_offset", 0))
        stream = make_stream(stream_name, seed=seed + offset, **params)
        streams.append(stream)
        needed = int((schedule == k).sum())
        x, y = take(stream, needed + test_samples_per_task)
        xs.append(x[:needed])
        ys.append(y[:needed])
        test_x.append(x[needed:])
        test_y.append(y[needed:])
    encoder = encoder_for(stream_name).fit(s for group in xs for s in group)
    labels, k_classes, names = encode_labels(np.asarray([v for group in ys + test_y for v in group]))
    n_train = sum(len(g) for g in ys)
    train_labels, test_labels = labels[:n_train], labels[n_train:]
    # Interleave concepts in schedule order: the i-th event of concept k is the i-th sample of stream k.
    x_stream = np.zeros((n, len(encoder.feature_names)), dtype=np.float32)
    y_stream = np.zeros(n, dtype=np.int64)
    start = 0
    for k in range(len(concepts)):
        where = np.flatnonzero(schedule == k)
        x_stream[where] = encoder.transform(xs[k]) if xs[k] else np.zeros((0, x_stream.shape[1]), np.float32)
        y_stream[where] = train_labels[start:start + len(where)]
        start += len(where)
    tests, start = [], 0
    for k in range(len(concepts)):
        tests.append((encoder.transform(test_x[k]), test_labels[start:start + len(test_y[k])]))
        start += len(test_y[k])
    num_classes = max(stream_num_classes(s, k_classes) for s in streams)
    meta = Dataset(f"river:{stream_name}", x_stream[:1], y_stream[:1], tests[0][0][:1], tests[0][1][:1],
                   num_classes, names, encoder.feature_names)
    return x_stream, y_stream, tests, meta


def drift_scenario(dataset: str | Dataset, *, seed: int = 0, n: int | None = None,
                   samples_per_task: int | None = None, positions: Sequence[int] | None = None,
                   width: int = 0, mode: Literal["abrupt", "gradual"] | None = None,
                   concepts: int | Sequence[Mapping[str, Any]] | None = None, tasks: int | None = None,
                   stream_params: Mapping[str, Any] | None = None, test_samples_per_task: int | None = None,
                   limit: int | None = None, cache_dir: Path | str | None = None) -> Scenario:
    """A stream of ``n`` events whose concept changes at ``positions`` (default: evenly spaced).

    With ``dataset="river:<Name>"`` each concept is a river generator: its ``variant`` (SEA) or
    ``classification_function`` (STAGGER, Agrawal, Sine, Mixed), else a new seed; ``concepts`` may list the
    constructor arguments instead (e.g. ``[{"variant": 0}, {"variant": 2}]``), and ``stream_params`` go to
    every concept (e.g. ``{"noise": 0.1}``). With any other dataset, concept ``k`` relabels classes by a seeded
    permutation (concept 0 keeps the labels): the inputs stay, the meaning changes (real drift).
    ``width`` > 0 makes each change gradual over that many events; ``mode="gradual"`` without a width uses
    ``n / (5 * concepts)``. The number of concepts is ``concepts`` (a count or a list), else ``tasks``, else
    one more than the positions, else 3. ``n`` defaults to ``samples_per_task`` per concept, else 10,000.
    """
    if isinstance(concepts, int) or concepts is None:
        count = concepts if concepts is not None else tasks if tasks is not None else \
            len(positions) + 1 if positions is not None else 3
    else:
        count = len(concepts)
    if count < 1:
        raise ValueError("drift needs at least one concept")
    if n is None:
        n = samples_per_task * count if samples_per_task else 10_000
    if mode == "abrupt" and width:
        raise ValueError(f"mode=abrupt contradicts width={width}")
    if mode == "gradual" and not width:
        width = max(2, n // (5 * count))
    if mode not in (None, "abrupt", "gradual"):
        raise ValueError(f"drift mode must be abrupt or gradual, got {mode!r}")
    chosen = _split_positions(n, count, positions, width)
    if len(chosen) != count - 1:
        raise ValueError(f"{count} concepts need {count - 1} positions, got {chosen}")
    schedule = concept_schedule(n, chosen, width, _rng(seed, 5))
    params: dict[str, Any] = {"n": n, "positions": chosen, "width": width, "mode": "gradual" if width else "abrupt",
                              "limit": limit, "stream_params": dict(stream_params or {}),
                              "test_samples_per_task": test_samples_per_task}
    is_river = isinstance(dataset, str) and dataset.startswith("river:")
    if is_river:
        stream_name = dataset.partition(":")[2]
        concept_list = [dict(c) for c in concepts] if not (concepts is None or isinstance(concepts, int)) else \
            _concept_params(stream_name, count)
        concept_list = [{**dict(stream_params or {}), **c} for c in concept_list]
        x, y, tests, data = _river_drift(stream_name, n=n, concepts=concept_list, schedule=schedule, seed=seed,
                                         test_samples_per_task=test_samples_per_task or 1000)
        info = [{"task": k, "concept": c} for k, c in enumerate(concept_list)]
        what = [", ".join(f"{key}={v}" for key, v in c.items()) for c in concept_list]
        params["concepts"] = [i["concept"] for i in info]
    else:
        data = _resolve(dataset, seed, limit, cache_dir)
        maps = [np.arange(data.num_classes)] + [_rng(seed, 6 + k).permutation(data.num_classes)
                                                for k in range(1, count)]
        order = np.concatenate([_rng(seed, 1).permutation(len(data.y_train))
                                for _ in range(-(-n // len(data.y_train)))])[:n]
        x = data.x_train[order]
        y = np.stack(maps)[schedule, data.y_train[order]]
        te = _subset(np.arange(len(data.y_test)), test_samples_per_task, _rng(seed, 2))
        tests = [(data.x_test[te], m[data.y_test[te]]) for m in maps]
        info = [{"task": k, "label_map": m.tolist()} for k, m in enumerate(maps)]
        what = ["labels as they are"] + [f"labels mapped by {m.tolist()}" for m in maps[1:]]
    boundaries = []
    for k in range(1, count):
        first = int(np.flatnonzero(schedule == k)[0]) if (schedule == k).any() else chosen[k - 1]
        how = f"gradual over {width} events around {chosen[k - 1]}" if width else f"abrupt at {chosen[k - 1]}"
        boundaries.append(Boundary(first, "drift", k, f"concept {k}: {what[k]} ({how})", width))
    return Scenario(
        name="drift", x=np.ascontiguousarray(x, dtype=np.float32), y=np.asarray(y, dtype=np.int64), task=schedule,
        boundaries=boundaries,
        test_sets=[(np.ascontiguousarray(tx, dtype=np.float32), np.asarray(ty, dtype=np.int64)) for tx, ty in tests],
        feature_shape=data.feature_shape, num_classes=data.num_classes, seed=seed, params=params,
        dataset=data.name, tasks_info=info,
    )


SCENARIOS = ("plain", "split", "permuted", "rotated", "drift")


def build_scenario(name: str, *, dataset: str | Dataset, seed: int = 0, limit: int | None = None,
                   cache_dir: Path | str | None = None, **params: Any) -> Scenario:
    """Build a scenario by name over a dataset (a :func:`load_dataset` name or a :class:`Dataset`).

    ``limit`` keeps at most that many train and test samples of the dataset (a seeded subset) before building;
    ``samples_per_task`` / ``test_samples_per_task`` cap each task. The remaining ``params`` are the builder's.

    >>> s = build_scenario("split", dataset="digits", tasks=5, samples_per_task=20)
    >>> len(s), s.task_starts(), sorted(set(s.test_sets[1][1].tolist()))
    (100, [0, 20, 40, 60, 80], [2, 3])
    """
    if name == "drift":
        return drift_scenario(dataset, seed=seed, limit=limit, cache_dir=cache_dir, **params)
    builders: dict[str, Callable[..., Scenario]] = {
        "plain": plain_scenario, "split": split_scenario, "permuted": permuted_scenario,
        "rotated": rotated_scenario,
    }
    if name not in builders:
        raise ValueError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    data = _resolve(dataset, seed, limit, cache_dir)
    scenario = builders[name](data, seed=seed, **params)
    scenario.params = {**scenario.params, "limit": limit}
    return scenario
