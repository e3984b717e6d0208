"""iCaRL exemplar memory: per-class exemplars chosen by herding in feature space, re-selected at boundaries.

Rebuffi, S.-A., Kolesnikov, A., Sperl, G. & Lampert, C. H. (2017). iCaRL: Incremental Classifier and
Representation Learning. CVPR (Algorithms 4 and 5; herding after Welling 2009). The stream passes once, so
between two boundaries the samples of the classes being learnt wait in a bounded *candidate pool* (a
class-balanced reservoir); at a boundary each class's exemplars are herded from its old exemplars plus its
candidates with the current features, classes without new candidates are cut to the new per-class share
(iCaRL's ReduceExemplarSet keeps the first ``m`` in herding order), and the pool empties. Replay draws from
exemplars and pool alike. Peak storage is ``capacity`` exemplars plus ``pool_size`` candidates.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lifelong.replay.buffer import Buffer, FeatureFn
from lifelong.replay.class_balanced import ClassBalancedBuffer


def herd(features: Tensor, m: int) -> list[int]:
    """Greedy herding: rows whose running mean approaches the mean of all rows, best first.

    Step ``k`` picks the not-yet-chosen row ``i`` minimising ``|| mean(all) - (sum(chosen) + f_i) / k ||``.

    >>> herd(torch.tensor([[0.0], [10.0], [4.0], [6.0]]), 2)
    [2, 3]
    """
    n = int(features.shape[0])
    feats = features.double()
    target = feats.mean(0)
    running = torch.zeros_like(target)
    available = torch.ones(n, dtype=torch.bool, device=features.device)
    chosen: list[int] = []
    for k in range(1, min(int(m), n) + 1):
        dist = (target - (running + feats) / k).norm(dim=1)
        dist[~available] = float("inf")
        i = int(torch.argmin(dist))
        chosen.append(i)
        available[i] = False
        running += feats[i]
    return chosen


class HerdingBuffer(Buffer):
    """Exemplar sets (slots ``0..n_exemplars-1``, grouped by class in herding order) plus a candidate pool.

    ``capacity`` bounds the exemplars; ``pool_size`` (default: ``capacity``) bounds the candidates.
    """

    kind = "herding"

    def __init__(self, capacity: int, device: torch.device | str = "cpu", seed: int = 0,
                 pool_size: int | None = None):
        super().__init__(capacity, device, seed)
        self.pool = ClassBalancedBuffer(pool_size or capacity, device, seed + 7919)
        self.n_exemplars = 0

    def __len__(self) -> int:
        return self.n_exemplars + len(self.pool)

    def insert(self, x: Tensor, y: Tensor, **extra: Tensor) -> None:
        self.pool.insert(x, y)
        self.seen += int(y.shape[0])
        self.version += 1

    def sample(self, n: int) -> dict[str, Tensor]:
        total = len(self)
        if total == 0:
            raise ValueError("cannot sample from an empty buffer")
        index = self._indices(n, total)
        from_ex, from_pool = index[index < self.n_exemplars], index[index >= self.n_exemplars] - self.n_exemplars
        parts = [self.store.read(from_ex)] if from_ex.numel() else []
        if from_pool.numel():
            parts.append(self.pool.store.read(from_pool))
        return {name: torch.cat([p[name] for p in parts]) for name in ("x", "y")}

    def exemplars_of(self, cls: int) -> dict[str, Tensor]:
        """The exemplars of one class in herding order (empty dict if there are none)."""
        slots = torch.nonzero(self.labels[: self.n_exemplars] == cls).flatten()
        return self.store.read(slots) if slots.numel() else {}

    def items_of(self, cls: int) -> dict[str, Tensor]:
        parts = [self.exemplars_of(cls)]
        if self.pool.samples_per_class().get(cls):
            parts.append(self.pool.items_of(cls))
        parts = [p for p in parts if p]
        if not parts:
            raise ValueError(f"no stored sample of class {cls}")
        return {name: torch.cat([p[name] for p in parts]) for name in ("x", "y")}

    def classes(self) -> list[int]:
        return sorted(set(self.labels[: self.n_exemplars].tolist()) | set(self.pool.samples_per_class()))

    def samples_per_class(self) -> dict[int, int]:
        counts = dict(self.pool.samples_per_class())
        for cls in self.labels[: self.n_exemplars].tolist():
            counts[cls] = counts.get(cls, 0) + 1
        return dict(sorted(counts.items()))

    @torch.no_grad()
    def on_boundary(self, features: FeatureFn) -> None:
        """Re-select: herd each class with new candidates, cut the others to the new share, empty the pool."""
        classes = self.classes()
        if not classes:
            return
        share = max(1, self.capacity // len(classes))
        pool_classes = self.pool.samples_per_class()
        kept_x: list[Tensor] = []
        kept_y: list[int] = []
        for cls in classes:
            if len(kept_y) + share > self.capacity:
                break  # more classes than capacity: the highest labels get no exemplar
            old = self.exemplars_of(cls).get("x")
            if cls not in pool_classes:
                assert old is not None
                chosen_x = old[:share]
            else:
                candidates = self.items_of(cls)["x"]
                order = herd(torch.nn.functional.normalize(features(candidates), dim=1), share)
                chosen_x = candidates[torch.tensor(order, dtype=torch.long, device=candidates.device)]
            kept_x.append(chosen_x)
            kept_y += [cls] * int(chosen_x.shape[0])
        x = torch.cat(kept_x)
        y = torch.tensor(kept_y, dtype=torch.long)
        slots = torch.arange(len(kept_y))
        self.store.write(slots, {"x": x, "y": y})
        self.labels.fill_(-1)
        self.labels[: len(kept_y)] = y
        self.n_exemplars = len(kept_y)
        self.size = self.n_exemplars
        self.pool.clear()
        self.version += 1

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["n_exemplars"] = self.n_exemplars
        state["pool"] = self.pool.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_exemplars = int(state["n_exemplars"])
        self.pool.load_state_dict(state["pool"])
