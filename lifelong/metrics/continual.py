"""Continual-learning metrics over the accuracy matrix (numpy only).

``R[i, j]`` is the accuracy on task ``j``'s held-out test split after training through task ``i`` (rows: the
model after each task; columns: the tasks' test sets). From it:

- average accuracy: the mean of the last row (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory for
  Continual Learning", ACC; Chaudhry et al. 2018 call it A_T);
- forgetting: for each earlier task, the best accuracy it ever had minus its final one, averaged
  (Chaudhry et al. 2018, "Riemannian Walk for Incremental Learning: Understanding Forgetting and
  Intransigence", Eq. 2-3);
- backward transfer: the mean of ``R[T-1, j] - R[j, j]`` over earlier tasks (Lopez-Paz & Ranzato 2017, BWT);
  negative values are forgetting;
- forward transfer: the mean of ``R[j-1, j] - b_j``, how much earlier tasks help before task ``j`` is trained,
  against ``b_j`` the accuracy of a freshly initialised model (Lopez-Paz & Ranzato 2017, FWT);
- average incremental accuracy: the mean over rows of the mean accuracy on the tasks seen so far
  (Rebuffi et al. 2017, "iCaRL: Incremental Classifier and Representation Learning").

Accuracies may be fractions or percentages: every metric is in the unit of ``R``.

>>> R = [[0.9, 0.1, 0.0],
...      [0.7, 0.8, 0.1],
...      [0.6, 0.5, 0.9]]
>>> round(average_accuracy(R), 4), round(forgetting(R), 4), round(backward_transfer(R), 4)
(0.6667, 0.3, -0.3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ArrayLike = Sequence[Sequence[float]] | np.ndarray


def _square(R: ArrayLike) -> np.ndarray:
    """Validate an accuracy matrix: square, at least 1 x 1, finite."""
    m = np.asarray(R, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square T x T with T >= 1, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("the accuracy matrix has missing (NaN) or infinite entries")
    return m


def average_accuracy(R: ArrayLike) -> float:
    """Mean accuracy over all tasks after the last one: ``mean_j R[T-1, j]``.

    >>> average_accuracy([[1.0, 0.0], [0.5, 1.0]])
    0.75
    """
    m = _square(R)
    return float(m[-1].mean())


def forgetting(R: ArrayLike) -> float:
    """Average forgetting ``mean_{j<T-1} (max_{l<T-1} R[l, j] - R[T-1, j])`` (Chaudhry et al. 2018).

    0 for a single task (nothing trained before it could be forgotten).

    >>> forgetting([[1.0, 0.0], [0.5, 1.0]])
    0.5
    """
    m = _square(R)
    T = m.shape[0]
    if T == 1:
        return 0.0
    best_before = m[:-1, :-1].max(axis=0)
    return float((best_before - m[-1, :-1]).mean())


def backward_transfer(R: ArrayLike) -> float:
    """BWT ``mean_{j<T-1} (R[T-1, j] - R[j, j])`` (Lopez-Paz & Ranzato 2017); 0 for a single task.

    >>> backward_transfer([[1.0, 0.0], [0.5, 1.0]])
    -0.5
    """
    m = _square(R)
    T = m.shape[0]
    if T == 1:
        return 0.0
    return float((m[-1, :-1] - np.diag(m)[:-1]).mean())


def forward_transfer(R: ArrayLike, baseline: Sequence[float] | np.ndarray) -> float:
    """FWT ``mean_{j>0} (R[j-1, j] - b_j)`` (Lopez-Paz & Ranzato 2017); 0 for a single task.

    ``baseline[j]`` is the accuracy on task ``j`` of the model at random initialisation (chance level is a
    fair stand-in). In class-incremental learning ``R[j-1, j]`` is about 0 (unseen classes), so FWT is
    meaningful mainly for domain-incremental scenarios.

    >>> round(forward_transfer([[0.9, 0.6], [0.8, 0.9]], baseline=[0.1, 0.1]), 4)
    0.5
    """
    m = _square(R)
    b = np.asarray(baseline, dtype=np.float64)
    if b.shape != (m.shape[0],):
        raise ValueError(f"baseline needs one accuracy per task ({m.shape[0]}), got shape {b.shape}")
    if m.shape[0] == 1:
        return 0.0
    return float((np.diag(m, k=1) - b[1:]).mean())


def average_incremental_accuracy(R: ArrayLike) -> float:
    """Mean over rows ``i`` of the mean accuracy on tasks ``0..i`` (Rebuffi et al. 2017).

    >>> average_incremental_accuracy([[1.0, 0.0], [0.5, 1.0]])
    0.875
    """
    m = _square(R)
    return float(np.mean([m[i, : i + 1].mean() for i in range(m.shape[0])]))


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct predictions (0 for an empty test set would hide a bug: it raises)."""
    predicted, labels = np.asarray(predicted).reshape(-1), np.asarray(labels).reshape(-1)
    if len(labels) == 0 or predicted.shape != labels.shape:
        raise ValueError(f"need as many predictions as labels (> 0), got {predicted.shape} and {labels.shape}")
    return float((predicted == labels).mean())


class AccuracyMatrix:
    """The accuracy matrix of a run, filled one row (one finished task) at a time.

    Metrics use the tasks seen so far: after ``k`` rows they are computed on ``R[:k, :k]``, so they can be
    reported mid-run; entries of later tasks' columns are kept for forward transfer.

    >>> acc = AccuracyMatrix(num_tasks=2)
    >>> acc.add_row([1.0, 0.0])
    >>> acc.add_row([0.5, 1.0])
    >>> acc.average_accuracy(), acc.forgetting(), acc.backward_transfer()
    (0.75, 0.5, -0.5)
    """

    def __init__(self, num_tasks: int) -> None:
        if num_tasks < 1:
            raise ValueError("num_tasks must be >= 1")
        self.num_tasks = num_tasks
        self._R = np.full((num_tasks, num_tasks), np.nan)
        self.rows = 0

    def add_row(self, accuracies: Sequence[float] | np.ndarray) -> None:
        """Record the accuracy on every task's test set after training through the next task."""
        if self.rows >= self.num_tasks:
            raise ValueError(f"all {self.num_tasks} rows are already filled")
        values = np.asarray(accuracies, dtype=np.float64)
        if values.shape != (self.num_tasks,):
            raise ValueError(f"a row needs {self.num_tasks} accuracies, got shape {values.shape}")
        self._R[self.rows] = values
        self.rows += 1

    def evaluate(self, predict: Callable[[np.ndarray], np.ndarray],
                 test_sets: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Score ``predict(x) -> labels`` on each task's test set, add that row and return it."""
        if len(test_sets) != self.num_tasks:
            raise ValueError(f"need {self.num_tasks} test sets, got {len(test_sets)}")
        row = np.array([accuracy(predict(x), y) for x, y in test_sets])
        self.add_row(row)
        return row

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the full matrix (NaN where a row is not filled yet)."""
        return self._R.copy()

    def seen(self) -> np.ndarray:
        """``R[:k, :k]`` for the ``k`` rows filled so far."""
        if self.rows == 0:
            raise ValueError("no row recorded yet")
        return self._R[: self.rows, : self.rows].copy()

    def average_accuracy(self) -> float:
        return average_accuracy(self.seen())

    def forgetting(self) -> float:
        return forgetting(self.seen())

    def backward_transfer(self) -> float:
        return backward_transfer(self.seen())

    def forward_transfer(self, baseline: Sequence[float] | np.ndarray) -> float:
        return forward_transfer(self.seen(), np.asarray(baseline, dtype=np.float64)[: self.rows])

    def average_incremental_accuracy(self) -> float:
        return average_incremental_accuracy(self.seen())

    def summary(self) -> dict[str, float]:
        """The headline metrics of the tasks seen so far."""
        return {
            "average_accuracy": self.average_accuracy(),
            "forgetting": self.forgetting(),
            "backward_transfer": self.backward_transfer(),
            "average_incremental_accuracy": self.average_incremental_accuracy(),
        }

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (NaN for rows not filled yet becomes None)."""
        return {"num_tasks": self.num_tasks, "rows": self.rows,
                "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in self._R]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> AccuracyMatrix:
        acc = cls(int(state["num_tasks"]))
        acc._R = np.array([[np.nan if v is None else v for v in row] for row in state["matrix"]], dtype=np.float64)
        acc.rows = int(state["rows"])
        return acc
