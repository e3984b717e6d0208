"""Scenario builders: determinism, shapes, boundary positions, task contents and the boundaries file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifelong.datasets import Dataset, Scenario, build_scenario, load_dataset, read_boundaries
from lifelong.datasets.scenarios import concept_schedule, permutations_for
from lifelong.datasets.transforms import rotate_images


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _rows(x: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1)]


def _check_consistent(s: Scenario) -> None:
    """Invariants every scenario keeps: dtypes, shapes, and task ids that agree with the boundaries."""
    assert s.x.dtype == np.float32 and s.y.dtype == np.int64
    assert s.x.shape == (s.n, *s.feature_shape) and s.y.shape == s.task.shape == (s.n,)
    assert len(s.test_sets) == s.num_tasks == len(s.boundaries) + 1
    for b in s.boundaries:
        assert s.task[b.position] == b.task and (s.task[: b.position] < b.task).all()
    for x_test, y_test in s.test_sets:
        assert x_test.dtype == np.float32 and y_test.dtype == np.int64 and x_test.shape[1:] == s.feature_shape
    assert s.y.min() >= 0 and s.y.max() < s.num_classes


@pytest.mark.parametrize("name,params", [
    ("plain", {}), ("split", {}), ("split", {"shuffle_classes": True}), ("permuted", {"tasks": 3}),
    ("rotated", {"tasks": 3}), ("drift", {"n": 900, "concepts": 3, "width": 60}),
])
def test_same_seed_same_stream_other_seed_other_stream(digits: Dataset, name: str, params: dict) -> None:
    a = build_scenario(name, dataset=digits, seed=7, **params)
    b = build_scenario(name, dataset=digits, seed=7, **params)
    c = build_scenario(name, dataset=digits, seed=8, **params)
    _check_consistent(a)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.to_json() == b.to_json()
    assert not np.array_equal(a.x, c.x)


def test_plain_is_a_shuffle_of_the_training_set(digits: Dataset) -> None:
    s = build_scenario("plain", dataset=digits)
    assert s.n == len(digits.y_train) and s.boundaries == [] and s.num_tasks == 1
    assert sorted(_rows(s.x)) == sorted(_rows(digits.x_train))
    assert not np.array_equal(s.y, digits.y_train)
    np.testing.assert_array_equal(s.test_sets[0][1], digits.y_test)


def test_split_tasks_hold_their_classes_and_boundaries_fall_between(digits: Dataset) -> None:
    s = build_scenario("split", dataset=digits, tasks=5, classes_per_task=2)
    expected_classes = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    counts = [int(np.isin(digits.y_train, c).sum()) for c in expected_classes]
    assert [b.position for b in s.boundaries] == np.cumsum(counts)[:-1].tolist()
    assert [b.kind for b in s.boundaries] == ["task"] * 4 and [b.task for b in s.boundaries] == [1, 2, 3, 4]
    for t, classes in enumerate(expected_classes):
        assert sorted(np.unique(s.y[s.task == t]).tolist()) == classes
        assert sorted(np.unique(s.test_sets[t][1]).tolist()) == classes
        assert len(s.test_sets[t][1]) == int(np.isin(digits.y_test, classes).sum())
    # every training sample appears exactly once, within-task order is shuffled
    assert sorted(_rows(s.x)) == sorted(_rows(digits.x_train))
    first = s.y[s.task == 0]
    assert not (np.all(first[:-1] <= first[1:]) or np.all(first[:-1] >= first[1:]))


def test_split_class_order_shuffled_or_given(digits: Dataset) -> None:
    s = build_scenario("split", dataset=digits, shuffle_classes=True, seed=3)
    order = s.params["class_order"]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    for t in range(5):
        assert set(np.unique(s.y[s.task == t]).tolist()) == set(order[2 * t:2 * t + 2])
    given = build_scenario("split", dataset=digits, tasks=2, classes_per_task=3, class_order=[9, 8, 7, 1, 2, 3])
    assert sorted(np.unique(given.y[given.task == 0]).tolist()) == [7, 8, 9]
    assert sorted(np.unique(given.test_sets[1][1]).tolist()) == [1, 2, 3]
    with pytest.raises(ValueError, match="distinct classes"):
        build_scenario("split", dataset=digits, tasks=6, classes_per_task=2)


def test_samples_per_task_and_limit_cap_the_stream(digits: Dataset) -> None:
    s = build_scenario("split", dataset="digits", samples_per_task=20, test_samples_per_task=7)
    assert s.n == 100 and s.task_starts() == [0, 20, 40, 60, 80]
    assert [len(y) for _, y in s.test_sets] == [7] * 5
    limited = build_scenario("permuted", dataset="digits", tasks=2, limit=50)
    assert limited.n == 100 and len(limited.test_sets[0][1]) == 50


def test_permuted_tasks_apply_their_permutation(digits: Dataset) -> None:
    s = build_scenario("permuted", dataset=digits, tasks=3, seed=5)
    perms = permutations_for(64, 3, seed=5)
    np.testing.assert_array_equal(perms[0], np.arange(64))
    assert not np.array_equal(perms[1], perms[2])
    assert [b.position for b in s.boundaries] == [len(digits.y_train), 2 * len(digits.y_train)]
    original = {row: label for row, label in zip(_rows(digits.x_train), digits.y_train, strict=True)}
    for t, perm in enumerate(perms):
        x_t = s.x[s.task == t].reshape(-1, 64)
        unpermuted = np.empty_like(x_t)
        unpermuted[:, perm] = x_t  # invert: x_t[:, i] = x[:, perm[i]]
        assert sorted(_rows(unpermuted)) == sorted(_rows(digits.x_train))
        for row, label in zip(_rows(unpermuted[:50]), s.y[s.task == t][:50], strict=True):
            assert original[row] == label
        np.testing.assert_array_equal(s.test_sets[t][0].reshape(-1, 64), digits.x_test.reshape(-1, 64)[:, perm])
        np.testing.assert_array_equal(s.test_sets[t][1], digits.y_test)


def test_rotated_tasks_rotate_by_their_angle(digits: Dataset) -> None:
    s = build_scenario("rotated", dataset=digits, angles=[0, 90, 180])
    assert [i["angle"] for i in s.tasks_info] == [0.0, 90.0, 180.0]
    assert sorted(_rows(s.x[s.task == 0])) == sorted(_rows(digits.x_train))
    assert sorted(_rows(s.x[s.task == 1])) == sorted(_rows(np.rot90(digits.x_train, 1, axes=(1, 2)).copy()))
    np.testing.assert_array_equal(s.test_sets[2][0], digits.x_test[:, ::-1, ::-1])
    default = build_scenario("rotated", dataset=digits, tasks=4, samples_per_task=10)
    assert [i["angle"] for i in default.tasks_info] == [0.0, 45.0, 90.0, 135.0]


def test_rotation_of_a_bar_on_mnist_sized_images() -> None:
    img = np.zeros((1, 28, 28), np.float32)
    img[0, 13:15, 4:24] = 1.0  # a horizontal bar through the centre
    turned = rotate_images(img, 90)[0]
    np.testing.assert_allclose(turned, img[0].T, atol=1e-6)  # a vertical bar
    diagonal = rotate_images(img, 45)[0]
    assert diagonal[7, 7] == 0.0 and diagonal[20, 7] > 0.5 and diagonal[7, 20] > 0.5  # "/" runs bottom-left up
    assert diagonal.sum() == pytest.approx(img.sum(), rel=0.1)


def test_rotated_mnist_subset() -> None:
    s = build_scenario("rotated", dataset="mnist", tasks=2, angles=[0, 30], samples_per_task=64,
                       test_samples_per_task=32)
    _check_consistent(s)
    assert s.feature_shape == (28, 28) and s.n == 128 and s.boundaries[0].position == 64
    assert s.x.min() >= 0.0 and s.x.max() <= 1.0 + 1e-6


def test_drift_abrupt_on_a_dataset_relabels_classes(digits: Dataset) -> None:
    s = build_scenario("drift", dataset=digits, n=2000, positions=[700, 1400], seed=2)
    assert [b.position for b in s.boundaries] == [700, 1400] and [b.kind for b in s.boundaries] == ["drift"] * 2
    assert s.task.tolist() == [0] * 700 + [1] * 700 + [2] * 600
    maps = [np.array(i["label_map"]) for i in s.tasks_info]
    np.testing.assert_array_equal(maps[0], np.arange(10))
    assert all(sorted(m.tolist()) == list(range(10)) and not np.array_equal(m, maps[0]) for m in maps[1:])
    original = {row: label for row, label in zip(_rows(digits.x_train), digits.y_train, strict=True)}
    for row, label, concept in zip(_rows(s.x), s.y, s.task, strict=True):
        assert label == maps[concept][original[row]]
    for k, (x_test, y_test) in enumerate(s.test_sets):
        np.testing.assert_array_equal(x_test, digits.x_test)
        np.testing.assert_array_equal(y_test, maps[k][digits.y_test])


def test_drift_gradual_mixes_concepts_inside_the_window_only() -> None:
    schedule = concept_schedule(3000, [1000, 2000], 400, np.random.default_rng(0))
    assert (schedule[:800] == 0).all() and (schedule[1200:1800] == 1).all() and (schedule[2200:] == 2).all()
    window = schedule[800:1200]
    assert set(window.tolist()) == {0, 1}
    assert window[:100].mean() < 0.35 < 0.65 < window[300:].mean()  # the new concept's share ramps up
    s = build_scenario("drift", dataset="river:SEA", n=3000, width=400, test_samples_per_task=10)
    assert [b.width for b in s.boundaries] == [400, 400]
    assert 800 <= s.boundaries[0].position < 1000 and 1800 <= s.boundaries[1].position < 2000
    with pytest.raises(ValueError, match="overlap"):
        build_scenario("drift", dataset="river:SEA", n=3000, positions=[1000, 1100], width=400)


def test_drift_on_sea_follows_each_variant_threshold() -> None:
    """SEA is positive when ``x0 + x1 > threshold``, thresholds 8, 9, 7 for variants 0-2 (x uniform in [0, 10])."""
    s = build_scenario("drift", dataset="river:SEA", n=3000, seed=1, test_samples_per_task=2000)
    assert [b.position for b in s.boundaries] == [1000, 2000]
    assert [i["concept"] for i in s.tasks_info] == [{"variant": 0}, {"variant": 1}, {"variant": 2}]
    assert s.feature_shape == (3,) and s.num_classes == 2
    for (_, y_test), threshold in zip(s.test_sets, (8.0, 9.0, 7.0), strict=True):
        expected = 1 - threshold**2 / 200  # 1 - the triangle below the line x0 + x1 = threshold in [0, 10]^2
        assert y_test.mean() == pytest.approx(expected, abs=0.04)


def test_drift_concept_count_mode_and_shared_stream_params() -> None:
    by_positions = build_scenario("drift", dataset="river:SEA", n=1000, positions=[400], test_samples_per_task=5)
    assert by_positions.num_tasks == 2 and by_positions.boundaries[0].position == 400
    by_tasks = build_scenario("drift", dataset="river:SEA", n=1000, tasks=4, mode="gradual",
                              stream_params={"noise": 0.2}, test_samples_per_task=5)
    assert by_tasks.num_tasks == 4 and by_tasks.params["width"] == 1000 // 20
    assert by_tasks.tasks_info[3]["concept"] == {"noise": 0.2, "variant": 3}
    assert all(b.width == 50 for b in by_tasks.boundaries)
    per_task = build_scenario("drift", dataset="river:SEA", samples_per_task=200, test_samples_per_task=5)
    assert per_task.n == 600 and [b.position for b in per_task.boundaries] == [200, 400]
    with pytest.raises(ValueError, match="contradicts"):
        build_scenario("drift", dataset="river:SEA", n=1000, mode="abrupt", width=10)


def test_drift_concepts_given_explicitly_for_a_categorical_stream() -> None:
    s = build_scenario("drift", dataset="river:STAGGER", n=600, concepts=[{"classification_function": 0},
                                                                       {"classification_function": 2}])
    assert s.feature_shape == (9,) and s.boundaries[0].position == 300
    assert "classification_function=2" in s.boundaries[0].description
    x = s.x[s.task == 1].reshape(-1, 3, 3)
    # STAGGER function 2: true when the size is medium or large (size one-hot in the first block)
    np.testing.assert_array_equal(s.y[s.task == 1], (x[:, 0, 1] + x[:, 0, 2] > 0).astype(np.int64))


def test_boundaries_file_round_trips(digits: Dataset, tmp_path: Path) -> None:
    s = build_scenario("split", dataset=digits, tasks=2, samples_per_task=30, seed=4)
    doc = s.boundaries_json()
    assert {"name", "seed", "params", "n", "boundaries"} <= set(doc)
    assert doc["name"] == "split" and doc["seed"] == 4 and doc["n"] == 60 and doc["params"]["tasks"] == 2
    assert doc["boundaries"] == [{"position": 30, "kind": "task", "task": 1,
                                  "description": "task 1: classes [2, 3]", "width": 0}]
    path = s.write_boundaries(tmp_path / "b.json")
    loaded, boundaries = read_boundaries(path)
    assert loaded == doc and boundaries == s.boundaries


def test_unknown_scenario_is_rejected(digits: Dataset) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("shuffled", dataset=digits)
    with pytest.raises(ValueError, match="2-D images"):
        build_scenario("rotated", dataset=load_dataset("river:SEA", n=100))


@pytest.mark.parametrize("module", ["scenarios", "transforms", "river_streams", "sources"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"lifelong.datasets.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
