"""Continual-learning metrics on small hand-built accuracy matrices, values worked out by hand."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from lifelong.metrics import continual
from lifelong.metrics.continual import (
    AccuracyMatrix,
    accuracy,
    average_accuracy,
    average_incremental_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
)

# Rows: after training task 0, 1, 2.  Columns: test sets of task 0, 1, 2.
R = [
    [0.90, 0.20, 0.10],
    [0.60, 0.95, 0.30],
    [0.40, 0.70, 0.80],
]


def test_average_accuracy_is_the_mean_of_the_last_row() -> None:
    assert average_accuracy(R) == pytest.approx((0.40 + 0.70 + 0.80) / 3)


def test_forgetting_uses_the_best_earlier_accuracy() -> None:
    # task 0: best before the end max(0.90, 0.60) = 0.90, final 0.40 -> 0.50
    # task 1: best before the end max(0.20, 0.95) = 0.95, final 0.70 -> 0.25
    assert forgetting(R) == pytest.approx((0.50 + 0.25) / 2)


def test_forgetting_differs_from_bwt_when_the_peak_is_not_on_the_diagonal() -> None:
    later_peak = [[0.5, 0.0, 0.0], [0.9, 0.8, 0.0], [0.6, 0.8, 0.7]]
    # forgetting of task 0: max(0.5, 0.9) - 0.6 = 0.3; task 1: max(0.0, 0.8) - 0.8 = 0.0
    assert forgetting(later_peak) == pytest.approx(0.15)
    # BWT: (0.6 - 0.5) + (0.8 - 0.8) over 2 tasks: learning task 1 helped task 0
    assert backward_transfer(later_peak) == pytest.approx(0.05)


def test_backward_transfer_compares_final_with_just_learned() -> None:
    # (0.40 - 0.90) + (0.70 - 0.95) = -0.75 over 2 earlier tasks
    assert backward_transfer(R) == pytest.approx(-0.375)


def test_forward_transfer_against_a_baseline() -> None:
    baseline = [0.10, 0.10, 0.15]
    # (R[0][1] - b1) + (R[1][2] - b2) = (0.20 - 0.10) + (0.30 - 0.15) = 0.25 over 2 tasks
    assert forward_transfer(R, baseline) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="one accuracy per task"):
        forward_transfer(R, [0.1, 0.1])


def test_average_incremental_accuracy() -> None:
    # row means over seen tasks: 0.90; (0.60 + 0.95) / 2 = 0.775; (0.40 + 0.70 + 0.80) / 3 = 0.6333...
    assert average_incremental_accuracy(R) == pytest.approx((0.90 + 0.775 + 1.90 / 3) / 3)


def test_perfect_memory_and_one_task() -> None:
    perfect = np.tril(np.ones((3, 3)))  # every seen task at 1.0, unseen tasks at 0
    assert average_accuracy(perfect) == 1.0 and forgetting(perfect) == 0.0 and backward_transfer(perfect) == 0.0
    assert forgetting([[0.7]]) == 0.0 and backward_transfer([[0.7]]) == 0.0 and average_accuracy([[0.7]]) == 0.7


def test_percentages_scale_linearly() -> None:
    pct = np.asarray(R) * 100
    assert forgetting(pct) == pytest.approx(100 * forgetting(R))
    assert backward_transfer(pct) == pytest.approx(100 * backward_transfer(R))


@pytest.mark.parametrize("bad", [[[0.1, 0.2]], [], [[0.5, np.nan], [0.4, 0.3]], [0.1, 0.2]])
def test_malformed_matrices_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        average_accuracy(bad)  # type: ignore[arg-type]


def test_accuracy_matrix_filled_row_by_row_matches_the_functions() -> None:
    acc = AccuracyMatrix(num_tasks=3)
    acc.add_row(R[0])
    # after one task only R[:1, :1] counts
    assert acc.average_accuracy() == pytest.approx(0.90) and acc.forgetting() == 0.0
    acc.add_row(R[1])
    assert acc.average_accuracy() == pytest.approx((0.60 + 0.95) / 2)
    assert acc.forgetting() == pytest.approx(0.30)
    acc.add_row(R[2])
    np.testing.assert_allclose(acc.matrix, R)
    assert acc.summary() == pytest.approx({
        "average_accuracy": average_accuracy(R), "forgetting": 0.375, "backward_transfer": -0.375,
        "average_incremental_accuracy": average_incremental_accuracy(R)})
    assert acc.forward_transfer([0.1, 0.1, 0.15]) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="already filled"):
        acc.add_row(R[0])


def test_accuracy_matrix_evaluates_a_predictor_on_each_test_set() -> None:
    test_sets = [(np.array([[0.0], [1.0]]), np.array([0, 1])), (np.array([[2.0], [3.0]]), np.array([2, 2]))]
    acc = AccuracyMatrix(num_tasks=2)
    row = acc.evaluate(lambda x: x[:, 0].astype(np.int64), test_sets)  # predicts the feature value
    assert row.tolist() == [1.0, 0.5]
    assert acc.rows == 1


def test_accuracy_matrix_state_round_trips_through_json() -> None:
    acc = AccuracyMatrix(num_tasks=3)
    acc.add_row(R[0])
    restored = AccuracyMatrix.from_state_dict(json.loads(json.dumps(acc.state_dict())))
    assert restored.rows == 1 and np.isnan(restored.matrix[1:]).all()
    np.testing.assert_allclose(restored.matrix[0], R[0])
    restored.add_row(R[1])
    assert restored.backward_transfer() == pytest.approx(0.60 - 0.90)


def test_accuracy_counts_matches() -> None:
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
    with pytest.raises(ValueError):
        accuracy(np.array([]), np.array([]))


def test_docstring_examples_run() -> None:
    result = doctest.testmod(continual)
    assert result.attempted >= 8 and result.failed == 0
