"""iCaRL exemplar memory: per-class exemplars ranked by herding in feature space, re-ranked at boundaries.

Rebuffi, S.-A., Kolesnikov, A., Sperl, G. & Lampert, C. H. (2017). iCaRL: Incremental Classifier and
Representation Learning. CVPR (Algorithms 4 and 5; herding after Welling 2009). The stream passes once, so the
memory doubles as the candidate pool: between boundaries each class holds an equal share of ``capacity``
(class-balanced reservoir, ``ClassBalancedBuffer``), and the samples of the classes being learnt wait there as
candidates, bounded by their share. At each boundary every class's samples are ranked by herding with the
current features (the running mean of the first ``k`` approaches the class mean, for every ``k``); when a class
must later give room to a new class it loses its worst-ranked sample, so it keeps the herding prefix of its
share, which is iCaRL's ReduceExemplarSet. Samples not yet ranked give way first. Exemplars and candidates
together never exceed ``capacity``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lifelong.replay.buffer import FeatureFn
from lifelong.replay.class_balanced import ClassBalancedBuffer

UNRANKED = 1 << 40  # candidates (not yet ranked) sort after every exemplar


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


class HerdingBuffer(ClassBalancedBuffer):
    """Class-balanced memory whose samples are ranked by herding at boundaries and evicted worst-ranked first.

    >>> buf = HerdingBuffer(capacity=4, seed=0)
    >>> buf.insert(torch.tensor([[0.0], [10.0], [4.0], [6.0]]), torch.zeros(4, dtype=torch.long))
    >>> buf.on_boundary(lambda x: torch.cat([x, torch.ones_like(x)], dim=1))
    >>> buf.exemplars_of(0)["x"].flatten().tolist()
    [4.0, 6.0, 0.0, 10.0]
    >>> buf.insert(torch.tensor([[1.0], [2.0]]), torch.ones(2, dtype=torch.long))
    >>> buf.exemplars_of(0)["x"].flatten().tolist()  # class 0 gave way: its two worst-ranked left
    [4.0, 6.0]
    """

    kind = "herding"

    def __init__(self, capacity: int, device: torch.device | str = "cpu", seed: int = 0):
        super().__init__(capacity, device, seed)
        self.rank = torch.full((self.capacity,), UNRANKED, dtype=torch.long)

    def _place(self, cls: int, draw: list[float]) -> int | None:
        slot = super()._place(cls, draw)
        if slot is not None:
            self.rank[slot] = UNRANKED  # a new sample is a candidate until the next boundary
        return slot

    def _evict(self, cls: int, draw: float) -> int:
        """A class giving room loses its worst-ranked sample; among candidates, a random one."""
        own = self.slots_of[cls]
        ranks = self.rank[own]
        worst = int(ranks.max())
        if worst == UNRANKED:
            candidates = [slot for slot, r in zip(own, ranks.tolist(), strict=True) if r == UNRANKED]
            return candidates[int(draw * len(candidates))]
        return own[int(torch.argmax(ranks))]

    def exemplars_of(self, cls: int) -> dict[str, Tensor]:
        """The stored samples of one class, best-ranked first (empty dict if there are none)."""
        own = self.slots_of.get(cls, [])
        if not own:
            return {}
        order = sorted(own, key=lambda slot: (int(self.rank[slot]), slot))
        return self.store.read(torch.tensor(order, dtype=torch.long))

    @torch.no_grad()
    def on_boundary(self, features: FeatureFn) -> None:
        """Rank every class's samples by herding on the current (L2-normalised) features."""
        for own in self.slots_of.values():
            if not own:
                continue
            slots = torch.tensor(own, dtype=torch.long)
            feats = torch.nn.functional.normalize(features(self.store.read(slots)["x"]), dim=1)
            order = herd(feats, len(own))
            self.rank[slots[torch.tensor(order, dtype=torch.long)]] = torch.arange(len(order))
        self.version += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rank": self.rank.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rank = state["rank"].to(torch.long).clone()
